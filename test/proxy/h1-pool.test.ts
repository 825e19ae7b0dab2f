/**
 * The proxy's own HTTP/1.1 upstream pool (h1-pool.ts) through its dispatch
 * seam, against real servers on loopback: node:http, raw node:net servers
 * for the ones that misbehave, and one node:https server through the
 * cluster's connector. Each test names a contract of the pool's header
 * comment: keep-alive reuse and the connection limits, the request head and
 * its body framing, requests refused before a connection, the response as
 * the handler hears it, the idle time, back-pressure, the order of the
 * handler's calls (onRequestStart once a new connection is connected),
 * abort (a call aborted before any of it was written gives its connection
 * back), errors with the codes errors.ts classifies, close and destroy.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { H1Pool, type H1PoolOptions } from '../../src/proxy/h1-pool.js';
import type { UpstreamTls } from '../../src/protocol/snapshot.js';
import { NO_TLS_OBSERVER } from '../../src/proxy/tls/tls-events.js';
import { UpstreamConnector } from '../../src/proxy/tls/upstream-connector.js';
import { WorkloadTls } from '../../src/proxy/tls/workload-tls.js';
import { eventually } from '../helpers/proxy.js';
import { createTestCa, issueLeaf } from '../helpers/test-pki.js';

/** Every test here is bounded: a pool that never settles a call or a close fails the test instead of hanging the run. */
const it = (name: string, fn: () => Promise<void>) => test(name, { timeout: 20_000 }, fn);

type Controller = Dispatcher.DispatchController;
type Fields = Record<string, string | string[]>;

const servers: (Server | NetServer)[] = [];
const pools: H1Pool[] = [];
const dirs: string[] = [];
/** Process groups this file started (unaccepting()), killed at the end whatever happened. */
const children: number[] = [];
/** Client sockets a test opened itself (unaccepting()'s fillers). */
const sockets: Socket[] = [];
after(async () => {
  for (const pid of children) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone already */ } }
  for (const s of sockets) s.destroy();
  // Bounded: a pool that cannot finish destroying must not hang the run (its test has failed already).
  for (const p of pools) await Promise.race([p.destroy(), new Promise((r) => setTimeout(r, 2000).unref())]);
  for (const s of servers) {
    (s as Server).closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Upstream { port: number; connections: Socket[]; requests: IncomingMessage[] }

async function listen(s: Server | NetServer, u: Upstream): Promise<Upstream> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  u.port = (s.address() as AddressInfo).port;
  return u;
}

/** A node:http server; its `Keep-Alive: timeout=10` hint keeps the pool's connections 8 s. */
function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const u: Upstream = { port: 0, connections: [], requests: [] };
  const s = createServer({ keepAliveTimeout: 10_000 }, (req, res) => { u.requests.push(req); handler(req, res); });
  s.on('connection', (c: Socket) => u.connections.push(c));
  return listen(s, u);
}

/** A server that answers what each connection sends with `answer(all bytes so far, socket)`. */
function rawServer(answer: (data: string, socket: Socket) => void): Promise<Upstream> {
  const u: Upstream = { port: 0, connections: [], requests: [] };
  const s = createNetServer((c) => {
    u.connections.push(c);
    let data = '';
    c.on('data', (d) => { data += d.toString('latin1'); answer(data, c); });
    c.on('error', () => undefined);
  });
  return listen(s, u);
}

/** Answers each complete request head on a connection with `reply`, as it is (requests here carry no body). */
const rawReplies = (reply: string) => rawServer((data, s) => {
  const heads = data.split('\r\n\r\n').length - 1;
  const answered = (s as Socket & { answered?: number }).answered ?? 0;
  for (let n = answered; n < heads; n++) s.write(reply);
  (s as Socket & { answered?: number }).answered = heads;
});

/**
 * A port where a connect never completes: a listening socket in a child
 * process whose event loop is blocked (so it accepts nothing), its accept
 * queue filled by connections of our own; the kernel then drops further SYNs
 * and a connect waits. (Loopback only: nothing here needs an unroutable
 * address.) The child blocks for at most 20 s and is killed in after().
 */
async function unaccepting(): Promise<number> {
  const child = spawn(process.execPath, ['-e', `
    const s = require('node:net').createServer();
    s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(s.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000);
    });`], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children.push(child.pid!);
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the unaccepting server did not start')), 5000);
    child.stdout.once('data', (d: Buffer) => { clearTimeout(t); resolve(Number(d.toString().trim())); });
  });
  // Fill the accept queue: connect until a connect stays pending (at most 16 tries).
  for (let i = 0; i < 16; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      s.once('connect', () => { clearTimeout(t); resolve(true); });
    });
    if (!connected) return port;
  }
  throw new Error('every connect to the unaccepting server completed: its accept queue never filled');
}

const OPTIONS: H1PoolOptions = { connectTimeoutMs: 2000, maxConnections: Infinity, maxRequestsPerConnection: 0, keepAliveTimeoutMs: 4000, keepAliveMaxTimeoutMs: 600_000 };

function pool(port: number, o: Partial<H1PoolOptions> = {}, connector?: UpstreamConnector): H1Pool {
  const p = new H1Pool('127.0.0.1', port, `127.0.0.1:${port}`, { ...OPTIONS, ...o }, connector);
  pools.push(p);
  return p;
}

interface Result { status: number; headers: Fields; body: string; trailers: Fields }

interface Hooks {
  onStart?(c: Controller): void;
  onHead?(c: Controller, status: number): void;
  onData?(c: Controller, chunk: Buffer): void;
}

/** One dispatched call: what its handler heard, in order, and its outcome. */
interface Call {
  /** 'start', 'head <status>', 'data', 'end', 'error <code or message>'. */
  readonly events: string[];
  controller: Controller | undefined;
  dispatched: boolean;
  /** The response; rejects with the error the handler heard (or after 10 s without an outcome). */
  readonly result: Promise<Result>;
}

function start(p: H1Pool, o: Partial<Dispatcher.DispatchOptions> = {}, hooks: Hooks = {}): Call {
  const events: string[] = [];
  const out: Result = { status: 0, headers: {}, body: '', trailers: {} };
  // Chunks are kept as handed on and read at the end: one that shares the pool's read buffer would show as garbage.
  const chunks: Buffer[] = [];
  let settle!: { resolve: (r: Result) => void; reject: (e: Error) => void };
  const result = new Promise<Result>((resolve, reject) => { settle = { resolve, reject }; });
  // A call may fail before the test awaits it (destroy, a refusal in dispatch): not an unhandled rejection.
  result.catch(() => undefined);
  const c: Call = { events, controller: undefined, dispatched: false, result };
  const timer = setTimeout(() => settle.reject(new Error(`no outcome within 10 s: ${events.join(', ')}`)), 10_000);
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(controller) { c.controller = controller; events.push('start'); hooks.onStart?.(controller); },
    onResponseStart(controller, status, headers) {
      out.status = status;
      out.headers = { ...headers } as Fields;
      events.push(`head ${status}`);
      hooks.onHead?.(controller, status);
    },
    onResponseData(controller, chunk) {
      chunks.push(chunk);
      if (events[events.length - 1] !== 'data') events.push('data');
      hooks.onData?.(controller, chunk);
    },
    onResponseEnd(_c, trailers) { clearTimeout(timer); out.body = Buffer.concat(chunks).toString('latin1'); out.trailers = { ...trailers } as Fields; events.push('end'); settle.resolve(out); },
    onResponseError(_c, err) {
      clearTimeout(timer);
      events.push(`error ${(err as Error & { code?: string }).code ?? err.message}`);
      settle.reject(err);
    },
  };
  c.dispatched = p.dispatch({ origin: `http://127.0.0.1:${p.port}`, method: 'GET', path: '/', headers: { host: 'svc' }, body: null, ...o }, handler);
  return c;
}

const call = (p: H1Pool, o: Partial<Dispatcher.DispatchOptions> = {}, hooks: Hooks = {}) => start(p, o, hooks).result;
const until = <T>(check: () => T | undefined, what: () => string, ms = 3000) => eventually(check, ms, what);
const held = (list: unknown[], n: number) => until(() => (list.length >= n ? true : undefined), () => `${list.length} of ${n} requests arrived`);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The [name, value] pairs of a request as sent, in order. */
const pairs = (raw: string[]) => raw.flatMap((v, i) => (i % 2 === 0 ? [[v.toLowerCase(), raw[i + 1]!]] : []));

it('h1 pool: sequential calls share one keep-alive connection; the head carries host, the fields (a list as repeated lines) and connection: keep-alive', async () => {
  const u = await httpServer((req, res) => res.end(`${req.method} ${req.url}`));
  const p = pool(u.port);
  for (let i = 0; i < 5; i++) {
    const c = start(p, { path: `/n/${i}?q=1`, headers: { host: 'svc.example', 'x-list': ['a', 'b'], 'x-one': 'v', 'x-none': undefined } });
    const r = await c.result;
    assert.deepEqual([r.status, r.body], [200, `GET /n/${i}?q=1`]);
    assert.deepEqual(c.events, ['start', 'head 200', 'data', 'end']);
    assert.equal(c.dispatched, true);
  }
  assert.equal(u.connections.length, 1, 'one connection for five calls');
  assert.equal(p.connections, 1);
  assert.deepEqual(pairs(u.requests[0]!.rawHeaders), [['host', 'svc.example'], ['x-list', 'a'], ['x-list', 'b'], ['x-one', 'v'], ['connection', 'keep-alive']]);
  assert.equal(u.requests[0]!.httpVersion, '1.1');

  // Without a host field, the pool's authority is the Host.
  await call(p, { headers: { 'x-a': '1' } });
  assert.equal(u.requests[5]!.headers.host, `127.0.0.1:${u.port}`);
  assert.equal(u.connections.length, 1);
});

it('h1 pool: at maxConnections the other calls wait in order, and hear onRequestStart only when a connection comes free', async () => {
  const holding: ServerResponse[] = [];
  const u = await httpServer((req, res) => { if (req.url === '/hold') holding.push(res); else res.end(req.url); });
  const p = pool(u.port, { maxConnections: 1 });
  const first = start(p, { path: '/hold' });
  const queued = [1, 2, 3].map((i) => start(p, { path: `/q${i}` }));
  await held(holding, 1);
  assert.deepEqual(first.events, ['start']);
  for (const q of queued) assert.deepEqual(q.events, [], 'a queued call has no connection, so no onRequestStart yet');
  assert.equal(p.connections, 1);
  holding[0]!.end('held');
  const bodies = [await first.result, ...(await Promise.all(queued.map((q) => q.result)))].map((r) => r.body);
  assert.deepEqual(bodies, ['held', '/q1', '/q2', '/q3']);
  assert.deepEqual(u.requests.map((r) => r.url), ['/hold', '/q1', '/q2', '/q3'], 'served in the order they came');
  for (const q of queued) assert.deepEqual(q.events, ['start', 'head 200', 'data', 'end']);
  assert.equal(u.connections.length, 1, 'all on the one connection');

  const v = await httpServer((req, res) => { if (req.url === '/hold') holding.push(res); else res.end(req.url); });
  const two = pool(v.port, { maxConnections: 2 });
  const calls = [0, 1, 2, 3, 4].map((i) => start(two, { path: i < 2 ? '/hold' : `/q${i}` }));
  await held(holding, 3);
  assert.deepEqual([v.connections.length, two.connections], [2, 2], 'two connections, three calls waiting');
  assert.deepEqual(calls.map((c) => c.events.length), [1, 1, 0, 0, 0]);
  holding[1]!.end('held');
  holding[2]!.end('held');
  assert.deepEqual((await Promise.all(calls.map((c) => c.result))).map((r) => r.body), ['held', 'held', '/q2', '/q3', '/q4']);
  assert.equal(v.connections.length, 2, 'the waiting calls used the same two connections');
});

it('h1 pool: maxRequestsPerConnection says connection: close on a connection\'s last request, and the next call opens another', async () => {
  const u = await httpServer((req, res) => res.end(req.headers.connection));
  const p = pool(u.port, { maxRequestsPerConnection: 2 });
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) seen.push((await call(p)).body);
  assert.deepEqual(seen, ['keep-alive', 'close', 'keep-alive', 'close', 'keep-alive']);
  assert.equal(u.connections.length, 3);
  assert.equal(p.connections, 1, 'the closed ones are gone from the pool');
});

it('h1 pool: reset: true sends connection: close on the connection it takes, which then is not reused', async () => {
  const u = await httpServer((req, res) => res.end(req.headers.connection));
  const p = pool(u.port);
  assert.equal((await call(p)).body, 'keep-alive');
  assert.equal((await call(p, { reset: true })).body, 'close', 'on the idle connection of the first call');
  assert.equal(u.connections.length, 1);
  await until(() => (p.connections === 0 ? true : undefined), () => `${p.connections} connections`);
  assert.equal((await call(p)).body, 'keep-alive');
  assert.equal(u.connections.length, 2, 'a new connection after the reset');
});

it('h1 pool: bodies are framed — content-length for a whole body, 0 for a bodiless POST/PUT/PATCH, chunked for a stream without length, the caller\'s length for a stream', async () => {
  const u = await httpServer((req, res) => {
    let n = '';
    req.on('data', (c: Buffer) => { n += c.toString(); });
    // (ASCII only, since the test reads responses as Latin-1: a body's other characters as \uXXXX escapes.)
    const ascii = (json: string) => json.replace(/[\u0080-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
    req.on('end', () => res.end(ascii(JSON.stringify({ cl: req.headers['content-length'] ?? null, te: req.headers['transfer-encoding'] ?? null, body: n }))));
  });
  const p = pool(u.port);
  const framing = async (o: Partial<Dispatcher.DispatchOptions>) => {
    const r = await call(p, o);
    return JSON.parse(r.body) as { cl: string | null; te: string | null; body: string };
  };
  assert.deepEqual(await framing({ method: 'POST', body: Buffer.from('hello') }), { cl: '5', te: null, body: 'hello' });
  assert.deepEqual(await framing({ method: 'POST', body: Buffer.from('hello'), headers: { 'content-length': '99' } }), { cl: '5', te: null, body: 'hello' }, 'a whole body\'s own length wins');
  // A string is a whole body too, sent as its UTF-8 bytes with their length (not the string's length in characters).
  assert.deepEqual(await framing({ method: 'POST', body: 'h\u00e9llo w\u00f6rld' }), { cl: '13', te: null, body: 'h\u00e9llo w\u00f6rld' });
  assert.deepEqual(await framing({ method: 'PUT', body: 'abc', headers: { 'content-length': '99' } }), { cl: '3', te: null, body: 'abc' }, 'a string\'s own length wins');
  assert.deepEqual(await framing({ method: 'POST', body: '' }), { cl: '0', te: null, body: '' }, 'an empty string for a POST');
  assert.deepEqual(await framing({ method: 'GET', body: '' }), { cl: null, te: null, body: '' }, 'an empty string for a GET says nothing');
  for (const method of ['POST', 'PUT', 'PATCH'] as const) {
    assert.deepEqual(await framing({ method }), { cl: '0', te: null, body: '' }, method);
    assert.deepEqual(await framing({ method, body: Buffer.alloc(0) }), { cl: '0', te: null, body: '' }, `${method} with an empty Buffer`);
  }
  for (const method of ['GET', 'DELETE', 'OPTIONS'] as const) {
    assert.deepEqual(await framing({ method }), { cl: null, te: null, body: '' }, method);
  }

  const chunked = new PassThrough();
  const streamed = framing({ method: 'PUT', body: chunked });
  chunked.write('one,');
  setTimeout(() => chunked.end('two'), 20);
  assert.deepEqual(await streamed, { cl: null, te: 'chunked', body: 'one,two' });

  const sized = new PassThrough();
  const withLength = framing({ method: 'PUT', body: sized, headers: { 'content-length': '6' } });
  sized.write('abc');
  setTimeout(() => sized.end('def'), 20);
  assert.deepEqual(await withLength, { cl: '6', te: null, body: 'abcdef' });

  const empty = new PassThrough();
  const emptyPost = framing({ method: 'POST', body: empty });
  empty.end();
  assert.deepEqual(await emptyPost, { cl: '0', te: null, body: '' }, 'an empty stream for a POST');

  const emptyGet = new PassThrough();
  const get = framing({ method: 'GET', body: emptyGet });
  emptyGet.end();
  assert.deepEqual(await get, { cl: null, te: null, body: '' }, 'an empty stream for a GET says nothing');
  assert.equal(u.connections.length, 1, 'every one of them on the one keep-alive connection');
});

it('h1 pool: a stream longer or shorter than its content-length fails with UND_ERR_REQ_CONTENT_LENGTH_MISMATCH, and the pool keeps serving', async () => {
  const u = await httpServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
  const p = pool(u.port);
  /** `end`: the stream ends after its pieces (a longer one fails on the chunk that overflows, without waiting for the end). */
  const mismatch = async (length: string, pieces: string[], end = true) => {
    const s = new PassThrough();
    const c = start(p, { method: 'PUT', body: s, headers: { 'content-length': length } });
    for (const piece of pieces) s.write(piece);
    if (end) s.end();
    await assert.rejects(c.result, { code: 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' });
    assert.equal(c.events.at(-1), 'error UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
  };
  await mismatch('10', ['abc']);
  await mismatch('3', ['abcdef'], false);
  await mismatch('3', ['ab', 'cd'], false);
  await mismatch('0', ['x'], false);
  await mismatch('3', ['ab', 'cd']);

  // A body stream that fails fails the call with its error.
  const broken = new PassThrough();
  const c = start(p, { method: 'PUT', body: broken });
  broken.write('some');
  const gone = new Error('the client went away');
  setTimeout(() => broken.destroy(gone), 10);
  assert.equal(await c.result.catch((e: unknown) => e), gone);
  assert.equal((await call(p, { method: 'POST', body: Buffer.from('fine') })).body, 'ok');
});

it('h1 pool: a streamed body\'s head goes with its first chunk; the body pauses while the socket is full', async () => {
  let received = 0;
  let reading: IncomingMessage | undefined;
  const u = await httpServer((req, res) => {
    reading = req;
    req.pause(); // reads nothing until told
    req.on('data', (c: Buffer) => { received += c.length; });
    req.on('end', () => res.end(String(received)));
  });
  const bytes = await rawServer(() => undefined);
  // Against a server that reads and says nothing: no bytes until the body has some.
  const silent = pool(bytes.port);
  const body = new PassThrough();
  const quiet = start(silent, { method: 'POST', body });
  await until(() => (bytes.connections.length === 1 ? true : undefined), () => 'no connection');
  let got = '';
  bytes.connections[0]!.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  await wait(50);
  assert.equal(got, '', 'the head waits for the first chunk');
  body.write('first');
  await until(() => (got.includes('first') ? got : undefined), () => JSON.stringify(got));
  assert.match(got, /^POST \/ HTTP\/1\.1\r\nhost: svc\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n$/);
  assert.deepEqual(quiet.events, ['start']);
  await silent.destroy();
  await assert.rejects(quiet.result, { code: 'UND_ERR_DESTROYED' });

  // Against a server that does not read: the body is paused once the socket's buffers are full.
  const p = pool(u.port);
  const stream = new PassThrough();
  const c = start(p, { method: 'PUT', body: stream });
  const chunk = Buffer.alloc(64 * 1024, 120);
  let written = 0;
  for (let i = 0; i < 2048 && !stream.isPaused(); i++) {
    stream.write(chunk);
    written += chunk.length;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(stream.isPaused(), true, `the pool paused the body (after ${written} bytes)`);
  assert.ok(written < 2048 * chunk.length);
  reading!.resume();
  stream.end();
  assert.equal((await c.result).body, String(written), 'every byte arrived once the server read');
});

it('h1 pool: request fields that would change the framing or the connection, and bad paths, fail before a connection is opened', async () => {
  const u = await httpServer((_req, res) => res.end('x'));
  const p = pool(u.port);
  const refused = async (o: Partial<Dispatcher.DispatchOptions>, message: RegExp) => {
    const c = start(p, o);
    await assert.rejects(c.result, (err: Error & { code?: string }) => err.code === 'TRL_UPSTREAM_BAD_REQUEST' && message.test(err.message));
    assert.deepEqual(c.events, ['error TRL_UPSTREAM_BAD_REQUEST'], 'no onRequestStart: no connection was taken');
    assert.equal(p.connections, 0);
  };
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect']) {
    await refused({ headers: { host: 'svc', [name]: 'x' } }, new RegExp(`may not carry a ${name} header`));
  }
  // Spaces and control characters, and a path that is not origin-form (empty, relative, absolute-form, a query alone).
  for (const path of ['/a b', '/a\tb', '/a\r\nx: y', '/nul\u0000', '/wide\u0100', '', 'a', 'x/y', 'http://svc/p', '?q=1', '**', '*/']) {
    await refused({ path }, /invalid request path/);
  }
  await refused({ headers: { host: ['a', 'b'] } }, /more than one host/);
  await refused({ method: 'PUT', body: new PassThrough(), headers: { 'content-length': 'ten' } }, /invalid content-length/);
  await refused({ method: 'PUT', body: new PassThrough(), headers: { 'content-length': ['1', '1'] } }, /invalid content-length/);
  await wait(20);
  assert.equal(u.connections.length, 0, 'nothing reached the server');
  // Latin-1 bytes above 0x7f are a path undici sent too (node:http would answer 400: a raw server reads it).
  let sent = '';
  const raw = await rawServer((data, s) => { sent = data; if (data.endsWith('\r\n\r\n')) s.write('HTTP/1.1 204 No Content\r\n\r\n'); });
  assert.equal((await call(pool(raw.port), { path: '/caf\u00e9' })).status, 204);
  assert.ok(sent.startsWith('GET /caf\u00e9 HTTP/1.1\r\n'), JSON.stringify(sent));
  // `*` alone (asterisk-form, OPTIONS *) is the one path without a leading slash that goes out.
  assert.equal((await call(pool(raw.port), { method: 'OPTIONS', path: '*' })).status, 204);
  assert.ok(sent.startsWith('OPTIONS * HTTP/1.1\r\n'), JSON.stringify(sent));
});

it('h1 pool: the response as the handler hears it — fields as an object, hop-by-hop ones left out, trailers of a chunked body', async () => {
  const u = await httpServer((req, res) => {
    if (req.method === 'HEAD') { res.writeHead(200, { 'content-length': '4' }); res.end(); return; }
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.writeHead(200, { trailer: 'x-sum', 'Content-Type': 'text/plain' });
    res.write('ab');
    res.addTrailers({ 'x-sum': '42' });
    res.end('cd');
  });
  const p = pool(u.port);
  const r = await call(p);
  assert.equal(r.body, 'abcd');
  assert.deepEqual(r.trailers, { 'x-sum': '42' });
  assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2'], 'a repeated field is an array');
  assert.equal(r.headers['content-type'], 'text/plain', 'names lowercased');
  assert.equal(r.headers.trailer, 'x-sum');
  for (const hop of ['transfer-encoding', 'connection', 'keep-alive']) assert.equal(r.headers[hop], undefined, `${hop} left out`);

  // HEAD: no body whatever the length says; its connection is closed after (servers that send a body anyway).
  const h = await call(p, { method: 'HEAD' });
  assert.deepEqual([h.status, h.body, h.headers['content-length']], [200, '', '4']);
  await call(p);
  assert.equal(u.connections.length, 2, 'the connection that carried the HEAD was closed');
});

it('h1 pool: interim 1xx responses are skipped, Connection-listed fields removed, a field named constructor works', async () => {
  const u = await rawReplies('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'
    + 'HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: secret\r\nconstructor: c\r\nConstructor: d\r\n__proto__: p\r\nContent-Length: 2\r\n\r\nok');
  const p = pool(u.port);
  const c = start(p);
  const r = await c.result;
  assert.deepEqual(c.events, ['start', 'head 200', 'data', 'end'], 'one head, the final one');
  assert.equal(r.headers.link, undefined, 'the interim fields are not the response\'s');
  assert.deepEqual(r.headers, { constructor: ['c', 'd'], ['__proto__']: 'p', 'content-length': '2' });
  assert.equal((await call(p)).body, 'ok', 'the connection is kept');
  assert.equal(u.connections.length, 1);
});

it('h1 pool: a malformed response fails its call (TRL_UPSTREAM_MALFORMED_RESPONSE), a 101 too; the pool keeps serving', async () => {
  const answers = ['NOT HTTP\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    'HTTP/1.1 200 OK\r\nX: a\r\n  folded\r\nContent-Length: 0\r\n\r\n', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n'];
  let n = 0;
  const u = await rawServer((data, s) => {
    if (!data.endsWith('\r\n\r\n')) return;
    const a = answers[n++];
    s.end(a ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const p = pool(u.port);
  for (let i = 0; i < answers.length; i++) await assert.rejects(call(p), { code: 'TRL_UPSTREAM_MALFORMED_RESPONSE' }, answers[i]);
  assert.equal((await call(p)).body, 'ok');
});

it('h1 pool: the idle time — keepAliveTimeoutMs without a hint, the server\'s Keep-Alive: timeout less 2 s, capped at keepAliveMaxTimeoutMs', async () => {
  /** The connections a server saw for two calls 300 ms apart. */
  const connectionsFor = async (u: Upstream, o: Partial<H1PoolOptions>) => {
    const p = pool(u.port, o);
    await call(p);
    await wait(300);
    await call(p);
    await p.destroy();
    return u.connections.length;
  };
  const noHint = () => rawReplies('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  assert.equal(await connectionsFor(await noHint(), { keepAliveTimeoutMs: 150 }), 2, 'no hint: 150 ms, so a new connection');
  assert.equal(await connectionsFor(await noHint(), { keepAliveTimeoutMs: 1000 }), 1, 'no hint: 1 s, reused');
  // Node's server says `Keep-Alive: timeout=10`: 8 s, whatever keepAliveTimeoutMs says.
  assert.equal(await connectionsFor(await httpServer((_req, res) => res.end('ok')), { keepAliveTimeoutMs: 150 }), 1, 'the hint: reused');
  assert.equal(await connectionsFor(await httpServer((_req, res) => res.end('ok')), { keepAliveTimeoutMs: 10_000, keepAliveMaxTimeoutMs: 150 }), 2, 'the hint capped');

  // A hint of 2 s or less leaves nothing to keep: the connection closes after its response, and the next call at once opens another.
  const short = await rawReplies('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok');
  const p = pool(short.port);
  await call(p);
  await call(p);
  assert.equal(short.connections.length, 2);
  const three = await rawReplies('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=3\r\nContent-Length: 2\r\n\r\nok');
  const q = pool(three.port);
  await call(q);
  await call(q);
  assert.equal(three.connections.length, 1, 'a hint of 3 s keeps it 1 s');
});

it('h1 pool: an idle connection past its time is closed without a call to notice it; idle connections do not hold the process open', async () => {
  const u = await rawReplies('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const p = pool(u.port, { keepAliveTimeoutMs: 100 });
  await call(p);
  assert.equal(p.connections, 1);
  let closed = false;
  u.connections[0]!.on('close', () => { closed = true; });
  await until(() => (p.connections === 0 && closed ? true : undefined), () => `${p.connections} connections, closed: ${closed}`);

  // A process whose only handle is an idle pooled connection (to a server in this one) exits by itself.
  const v = await httpServer((_req, res) => res.end('ok'));
  const module = new URL('../../src/proxy/h1-pool.js', import.meta.url).href;
  const script = `
    import { H1Pool } from ${JSON.stringify(module)};
    const p = new H1Pool('127.0.0.1', ${v.port}, '127.0.0.1:${v.port}', ${JSON.stringify({ ...OPTIONS, maxConnections: 10, keepAliveTimeoutMs: 60_000 })});
    p.dispatch({ method: 'GET', path: '/', headers: {}, body: null }, {
      onResponseEnd() { console.log('ended', p.connections); },
      onResponseError(_c, e) { console.log('error', e.code); process.exitCode = 1; },
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  const code = await new Promise<number | null>((resolve) => {
    const kill = setTimeout(() => { process.kill(-child.pid!, 'SIGKILL'); resolve(null); }, 5000);
    child.on('exit', (c) => { clearTimeout(kill); resolve(c); });
  });
  assert.equal(out.trim(), 'ended 1', 'the call ended with its connection kept');
  assert.equal(code, 0, 'the process exited with an idle connection open');
});

it('h1 pool: a server that closes an idle connection costs the next call nothing; bytes after a response, or on an idle connection, retire it', async () => {
  const u = await httpServer((_req, res) => res.end('ok'));
  const p = pool(u.port);
  await call(p);
  u.connections[0]!.destroy();
  await until(() => (p.connections === 0 ? true : undefined), () => `${p.connections} connections`);
  assert.equal((await call(p)).body, 'ok', 'a fresh connection');
  assert.equal(u.connections.length, 2);

  const extra = await rawReplies('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA');
  const q = pool(extra.port);
  assert.equal((await call(q)).body, 'ok');
  assert.equal((await call(q)).body, 'ok');
  assert.equal(extra.connections.length, 2, 'not reused after unasked bytes');

  const chatty = await rawReplies('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const r = pool(chatty.port);
  await call(r);
  chatty.connections[0]!.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  await until(() => (r.connections === 0 ? true : undefined), () => `${r.connections} connections`);
  assert.equal((await call(r)).body, 'ok');
  assert.equal(chatty.connections.length, 2, 'bytes on an idle connection closed it');
});

it('h1 pool: a response that ends before its request body was all sent does not leave the connection behind', async () => {
  const u = await httpServer((req, res) => { if (req.url === '/early') res.end('too large'); else { req.resume(); req.on('end', () => res.end('ok')); } });
  const p = pool(u.port);
  const body = new PassThrough();
  const c = start(p, { method: 'POST', path: '/early', body });
  body.write('part of a body that never ends');
  const r = await c.result;
  assert.deepEqual([r.status, r.body], [200, 'too large']);
  await until(() => (p.connections === 0 ? true : undefined), () => `${p.connections} connections`);
  assert.equal((await call(p)).body, 'ok');
  assert.equal(u.connections.length, 2);
  body.end();
});

it('h1 pool: body chunks stay intact after later reads, on one connection and across two read at once', async () => {
  // Every write differs from the one before, so a chunk that still shared memory with a later read would not match.
  const piece = (tag: string, i: number) => `${tag}${String(i).padStart(4, '0')}`.repeat(200);
  const u = await httpServer((req, res) => {
    const tag = req.url!.slice(1);
    let i = 0;
    const next = () => { if (i === 40) { res.end(); return; } res.write(piece(tag, i++)); setImmediate(next); };
    next();
  });
  const p = pool(u.port);
  const [a, b] = await Promise.all([call(p, { path: '/a' }), call(p, { path: '/b' })]);
  const expect = (tag: string) => Array.from({ length: 40 }, (_, i) => piece(tag, i)).join('');
  assert.equal(a.body, expect('a'));
  assert.equal(b.body, expect('b'));
  assert.equal(u.connections.length, 2);
});

it('h1 pool: back-pressure — a paused call gets no data until resumed, and the server\'s writes stall meanwhile', async () => {
  const MiB = 1024 * 1024;
  const total = 16 * MiB;
  let written = 0;
  let allWritten = false;
  const u = await httpServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(total) });
    const chunk = Buffer.alloc(64 * 1024, 97);
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!res.write(chunk)) { res.once('drain', pump); return; }
      }
      allWritten = true;
      res.end();
    };
    pump();
  });
  const p = pool(u.port);
  let paused: Controller | undefined;
  let received = 0;
  const done = call(p, {}, {
    onData: (c, chunk) => {
      received += chunk.length;
      if (!paused && received > MiB) { paused = c; c.pause(); }
    },
  });
  await until(() => (paused ? true : undefined), () => `received ${received}`, 5000);
  assert.equal(paused!.paused, true);
  const at = received;
  await wait(200);
  assert.equal(received, at, 'nothing delivered while paused');
  assert.equal(allWritten, false, `the server could not write it all (${written} of ${total})`);
  paused!.resume();
  assert.equal(paused!.paused, false);
  const r = await done;
  assert.equal(r.body.length, total);
});

it('h1 pool: a call paused in onResponseStart, or on its last chunk, leaves a connection that serves the next call', async () => {
  const u = await httpServer((_req, res) => res.end(Buffer.alloc(256 * 1024, 98)));
  const p = pool(u.port);
  for (let i = 0; i < 3; i++) {
    // Pauses on every chunk, the last one included, and resumes a moment later.
    const r = await call(p, {}, { onData: (c) => { c.pause(); setTimeout(() => c.resume(), 1); } });
    assert.equal(r.body.length, 256 * 1024);
  }
  const r = await call(p, {}, { onHead: (c) => { c.pause(); setTimeout(() => c.resume(), 20); } });
  assert.equal(r.body.length, 256 * 1024);
  assert.equal(u.connections.length, 1, 'the same connection each time');
});

it('h1 pool: a call that paused on its last chunk and never resumed leaves an idle connection that still sees the server close', async () => {
  const u = await httpServer((_req, res) => res.end('ok'));
  const p = pool(u.port);
  const r = await call(p, {}, { onData: (c) => c.pause() });
  assert.equal(r.body, 'ok');
  assert.equal(p.connections, 1);
  u.connections[0]!.destroy();
  // (The pool's own idle time is 4 s and the server's hint 8 s: only reading the close can retire it this soon.)
  await until(() => (p.connections === 0 ? true : undefined), () => `${p.connections} connections`, 1500);
});

it('h1 pool: an aborted call in flight hears its reason, no more data, and its connection is not reused; the pool keeps serving', async () => {
  const holding: ServerResponse[] = [];
  let dripClosed = false;
  const u = await httpServer((req, res) => {
    if (req.url === '/hold') holding.push(res);
    else if (req.url === '/drip') { res.on('close', () => { dripClosed = true; }); res.writeHead(200); res.write('first'); holding.push(res); } else res.end('ok');
  });
  const p = pool(u.port);
  const c = start(p, { path: '/hold' });
  await held(holding, 1);
  const reason = new Error('gave up');
  c.controller!.abort(reason);
  assert.equal(c.controller!.aborted, true);
  assert.equal(c.controller!.reason, reason);
  assert.equal(await c.result.catch((e: unknown) => e), reason, 'the very reason');
  assert.deepEqual(c.events, ['start', 'error gave up']);
  assert.equal((await call(p)).body, 'ok');
  assert.equal(u.connections.length, 2);

  // Mid-body: the first chunk aborts; the rest the server writes is never heard.
  let dataAfter = 0;
  const mid = start(p, { path: '/drip' }, { onData: (ctl) => { if (ctl.aborted) dataAfter++; else ctl.abort(reason); } });
  assert.equal(await mid.result.catch((e: unknown) => e), reason);
  await until(() => (dripClosed ? true : undefined), () => 'the server\'s response is still open');
  holding[1]!.write('more'); // to a closed connection: nobody hears it
  assert.deepEqual([mid.events, dataAfter], [['start', 'head 200', 'data', 'error gave up'], 0]);

  // After the end an abort changes nothing.
  const ended = start(p);
  await ended.result;
  ended.controller!.abort(reason);
  assert.deepEqual(ended.events, ['start', 'head 200', 'data', 'end']);
  assert.equal((await call(p)).body, 'ok');
});

it('h1 pool: a queued call aborted when it gets its connection (as the forwarder does) is never sent; the calls behind it are served', async () => {
  const holding: ServerResponse[] = [];
  const u = await httpServer((req, res) => { if (req.url === '/hold') holding.push(res); else res.end(req.url); });
  const p = pool(u.port, { maxConnections: 1 });
  const first = start(p, { path: '/hold' });
  await held(holding, 1);
  const reason = new Error('abandoned while queued');
  const abandoned = start(p, { path: '/never' }, { onStart: (c) => c.abort(reason) });
  const behind = start(p, { path: '/behind' });
  assert.deepEqual(abandoned.events, []);
  holding[0]!.end('held');
  assert.equal((await first.result).body, 'held');
  assert.equal(await abandoned.result.catch((e: unknown) => e), reason);
  assert.deepEqual(abandoned.events, ['start', 'error abandoned while queued']);
  assert.equal((await behind.result).body, '/behind');
  assert.deepEqual(u.requests.map((r) => r.url), ['/hold', '/behind'], 'the aborted one was never sent');
  assert.equal(u.connections.length, 1, 'nothing of it was written, so its connection served the call behind it');
});

it('h1 pool: onRequestStart comes once a new connection is connected, at once (inside dispatch) on an idle one; a connect that fails fails a call that never started', async () => {
  const u = await httpServer((req, res) => res.end(req.url));
  const p = pool(u.port);
  const fresh = start(p, { path: '/fresh' });
  assert.deepEqual(fresh.events, [], 'not yet: its connection is still connecting');
  assert.equal((await fresh.result).body, '/fresh');
  assert.deepEqual(fresh.events, ['start', 'head 200', 'data', 'end']);
  const reused = start(p, { path: '/reused' });
  assert.deepEqual(reused.events, ['start'], 'an idle connection: onRequestStart before dispatch returns');
  assert.equal((await reused.result).body, '/reused');
  assert.equal(u.connections.length, 1);

  // Refused: the handler hears only the error.
  const gone = await httpServer((_req, res) => res.end());
  await new Promise((r) => servers.pop()!.close(r));
  const refused = start(pool(gone.port));
  await assert.rejects(refused.result, { code: 'ECONNREFUSED' });
  assert.deepEqual(refused.events, ['error ECONNREFUSED']);

  // A connect that never completes: the connect timeout, and no onRequestStart before it.
  const port = await unaccepting();
  const slow = pool(port, { connectTimeoutMs: 150 });
  const timedOut = start(slow);
  await assert.rejects(timedOut.result, { code: 'UND_ERR_CONNECT_TIMEOUT' });
  assert.deepEqual(timedOut.events, ['error UND_ERR_CONNECT_TIMEOUT']);
  assert.equal(slow.connections, 0);

  // destroy() while a connection is connecting: its call never started either.
  const pending = pool(port, { connectTimeoutMs: 5000 });
  const connecting = start(pending);
  await wait(50);
  assert.deepEqual(connecting.events, []);
  await pending.destroy();
  await assert.rejects(connecting.result, { code: 'UND_ERR_DESTROYED' });
  assert.deepEqual(connecting.events, ['error UND_ERR_DESTROYED']);
});

it('h1 pool: a call aborted in onRequestStart, before any of it was written, gives its connection back: the next call reuses it', async () => {
  const u = await httpServer((req, res) => res.end(`${req.url} ${req.headers.connection}`));
  const p = pool(u.port);
  const reason = new Error('not wanted after all');
  const abortInStart = { onStart: (c: Controller) => c.abort(reason) };

  // On a new connection (onRequestStart comes from its connect).
  const first = start(p, { path: '/never-1' }, abortInStart);
  assert.equal(await first.result.catch((e: unknown) => e), reason, 'the handler heard the abort\'s reason');
  assert.deepEqual(first.events, ['start', 'error not wanted after all']);
  assert.deepEqual([first.controller!.aborted, first.controller!.reason], [true, reason]);
  assert.equal(p.connections, 1, 'the connection stayed');
  assert.equal((await call(p, { path: '/a' })).body, '/a keep-alive');
  assert.equal(u.connections.length, 1, 'the next call went on the connection the aborted one had opened');

  // On an idle connection (onRequestStart inside dispatch).
  const second = start(p, { path: '/never-2' }, abortInStart);
  assert.deepEqual(second.events, ['start', 'error not wanted after all'], 'all of it inside dispatch');
  assert.equal(await second.result.catch((e: unknown) => e), reason);
  assert.equal((await call(p, { path: '/b' })).body, '/b keep-alive');

  // What the aborted call would have done to the connection is undone: a reset: true call aborted leaves it
  // reusable, and it does not count as one of the connection's requests.
  const reset = start(p, { path: '/never-3', reset: true }, abortInStart);
  assert.equal(await reset.result.catch((e: unknown) => e), reason);
  assert.equal((await call(p, { path: '/c' })).body, '/c keep-alive', 'not connection: close');
  assert.equal(u.connections.length, 1);
  assert.deepEqual(u.requests.map((r) => r.url), ['/a', '/b', '/c'], 'none of the aborted calls reached the server');

  const v = await httpServer((req, res) => res.end(`${req.url} ${req.headers.connection}`));
  const q = pool(v.port, { maxRequestsPerConnection: 3 });
  assert.equal((await call(q, { path: '/1' })).body, '/1 keep-alive');
  await start(q, { path: '/never' }, abortInStart).result.catch(() => undefined);
  assert.equal((await call(q, { path: '/2' })).body, '/2 keep-alive', 'the aborted call was not the second request');
  assert.equal((await call(q, { path: '/3' })).body, '/3 close', 'the third is the last');
  assert.equal(v.connections.length, 1);
});

it('h1 pool: 5000 queued calls that each abort as they start are ended one after another (a loop, not recursion), and the call behind them is served', async () => {
  const holding: ServerResponse[] = [];
  const u = await httpServer((req, res) => { if (req.url === '/hold') holding.push(res); else res.end(req.url); });
  const p = pool(u.port, { maxConnections: 1 });
  const first = start(p, { path: '/hold' });
  await held(holding, 1);
  const gone = new Error('gone');
  const aborting = Array.from({ length: 5000 }, () => start(p, { path: '/never' }, { onStart: (c) => c.abort(gone) }));
  const last = start(p, { path: '/last' });
  holding[0]!.end('held');
  assert.equal((await first.result).body, 'held');
  for (const a of aborting) assert.equal(await a.result.catch((e: unknown) => e), gone);
  assert.equal((await last.result).body, '/last');
  assert.equal(u.connections.length, 1, 'the one connection served them all');
  assert.deepEqual(u.requests.map((r) => r.url), ['/hold', '/last']);
});

// Only a call aborted inside onRequestStart gives its connection back: later, bytes the server sent unasked may already be on it.
it('h1 pool: a streamed body aborted before its first chunk costs its connection; nothing of it reaches the server', async () => {
  const u = await httpServer((req, res) => { let n = ''; req.on('data', (c: Buffer) => { n += c.toString(); }); req.on('end', () => res.end(`${req.url} ${n}`)); });
  const p = pool(u.port);
  await call(p, { path: '/warm' });
  const body = new PassThrough();
  const streamed = start(p, { method: 'PUT', path: '/streamed', body });
  assert.deepEqual(streamed.events, ['start']);
  await wait(20);
  const reason = new Error('the client went away');
  streamed.controller!.abort(reason);
  assert.equal(await streamed.result.catch((e: unknown) => e), reason);
  body.end('too late');
  assert.equal((await call(p, { method: 'POST', path: '/next', body: Buffer.from('x') })).body, '/next x');
  assert.equal(u.connections.length, 2, 'a new connection for the next call');
  assert.deepEqual(u.requests.map((r) => r.url), ['/warm', '/next']);
});

it('h1 pool: a call paused in onRequestStart hears nothing of its response until it resumes', async () => {
  const u = await rawReplies('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const p = pool(u.port);
  for (const when of ['new connection', 'idle connection']) {
    let ctl: Controller | undefined;
    const c = start(p, {}, { onStart: (x) => { ctl = x; x.pause(); } });
    await until(() => (ctl ? true : undefined), () => 'no onRequestStart');
    // The answer is written at once; it waits in the pool meanwhile.
    await wait(100);
    assert.deepEqual(c.events, ['start'], `${when}: paused`);
    ctl!.resume();
    assert.equal((await c.result).body, 'ok', when);
    assert.deepEqual(c.events, ['start', 'head 200', 'data', 'end'], when);
  }
  assert.equal(u.connections.length, 1);
});

it('h1 pool: connect refused is ECONNREFUSED; a server that closes before or in the middle of a response is UND_ERR_SOCKET', async () => {
  const gone = await httpServer((_req, res) => res.end());
  const port = gone.port;
  await new Promise((r) => servers.pop()!.close(r));
  const refused = start(pool(port));
  await assert.rejects(refused.result, { code: 'ECONNREFUSED' });

  const closer = await rawServer((_d, s) => s.end());
  await assert.rejects(call(pool(closer.port)), { code: 'UND_ERR_SOCKET' });

  const cutter = await rawServer((_d, s) => { s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'); setTimeout(() => s.end(), 20); });
  const cut = start(pool(cutter.port));
  await assert.rejects(cut.result, { code: 'UND_ERR_SOCKET' });
  assert.deepEqual(cut.events, ['start', 'head 200', 'data', 'error UND_ERR_SOCKET'], 'the head and the body so far, then the error');

  const chunks = await rawServer((_d, s) => { s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'); });
  await assert.rejects(call(pool(chunks.port)), { code: 'UND_ERR_SOCKET' });

  // Read to the close: the close is the end.
  const untilClose = await rawServer((_d, s) => { s.end('HTTP/1.1 200 OK\r\n\r\nall of it'); });
  const q = pool(untilClose.port);
  assert.equal((await call(q)).body, 'all of it');
  await until(() => (q.connections === 0 ? true : undefined), () => `${q.connections} connections`);
});

it('h1 pool: close() lets calls in flight and waiting finish, refuses new ones (UND_ERR_CLOSED), then closes the connections', async () => {
  const holding: ServerResponse[] = [];
  const u = await httpServer((req, res) => { if (req.url === '/hold') holding.push(res); else res.end(req.url); });
  const p = pool(u.port, { maxConnections: 1 });
  const inflight = start(p, { path: '/hold' });
  await held(holding, 1);
  const waiting = start(p, { path: '/waiting' });
  let closed = false;
  const closing = p.close().then(() => { closed = true; });
  const late = start(p);
  assert.equal(late.dispatched, false, 'dispatch says no');
  await assert.rejects(late.result, { code: 'UND_ERR_CLOSED' });
  await wait(50);
  assert.equal(closed, false, 'close waits for the call in flight');
  holding[0]!.end('late');
  assert.equal((await inflight.result).body, 'late');
  assert.equal((await waiting.result).body, '/waiting', 'and for the one waiting');
  // (Well before the server's keep-alive hint of 8 s or the pool's 4 s would close an idle connection.)
  await until(() => (closed ? true : undefined), () => 'close() still waits after the last call ended', 1000);
  await closing;
  assert.equal(p.connections, 0);
  await until(() => (u.connections.every((c) => c.destroyed) ? true : undefined), () => 'a connection is still open');

  // Idle connections close at once.
  const q = pool(u.port);
  await call(q);
  assert.equal(q.connections, 1);
  await q.close();
  assert.equal(q.connections, 0);
});

it('h1 pool: destroy() fails calls in flight and waiting with UND_ERR_DESTROYED, and refuses new ones', async () => {
  const holding: ServerResponse[] = [];
  const u = await httpServer((_req, res) => holding.push(res));
  const p = pool(u.port, { maxConnections: 1 });
  const inflight = start(p);
  await held(holding, 1);
  const waiting = start(p);
  await p.destroy();
  await assert.rejects(inflight.result, { code: 'UND_ERR_DESTROYED' });
  await assert.rejects(waiting.result, { code: 'UND_ERR_DESTROYED' });
  assert.deepEqual(waiting.events, ['error UND_ERR_DESTROYED'], 'the waiting call never had a connection');
  assert.equal(p.connections, 0);
  const late = start(p);
  assert.equal(late.dispatched, false);
  await assert.rejects(late.result, { code: 'UND_ERR_DESTROYED' });
});

it('h1 pool over TLS (SIMPLE, the rule\'s CA file): one verified connection for sequential calls; an untrusted server and a silent one fail with the connector\'s codes', async () => {
  const ca = await createTestCa('h1 pool test root');
  const id = 'spiffe://cluster.local/ns/shop/sa/api';
  const leaf = await issueLeaf(ca, id);
  const dir = mkdtempSync(join(tmpdir(), 'trl-h1-pool-'));
  dirs.push(dir);
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  const u: Upstream = { port: 0, connections: [], requests: [] };
  const s = createHttpsServer({ key: leaf.keyPem, cert: leaf.certChainPem, keepAliveTimeout: 10_000 }, (req, res) => { u.requests.push(req); res.end(`tls ${req.url}`); });
  s.on('secureConnection', (c: Socket) => u.connections.push(c));
  await listen(s, u);
  const env = { workload: new WorkloadTls(), observer: NO_TLS_OBSERVER, withoutCertificate: 'refuse' as const };
  const connector = (tls: UpstreamTls, port: number) => new UpstreamConnector(tls, 'api.example.test', '127.0.0.1', port, env);

  const p = pool(u.port, {}, connector({ mode: 'SIMPLE', subjectAltNames: [id], caCertificates: caFile }, u.port));
  for (let i = 0; i < 3; i++) {
    const c = start(p, { path: `/${i}` });
    // The first opens the connection and starts once the server is verified; the others start on the idle connection.
    assert.deepEqual(c.events, i === 0 ? [] : ['start'], `call ${i}`);
    assert.equal((await c.result).body, `tls /${i}`);
  }
  assert.equal(u.connections.length, 1, 'one TLS connection for three calls');

  const other = await createTestCa('another root');
  const otherFile = join(dir, 'other.pem');
  writeFileSync(otherFile, other.certPem);
  const untrusted = pool(u.port, {}, connector({ mode: 'SIMPLE', subjectAltNames: [id], caCertificates: otherFile }, u.port));
  const refusedTls = start(untrusted);
  await assert.rejects(refusedTls.result, (e: Error & { code?: string; reason?: string }) => e.code === 'TRL_PROXY_UPSTREAM_TLS' && e.reason === 'untrusted');
  assert.deepEqual(refusedTls.events, ['error TRL_PROXY_UPSTREAM_TLS'], 'a connection that was never verified: no onRequestStart');

  // A server that accepts and never answers the handshake: the connect timeout covers the handshake.
  const silent = await rawServer(() => undefined);
  const slow = pool(silent.port, { connectTimeoutMs: 150 }, connector({ mode: 'SIMPLE', subjectAltNames: [], insecureSkipVerify: true }, silent.port));
  const handshake = start(slow);
  await assert.rejects(handshake.result, { code: 'UND_ERR_CONNECT_TIMEOUT' });
  assert.deepEqual(handshake.events, ['error UND_ERR_CONNECT_TIMEOUT'], 'connected but never verified: no onRequestStart');

  // A rule whose files cannot be read refuses the call before a connection.
  const broken = pool(u.port, {}, connector({ mode: 'SIMPLE', subjectAltNames: [], caCertificates: join(dir, 'missing.pem') }, u.port));
  const c = start(broken);
  await assert.rejects(c.result, { code: 'TRL_PROXY_UPSTREAM_TLS' });
  assert.deepEqual(c.events, ['error TRL_PROXY_UPSTREAM_TLS']);
  assert.equal(broken.connections, 0);
});
