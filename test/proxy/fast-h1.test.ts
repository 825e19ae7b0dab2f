/**
 * The listeners' own HTTP/1.1 server (fast-h1.ts) through a real
 * `ProxyServer` on loopback: raw `node:net` sockets where the bytes on the
 * wire matter, node:http with a keep-alive Agent and curl as real clients.
 * Each test names a line of fast-h1.ts's header comment: keep-alive by
 * version and `Connection`, the response's framing (chunked, to the close,
 * no body), header checks, pipelining, the hand-over to Node's server (and
 * Node's answers from then on), the response's `close` event, the two
 * timeouts, and closeIdleConnections / closeAllConnections.
 *
 * Whether a request was served here or by Node's server is told by what the
 * handler got (`FastRequest` or Node's IncomingMessage), never by
 * `TRELLIS_HTTP1_SERVER` (read once when the module loads).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { FastRequest, FastResponse } from '../../src/proxy/fast-h1.js';
import { listen } from '../../src/proxy/http-server.js';
import { resolveLimits, type ProxyLimits } from '../../src/proxy/limits.js';
import { ProxyServer } from '../../src/proxy/listener-server.js';
import { readIntoShared } from '../../src/proxy/shared-reads.js';
import { eventually } from '../helpers/proxy.js';

/** Every test is bounded: a server that never answers fails its test instead of hanging the run. */
const it = (name: string, fn: () => Promise<void>, opts: { todo?: string } = {}) => test(name, { timeout: 10_000, ...opts }, fn);

const servers: ProxyServer[] = [];
const sockets: Socket[] = [];
const agents: Agent[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  for (const a of agents) a.destroy();
  for (const s of servers) {
    s.closeAllConnections();
    await Promise.race([new Promise((r) => s.close(r)), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
});

/** What the handler was given, for one request. */
interface Seen {
  readonly fast: boolean;
  readonly fastResponse: boolean;
  readonly url: string;
  readonly httpVersion: string;
  /** The client's port: which connection the request came on. */
  readonly port: number;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Set by the response's `close` event: whether the response had finished then. */
  closed?: { writableFinished: boolean };
}

type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;

interface Served { server: ProxyServer; port: number; seen: Seen[] }

/** A ProxyServer on 127.0.0.1 whose handler records what it was given, then calls `handler`. */
async function serve(handler: Handler = echo, limits?: ProxyLimits): Promise<Served> {
  const seen: Seen[] = [];
  const server = new ProxyServer((req, res) => {
    const s: Seen = {
      fast: req instanceof FastRequest,
      fastResponse: (res as unknown) instanceof FastResponse,
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      port: req.socket.remotePort ?? 0,
      req,
      res,
    };
    seen.push(s);
    res.once('close', () => { s.closed = { writableFinished: res.writableFinished }; });
    handler(req, res, s);
  }, limits ? { limits } : {});
  servers.push(server);
  const port = await listen(server, '127.0.0.1', 0);
  return { server, port, seen };
}

/** Answers with what it got as JSON (Content-Length set); reads the body of a request Node's server took. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  const reply = (body: string) => {
    const b = JSON.stringify({ fast: req instanceof FastRequest, method: req.method, url: req.url, headers: req.headers, body });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b) });
    res.end(b);
  };
  // A FastRequest has no body and emits no 'end'.
  if (req instanceof FastRequest) { reply(''); return; }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => reply(Buffer.concat(chunks).toString('latin1')));
}

/** A response as it came off the wire (latin1 text). */
interface Reply {
  readonly status: number;
  readonly head: string;
  readonly headers: Map<string, string[]>;
  readonly body: string;
  /** A chunked body as it was on the wire: size lines, data, terminator and trailers. */
  readonly wire: string;
  readonly trailers: Map<string, string[]>;
}

function fieldsOf(lines: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const l of lines) {
    const c = l.indexOf(':');
    const k = l.slice(0, c).toLowerCase();
    m.set(k, [...(m.get(k) ?? []), l.slice(c + 1).trim()]);
  }
  return m;
}

/**
 * The whole responses at the start of `text`. `noBody`: indexes of the
 * responses to HEAD requests; `closed`: the connection has ended (a body
 * without a length runs to it).
 */
function parseReplies(text: string, noBody: ReadonlySet<number> = new Set(), closed = false): Reply[] {
  const out: Reply[] = [];
  let at = 0;
  while (at < text.length) {
    const he = text.indexOf('\r\n\r\n', at);
    if (he < 0) break;
    const head = text.slice(at, he);
    const [line, ...lines] = head.split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(line!);
    if (!m) throw new Error(`not a status line: ${JSON.stringify(line)} in ${JSON.stringify(text.slice(0, 300))}`);
    const status = Number(m[1]);
    const headers = fieldsOf(lines);
    let p = he + 4;
    let body = '';
    let wire = '';
    let trailers = new Map<string, string[]>();
    if (status < 200 || status === 204 || status === 304 || noBody.has(out.length)) {
      // No body.
    } else if (headers.has('content-length')) {
      const n = Number(headers.get('content-length')![0]);
      if (text.length < p + n) break;
      body = text.slice(p, p + n);
      p += n;
    } else if (/chunked/i.test((headers.get('transfer-encoding') ?? []).join(','))) {
      const start = p;
      let done = false;
      for (let i = 0; i < 10_000; i++) {
        const le = text.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(text.slice(p, le), 16);
        if (size === 0) {
          const te = text.indexOf('\r\n\r\n', le - 2);
          if (te < 0) break;
          trailers = fieldsOf(te > le ? text.slice(le + 2, te).split('\r\n') : []);
          p = te + 4;
          done = true;
          break;
        }
        if (text.length < le + 2 + size + 2) break;
        body += text.slice(le + 2, le + 2 + size);
        p = le + 2 + size + 2;
      }
      if (!done) break;
      wire = text.slice(start, p);
    } else {
      if (!closed) break;
      body = text.slice(p);
      p = text.length;
    }
    out.push({ status, head, headers, body, wire, trailers });
    at = p;
  }
  return out;
}

/** A raw client connection: bytes out exactly as given, bytes in kept as they came. */
class Raw {
  #chunks: Buffer[] = [];
  #text: string | undefined;
  bytes = 0;
  /** The server's FIN came. */
  ended = false;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => { this.#chunks.push(b); this.bytes += b.length; this.#text = undefined; });
    socket.on('end', () => { this.ended = true; });
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => { /* a reset: 'close' follows */ });
  }

  static async open(port: number): Promise<Raw> {
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
    return new Raw(s);
  }

  get text(): string {
    this.#text ??= Buffer.concat(this.#chunks).toString('latin1');
    return this.#text;
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The first `n` whole responses, waiting for them (bounded). */
  async replies(n: number, noBody: ReadonlySet<number> = new Set(), ms = 3000): Promise<Reply[]> {
    return eventually(() => {
      const r = parseReplies(this.text, noBody, this.ended || this.closed);
      return r.length >= n ? r : undefined;
    }, ms, () => `${n} responses; got ${JSON.stringify(this.text.slice(0, 600))}`);
  }

  async reply(noBody = false): Promise<Reply> {
    return (await this.replies(1, noBody ? new Set([0]) : new Set()))[0]!;
  }

  /** The server closed the connection (its FIN, or a reset), within `ms`. */
  async closedByServer(ms = 3000): Promise<void> {
    await eventually(() => (this.ended || this.closed ? true : undefined), ms, () => `the connection is still open; got ${JSON.stringify(this.text.slice(0, 300))}`);
  }

  /** Still open after `ms` (the server has not closed it). */
  async openAfter(ms: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return !this.ended && !this.closed;
  }
}

const GET = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: fast.test\r\n${extra}\r\n`;
/** The echo handler's JSON (UTF-8 on the wire; the reply's text is latin1). */
const json = (r: Reply) => JSON.parse(Buffer.from(r.body, 'latin1').toString('utf8')) as { fast: boolean; method: string; url: string; headers: Record<string, string>; body: string };
const one = (r: Reply, name: string) => {
  const v = r.headers.get(name);
  assert.equal(v?.length, 1, `exactly one ${name}: ${r.head}`);
  return v![0]!;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** What Date#toUTCString gives: `Tue, 01 Jan 2030 00:00:00 GMT`. */
const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

// --- Served fast, keep-alive ---

it('a simple GET is served fast: connection: keep-alive, keep-alive: timeout=idleTimeoutMs/1000 and a date', async () => {
  const { port, seen } = await serve(echo, resolveLimits({ idleTimeoutMs: 7_900 }));
  const c = await Raw.open(port);
  c.send(GET('/simple?x=1', 'X-Custom: Value\r\n'));
  const r = await c.reply();
  assert.equal(r.status, 200);
  assert.match(r.head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.deepEqual([seen[0]!.fast, seen[0]!.fastResponse], [true, true]);
  const body = json(r);
  assert.deepEqual([body.method, body.url, body.headers['x-custom'], body.headers.host], ['GET', '/simple?x=1', 'Value', 'fast.test']);
  assert.equal(one(r, 'connection'), 'keep-alive');
  assert.equal(one(r, 'keep-alive'), 'timeout=7');
  assert.match(one(r, 'date'), HTTP_DATE);
  assert.equal(seen[0]!.httpVersion, '1.1');
  assert.equal(await c.openAfter(100), true, 'a keep-alive connection stays open after the response');
});

it('keep-alive: several requests on one connection, each served fast, in order', async () => {
  const { port, seen } = await serve();
  const c = await Raw.open(port);
  for (let i = 1; i <= 4; i++) {
    c.send(GET(`/seq/${i}`));
    const all = await c.replies(i);
    assert.equal(json(all[i - 1]!).url, `/seq/${i}`);
  }
  assert.equal(seen.length, 4);
  assert.ok(seen.every((s) => s.fast && s.port === seen[0]!.port), JSON.stringify(seen.map((s) => [s.fast, s.port])));
});

it('keep-alive with node:http\'s Agent: the requests reuse one socket, served fast, with the keep-alive hint', async () => {
  const { port, seen } = await serve(echo, resolveLimits({ idleTimeoutMs: 30_000 }));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  const get = (path: string) => new Promise<{ status: number; headers: IncomingHttpHeaders; body: string; reused: boolean }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
  const rs = [];
  for (let i = 0; i < 5; i++) rs.push(await get(`/agent/${i}`));
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
  assert.deepEqual(rs.map((r) => r.reused), [false, true, true, true, true]);
  assert.equal(rs[0]!.headers.connection, 'keep-alive');
  assert.equal(rs[0]!.headers['keep-alive'], 'timeout=30');
  assert.ok(seen.every((s) => s.fast && s.port === seen[0]!.port));
});

it('Date: the handler\'s own (by setHeader or writeHead, any case) is the only one', async () => {
  const d = 'Tue, 01 Jan 2030 00:00:00 GMT';
  const { port } = await serve((req, res) => {
    if (req.url === '/set') res.setHeader('Date', d);
    res.writeHead(200, req.url === '/head' ? { DATE: d, 'content-length': 0 } : { 'content-length': 0 });
    res.end();
  });
  const c = await Raw.open(port);
  c.send(GET('/set') + GET('/head') + GET('/none'));
  const [a, b, n] = await c.replies(3);
  assert.equal(one(a!, 'date'), d);
  assert.equal(one(b!, 'date'), d);
  assert.match(one(n!, 'date'), HTTP_DATE);
});

// --- Connection: close and HTTP/1.0 ---

it('Connection: close from the client: the response says connection: close and the server closes after it', async () => {
  const { port, seen } = await serve();
  const c = await Raw.open(port);
  c.send(GET('/bye', 'Connection: close\r\n'));
  const r = await c.reply();
  assert.equal(r.status, 200);
  assert.equal(one(r, 'connection'), 'close');
  assert.equal(r.headers.has('keep-alive'), false);
  await c.closedByServer();
  assert.equal(seen[0]!.fast, true);
});

it('Connection: close set by the handler: the server closes after the response', async () => {
  const { port, seen } = await serve((_req, res) => {
    res.setHeader('Connection', 'close');
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  });
  const c = await Raw.open(port);
  c.send(GET('/handler-close'));
  const r = await c.reply();
  assert.equal(one(r, 'connection'), 'close');
  assert.equal(r.body, 'ok');
  await c.closedByServer();
  assert.equal(seen[0]!.fast, true);
});

it('HTTP/1.0 without keep-alive: connection: close, then closed; with Connection: keep-alive it stays open', async () => {
  const { port, seen } = await serve();
  const c = await Raw.open(port);
  c.send('GET /ten HTTP/1.0\r\n\r\n');
  const r = await c.reply();
  assert.equal(one(r, 'connection'), 'close');
  await c.closedByServer();
  assert.deepEqual([seen[0]!.fast, seen[0]!.httpVersion], [true, '1.0']);

  const k = await Raw.open(port);
  k.send('GET /ten-ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const first = await k.reply();
  assert.equal(one(first, 'connection'), 'keep-alive');
  assert.match(one(first, 'keep-alive'), /^timeout=\d+$/);
  assert.equal(await k.openAfter(100), true, 'HTTP/1.0 with keep-alive was closed');
  k.send('GET /ten-ka-2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const both = await k.replies(2);
  assert.equal(json(both[1]!).url, '/ten-ka-2');
  assert.ok(seen.slice(1).every((s) => s.fast && s.port === seen[1]!.port));
});

// --- Framing of the response ---

it('a response without a length is chunked on HTTP/1.1: exact size lines, terminator and the trailers of addTrailers', async () => {
  const { port, seen } = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('hello');
    res.write('');
    res.write(Buffer.from('wörld'));
    res.addTrailers({ 'x-checksum': 'abc', 'x-more': 'def' });
    res.end('!');
  });
  const c = await Raw.open(port);
  c.send(GET('/chunked') + GET('/chunked-again'));
  const [r, again] = await c.replies(2);
  assert.equal(one(r!, 'transfer-encoding'), 'chunked');
  assert.equal(r!.headers.has('content-length'), false);
  // 'wörld' is 6 bytes of UTF-8 (latin1 text here: two characters for the ö).
  assert.equal(r!.wire, '5\r\nhello\r\n6\r\nw\xc3\xb6rld\r\n1\r\n!\r\n0\r\nx-checksum: abc\r\nx-more: def\r\n\r\n');
  // The next response starts right after the trailers: the framing was exact.
  assert.equal(again!.wire, r!.wire);
  assert.equal(seen.length, 2);
  assert.ok(seen.every((s) => s.fast));
});

it('chunked with end() and no chunk, and with end(chunk) alone: the terminator is right after the last chunk', async () => {
  const { port } = await serve((req, res) => {
    if (req.url === '/end-empty') { res.write('abc'); res.end(); return; }
    if (req.url === '/end-only') { res.end(); return; }
    res.writeHead(200);
    res.end('xyz');
  });
  const c = await Raw.open(port);
  c.send(GET('/end-empty') + GET('/end-only') + GET('/end-chunk'));
  const [a, b, d] = await c.replies(3);
  assert.equal(a!.wire, '3\r\nabc\r\n0\r\n\r\n');
  assert.equal(b!.wire, '0\r\n\r\n');
  assert.equal(d!.wire, '3\r\nxyz\r\n0\r\n\r\n');
});

it('node:http reads a chunked fast response with its trailers', async () => {
  const { port, seen } = await serve((_req, res) => {
    res.write('part one, ');
    res.addTrailers({ 'x-trailer': 'yes' });
    res.end('part two');
  });
  const got = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/trailers', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ body, trailers: res.trailers }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.deepEqual(got, { body: 'part one, part two', trailers: { 'x-trailer': 'yes' } });
  assert.equal(seen[0]!.fast, true);
});

it('HTTP/1.0: a response without a length ends with the connection (no chunking), also when keep-alive was asked', async () => {
  const { port, seen } = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('abc');
    res.end('def');
  });
  for (const extra of ['', 'Connection: keep-alive\r\n']) {
    const c = await Raw.open(port);
    c.send(`GET /ten-body HTTP/1.0\r\n${extra}\r\n`);
    await c.closedByServer();
    const [r] = parseReplies(c.text, new Set(), true);
    assert.ok(r, c.text);
    assert.equal(r.headers.has('transfer-encoding'), false, r.head);
    assert.equal(r.headers.has('content-length'), false, r.head);
    assert.equal(one(r, 'connection'), 'close');
    assert.equal(c.text.slice(c.text.indexOf('\r\n\r\n') + 4), 'abcdef');
  }
  assert.ok(seen.every((s) => s.fast));
});

it('HEAD, 204 and 304 carry no body (and no chunking); the connection goes on after them', async () => {
  const { port, seen } = await serve((req, res) => {
    if (req.method === 'HEAD') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('not for HEAD'); return; }
    if (req.url === '/204') { res.writeHead(204); res.end('not for 204'); return; }
    if (req.url === '/304') { res.writeHead(304, { etag: '"v1"' }); res.write('not'); res.end(' for 304'); return; }
    echo(req, res);
  });
  const c = await Raw.open(port);
  c.send(`HEAD /head HTTP/1.1\r\nHost: fast.test\r\n\r\n` + GET('/204') + GET('/304') + GET('/after'));
  const rs = await c.replies(4, new Set([0]));
  assert.deepEqual(rs.map((r) => r.status), [200, 204, 304, 200]);
  for (const r of rs.slice(0, 3)) assert.equal(r.headers.has('transfer-encoding'), false, r.head);
  // Each head is followed at once by the next status line: no body bytes between them.
  const heads = c.text.split('\r\n\r\n');
  assert.match(heads[1]!, /^HTTP\/1\.1 204 /);
  assert.match(heads[2]!, /^HTTP\/1\.1 304 /);
  assert.match(heads[3]!, /^HTTP\/1\.1 200 /);
  assert.equal(json(rs[3]!).url, '/after');
  assert.equal(seen.length, 4);
  assert.ok(seen.every((s) => s.fast));
});

// --- Headers of the response ---

it('setHeader before writeHead merges: writeHead\'s fields win, arrays give one line each', async () => {
  const { port, seen } = await serve((_req, res) => {
    res.setHeader('x-only-set', 'a');
    res.setHeader('x-both', 'from setHeader');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.writeHead(200, { 'x-both': 'from writeHead', 'x-list': ['1', '2'], 'content-length': 2 });
    res.end('ok');
  });
  const c = await Raw.open(port);
  c.send(GET('/merge'));
  const r = await c.reply();
  assert.equal(one(r, 'x-only-set'), 'a');
  assert.equal(one(r, 'x-both'), 'from writeHead');
  assert.deepEqual(r.headers.get('set-cookie'), ['a=1', 'b=2']);
  assert.deepEqual(r.headers.get('x-list'), ['1', '2']);
  assert.equal(r.body, 'ok');
  assert.equal(seen[0]!.fast, true);
});

it('setHeader then writeHead with the same name in another case: one field, writeHead\'s (as Node)', async () => {
  const { port, seen } = await serve((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.setHeader('content-length', 100);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
    res.end('ok');
  });
  const c = await Raw.open(port);
  c.send(GET('/merge-case'));
  await eventually(() => (c.text.includes('\r\n\r\n') ? true : undefined), 2000, () => 'no response head');
  const head = c.text.slice(0, c.text.indexOf('\r\n\r\n'));
  const fields = fieldsOf(head.split('\r\n').slice(1));
  assert.equal(seen[0]!.fast, true);
  assert.deepEqual(fields.get('content-type'), ['text/plain'], head);
  assert.deepEqual(fields.get('content-length'), ['2'], head);
});

it('an invalid header name or value throws from writeHead (ERR_INVALID_HTTP_TOKEN, ERR_INVALID_CHAR); writeHead twice throws ERR_HTTP_HEADERS_SENT', async () => {
  const codes: (string | undefined)[] = [];
  const { port, seen } = await serve((_req, res) => {
    const bad: Record<string, string | string[]>[] = [{ 'bad name': 'x' }, { 'x-bad(': 'x' }, { '': 'x' }, { 'x-value': 'a\r\nb' }, { 'x-nul': 'a\0b' }, { 'x-list': ['ok', 'b\nad'] }];
    for (const fields of bad) {
      try { res.writeHead(200, fields); codes.push('no throw'); } catch (e) { codes.push((e as { code?: string }).code); }
    }
    codes.push(`headersSent ${res.headersSent}`);
    res.writeHead(201, { 'x-good': 'obs-text \xe9 is fine', 'content-length': 2 });
    try { res.writeHead(202); codes.push('no throw'); } catch (e) { codes.push((e as { code?: string }).code); }
    try { res.setHeader('x-late', '1'); codes.push('no throw'); } catch (e) { codes.push((e as { code?: string }).code); }
    res.end('ok');
  });
  const c = await Raw.open(port);
  c.send(GET('/bad-headers'));
  const r = await c.reply();
  assert.deepEqual(codes, [
    'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_CHAR', 'ERR_INVALID_CHAR', 'ERR_INVALID_CHAR',
    'headersSent false', 'ERR_HTTP_HEADERS_SENT', 'ERR_HTTP_HEADERS_SENT',
  ]);
  // What went out is the one writeHead that passed: nothing of the refused ones.
  assert.equal(r.status, 201);
  assert.equal(one(r, 'x-good'), 'obs-text \xe9 is fine');
  assert.equal(r.body, 'ok');
  assert.doesNotMatch(r.head, /bad|x-value|x-nul|x-list|x-late/i);
  assert.equal(seen[0]!.fast, true);
});

it('writeHead\'s reason phrase goes on the status line', async () => {
  const { port } = await serve((_req, res) => {
    res.writeHead(299, 'Fine Indeed', { 'content-length': 0 });
    res.end();
  });
  const c = await Raw.open(port);
  c.send(GET('/reason'));
  const r = await c.reply();
  assert.match(r.head, /^HTTP\/1\.1 299 Fine Indeed\r\n/);
});

// --- Pipelining ---

it('pipelining: three requests in one write are answered in order, the handler answering each after a different delay', async () => {
  const { port, seen } = await serve((req, res) => {
    const d = Number(new URL(req.url!, 'http://x').searchParams.get('d'));
    setTimeout(() => echo(req, res), d);
  });
  const c = await Raw.open(port);
  c.send(GET('/p1?d=80') + GET('/p2?d=5') + GET('/p3?d=30'));
  const rs = await c.replies(3);
  assert.deepEqual(rs.map((r) => json(r).url), ['/p1?d=80', '/p2?d=5', '/p3?d=30']);
  assert.equal(c.text.split('HTTP/1.1 200').length - 1, 3, 'three responses, no more');
  assert.ok(seen.every((s) => s.fast && s.port === seen[0]!.port));
});

it('shared reads: on this Node reads land in one shared buffer; requests kept from a read survive other connections\' reads over it', async () => {
  const probe = connect(1, '127.0.0.1');
  probe.on('error', () => { /* refused: only its handle is wanted */ });
  sockets.push(probe);
  assert.equal(readIntoShared(probe, () => undefined), true, 'this Node lets accepted sockets read into a shared buffer (shared-reads.ts)');
  const held: (() => void)[] = [];
  const { port, seen } = await serve((req, res) => {
    if (req.url!.startsWith('/hold')) held.push(() => echo(req, res));
    else echo(req, res);
  });
  const a = await Raw.open(port);
  // A connection's first bytes are read by the listener's sniffing (as 'data'); the reads after them land in the shared buffer.
  a.send(GET('/first'));
  assert.equal(json((await a.replies(1))[0]!).url, '/first');
  // Two requests in one read: the second waits for the first (held), kept beyond the read that brought it.
  a.send(GET('/hold') + `GET /second-of-a HTTP/1.1\r\nHost: x\r\nX-Mark: ${'a'.repeat(200)}\r\n\r\n`);
  await eventually(() => (held.length === 1 ? true : undefined), 5000, () => 'the first request never came');
  // Other connections' reads go through the same buffer meanwhile.
  for (let i = 0; i < 3; i++) {
    const b = await Raw.open(port);
    b.send(GET('/first'));
    await b.replies(1);
    b.send(`GET /other-${i} HTTP/1.1\r\nHost: y\r\nX-Mark: ${'b'.repeat(300)}\r\n\r\n`);
    assert.equal(json((await b.replies(2))[1]!).url, `/other-${i}`);
  }
  held.shift()!();
  const rs = await a.replies(3);
  assert.deepEqual(rs.map((r) => json(r).url), ['/first', '/hold', '/second-of-a']);
  assert.equal((json(rs[2]!).headers as Record<string, string>)['x-mark'], 'a'.repeat(200));
  assert.ok(seen.every((s) => s.fast));
});

it('pipelining: requests that arrive while one is in flight wait for it, then are answered in order', async () => {
  const held: (() => void)[] = [];
  const { port, seen } = await serve((req, res) => {
    if (req.url === '/hold') held.push(() => echo(req, res));
    else echo(req, res);
  });
  const c = await Raw.open(port);
  c.send(GET('/hold'));
  await eventually(() => (held.length === 1 ? true : undefined), 2000, () => 'the first request did not reach the handler');
  c.send(GET('/second'));
  c.send(GET('/third'));
  await sleep(50);
  assert.equal(seen.length, 1, 'a pipelined request reached the handler while the one before was in flight');
  assert.equal(c.bytes, 0);
  held[0]!();
  const rs = await c.replies(3);
  assert.deepEqual(rs.map((r) => json(r).url), ['/hold', '/second', '/third']);
  assert.ok(seen.every((s) => s.fast));
});

// --- Hand-over to Node's server ---

/** One connection per case to a server with a 1 KiB head limit; `parts` are written with a pause between them. */
interface FallbackCase {
  readonly name: string;
  readonly parts: readonly (string | Buffer)[];
  /** The status Node answers with. */
  readonly status: number;
  /** The handler was called (by Node's server), with this request. */
  readonly check?: (body: ReturnType<typeof json>, r: Reply, c: Raw) => void;
  /** Wait for this text before sending the next part (Expect: 100-continue). */
  readonly waitFor?: string;
}

const BIG = 'a'.repeat(1100);

const FALLBACKS: readonly FallbackCase[] = [
  { name: 'a POST with a body', parts: ['POST /post HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 5\r\n\r\nhello'], status: 200, check: (b) => assert.equal(b.body, 'hello') },
  { name: 'a chunked request', parts: ['POST /chunked HTTP/1.1\r\nHost: fast.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'], status: 200, check: (b) => assert.equal(b.body, 'hello world') },
  {
    name: 'Expect: 100-continue',
    parts: ['POST /expect HTTP/1.1\r\nHost: fast.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n', 'body'],
    waitFor: 'HTTP/1.1 100 Continue\r\n\r\n',
    status: 200,
    check: (b, _r, c) => { assert.equal(b.body, 'body'); assert.ok(c.text.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), c.text); },
  },
  { name: 'an Upgrade request', parts: ['GET /up HTTP/1.1\r\nHost: fast.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'], status: 200, check: (b) => assert.equal(b.headers.upgrade, 'websocket') },
  { name: 'a head split across two writes', parts: ['GET /split HTTP/1.1\r\nHo', 'st: fast.test\r\nX-Late: yes\r\n\r\n'], status: 200, check: (b) => assert.equal(b.headers['x-late'], 'yes') },
  { name: 'a repeated header', parts: [GET('/repeat', 'X-Rep: 1\r\nX-Rep: 2\r\n')], status: 200, check: (b) => assert.equal(b.headers['x-rep'], '1, 2') },
  { name: 'a header value with a byte ≥ 0x80', parts: [Buffer.from(GET('/high', 'X-High: caf\xe9\r\n'), 'latin1')], status: 200, check: (b) => assert.equal(b.headers['x-high'], 'caf\xe9') },
  { name: 'a method this server does not take', parts: ['PROPFIND /dav HTTP/1.1\r\nHost: fast.test\r\n\r\n'], status: 200, check: (b) => assert.equal(b.method, 'PROPFIND') },
  { name: 'a gRPC content type', parts: [GET('/grpc', 'Content-Type: application/grpc\r\n')], status: 200 },
  { name: 'obs-fold', parts: [GET('/fold', 'X-Fold: a\r\n b\r\n')], status: 400 },
  { name: 'a request line with a control character', parts: ['GET /a\x01b HTTP/1.1\r\nHost: fast.test\r\n\r\n'], status: 400 },
  { name: 'a header name that is not a token', parts: [GET('/name', 'X[Bad]: v\r\n')], status: 400 },
  { name: 'a head over maxRequestHeadersBytes', parts: [GET('/big', `X-Big: ${BIG}\r\n`)], status: 431 },
  { name: 'HTTP/1.1 without Host', parts: ['GET /nohost HTTP/1.1\r\nX-A: b\r\n\r\n'], status: 400 },
];

for (const f of FALLBACKS) {
  it(`fallback to Node's server: ${f.name} (${f.status})`, async () => {
    const { port, seen } = await serve(echo, resolveLimits({ maxRequestHeadersBytes: 1024 }));
    const c = await Raw.open(port);
    for (let i = 0; i < f.parts.length; i++) {
      if (i > 0) {
        if (f.waitFor) await eventually(() => (c.text.includes(f.waitFor!) ? true : undefined), 2000, () => `no ${JSON.stringify(f.waitFor)}: ${c.text}`);
        else await sleep(50);
      }
      c.send(f.parts[i]!);
    }
    const rs = await c.replies(f.waitFor ? 2 : 1);
    const r = rs[rs.length - 1]!;
    assert.equal(r.status, f.status, r.head);
    if (f.status === 200) {
      assert.equal(seen.length, 1);
      assert.deepEqual([seen[0]!.fast, seen[0]!.fastResponse], [false, false], 'served by Node\'s server');
      assert.equal(json(r).fast, false);
      f.check?.(json(r), r, c);
    } else {
      // Node refused it: no handler saw it, and the connection closes.
      assert.equal(seen.length, 0, JSON.stringify(seen.map((s) => s.url)));
      assert.equal(one(r, 'connection'), 'close');
      await c.closedByServer();
    }
  });
}

it('maxRequestHeadersBytes: a head of exactly the limit is served fast, one byte more goes to Node (which may take it)', async () => {
  const LIMIT = 1024;
  const { port, seen } = await serve(echo, resolveLimits({ maxRequestHeadersBytes: LIMIT }));
  // The head without its final CRLF CRLF is `LIMIT + over` bytes.
  const head = (over: number) => {
    const base = GET('/near', 'X-Pad: \r\n').length - 4;
    return GET('/near', `X-Pad: ${'p'.repeat(LIMIT + over - base)}\r\n`);
  };
  assert.equal(head(0).length - 4, LIMIT);
  const c = await Raw.open(port);
  c.send(head(0));
  c.send('POST /empty HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 0\r\n\r\n');
  const rs = await c.replies(2);
  assert.deepEqual(rs.map((r) => r.status), [200, 200]);
  const d = await Raw.open(port);
  d.send(head(1));
  // Node counts only the target, names and values against its limit: it takes this head.
  assert.equal((await d.reply()).status, 200);
  assert.deepEqual(seen.map((s) => [s.url, s.fast]), [['/near', true], ['/empty', true], ['/near', false]]);
});

it('pipelined requests beyond a head\'s worth stop the reading while one is in flight; all are answered in order after it', async () => {
  const LIMIT = 1024;
  const held: (() => void)[] = [];
  const { port, seen } = await serve((req, res) => {
    if (req.url === '/hold') held.push(() => echo(req, res));
    else echo(req, res);
  }, resolveLimits({ maxRequestHeadersBytes: LIMIT }));
  const c = await Raw.open(port);
  c.send(GET('/hold'));
  await eventually(() => (held.length === 1 ? true : undefined), 2000, () => 'the first request did not reach the handler');
  const socket = seen[0]!.req.socket;
  let rest = '';
  for (let i = 0; i < 6; i++) rest += GET(`/queued/${i}`, `X-Pad: ${'q'.repeat(250)}\r\n`);
  assert.ok(rest.length > LIMIT);
  c.send(rest);
  await eventually(() => (socket.isPaused() ? true : undefined), 2000, () => 'the server kept reading past the limit');
  assert.equal(seen.length, 1);
  held[0]!();
  const rs = await c.replies(7);
  assert.deepEqual(rs.map((r) => json(r).url), ['/hold', ...Array.from({ length: 6 }, (_, i) => `/queued/${i}`)]);
  assert.equal(socket.isPaused(), false);
  assert.ok(seen.every((s) => s.fast));
});

it('after a fallback the connection is Node\'s: a fast request before it is answered first, later ones are Node\'s', async () => {
  const { port, seen } = await serve((req, res) => {
    if (req.url === '/first') setTimeout(() => echo(req, res), 60);
    else echo(req, res);
  });
  const c = await Raw.open(port);
  c.send(GET('/first') + 'POST /body HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 3\r\n\r\nabc' + GET('/later'));
  const rs = await c.replies(3);
  assert.deepEqual(rs.map((r) => json(r).url), ['/first', '/body', '/later']);
  assert.equal(json(rs[1]!).body, 'abc');
  assert.deepEqual(seen.map((s) => [s.url, s.fast]), [['/first', true], ['/body', false], ['/later', false]]);
  // And a request sent later, that this server would have taken, is Node's too.
  c.send(GET('/much-later'));
  const more = await c.replies(4);
  assert.equal(json(more[3]!).url, '/much-later');
  assert.equal(seen[3]!.fast, false);
  assert.ok(seen.every((s) => s.port === seen[0]!.port), 'all on one connection');
});

it('node:http\'s Agent: a POST with a body hands the kept-alive socket to Node\'s server, and the GETs after it are Node\'s', async () => {
  const { port, seen } = await serve();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  const call = (method: string, path: string, body?: string) => new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let b = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const a = await call('GET', '/a');
  const b = await call('POST', '/b', 'payload');
  const d = await call('GET', '/d');
  assert.deepEqual([a.status, b.status, d.status], [200, 200, 200]);
  assert.deepEqual([a.reused, b.reused, d.reused], [false, true, true]);
  assert.equal(JSON.parse(b.body).body, 'payload');
  assert.deepEqual(seen.map((s) => [s.url, s.fast]), [['/a', true], ['/b', false], ['/d', false]]);
});

it('curl: two GETs on one connection are served fast; a POST with data is Node\'s and its body is read', async () => {
  const { port, seen } = await serve();
  const curl = (...args: string[]) => new Promise<string>((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '5', ...args], { timeout: 8000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const out = await curl('-w', ' %{http_code} %{num_connects}\\n', `http://127.0.0.1:${port}/c1`, `http://127.0.0.1:${port}/c2`);
  assert.match(out, / 200 1\n.* 200 0\n$/s, out);
  assert.deepEqual(seen.map((s) => [s.url, s.fast]), [['/c1', true], ['/c2', true]]);
  assert.equal(seen[0]!.port, seen[1]!.port);
  const posted = JSON.parse(await curl('--data-binary', 'from curl', `http://127.0.0.1:${port}/c3`));
  assert.deepEqual([posted.fast, posted.body], [false, 'from curl']);
  const ten = JSON.parse(await curl('--http1.0', `http://127.0.0.1:${port}/c4`));
  assert.equal(ten.fast, true);
});

// --- The response's close event ---

it('close after a completed response: writableFinished is true, finish came first', async () => {
  const order: string[] = [];
  const { port, seen } = await serve((req, res) => {
    res.once('finish', () => order.push(`finish ${res.writableFinished}`));
    res.once('close', () => order.push(`close ${res.writableFinished}`));
    echo(req, res);
  });
  const c = await Raw.open(port);
  c.send(GET('/done'));
  await c.reply();
  await eventually(() => seen[0]!.closed, 2000, () => 'no close event');
  assert.deepEqual(seen[0]!.closed, { writableFinished: true });
  assert.deepEqual(order, ['finish true', 'close true']);
  assert.equal(seen[0]!.fast, true);
});

for (const how of ['FIN', 'RST'] as const) {
  it(`close when the client goes away (${how}) with a request in flight: writableFinished is false`, async () => {
    const { port, seen } = await serve(() => { /* never answers */ });
    const c = await Raw.open(port);
    c.send(GET(`/gone-${how}`));
    await eventually(() => seen[0], 2000, () => 'the request did not reach the handler');
    if (how === 'FIN') c.socket.end();
    else c.socket.resetAndDestroy();
    const closed = await eventually(() => seen[0]!.closed, 2000, () => 'no close event on the response');
    assert.deepEqual(closed, { writableFinished: false });
    assert.equal(seen[0]!.fast, true);
    // The handler answering late is harmless.
    seen[0]!.res.end('late');
    if (how === 'FIN') await c.closedByServer();
  });
}

// --- Timeouts ---

it('the stream idle timeout destroys a connection with a request in flight and no exchange; idle between requests it does not apply', async () => {
  const STREAM_IDLE = 200;
  const { port, seen } = await serve((req, res) => {
    if (req.url === '/quick') echo(req, res);
  }, resolveLimits({ streamIdleTimeoutMs: STREAM_IDLE, idleTimeoutMs: 60_000 }));
  const c = await Raw.open(port);
  c.send(GET('/quick'));
  await c.reply();
  assert.equal(await c.openAfter(STREAM_IDLE * 3), true, 'an idle keep-alive connection was cut by the stream idle timeout');
  const t0 = Date.now();
  c.send(GET('/stuck'));
  await c.closedByServer(3000);
  const ms = Date.now() - t0;
  assert.ok(ms >= STREAM_IDLE - 50, `closed after ${ms} ms, before the stream idle timeout`);
  assert.equal(parseReplies(c.text).length, 1, 'nothing was answered for the stuck request');
  const closed = await eventually(() => seen[1]!.closed, 2000, () => 'no close event');
  assert.deepEqual(closed, { writableFinished: false });
  assert.deepEqual(seen.map((s) => s.fast), [true, true]);
});

it('the idle timeout closes a keep-alive connection with nothing in flight, not one whose handler takes longer than it', async () => {
  const IDLE = 300;
  const { port, seen } = await serve((req, res) => {
    if (req.url === '/slow') setTimeout(() => echo(req, res), IDLE * 2);
    else echo(req, res);
  }, resolveLimits({ idleTimeoutMs: IDLE, streamIdleTimeoutMs: 60_000 }));
  const slow = await Raw.open(port);
  slow.send(GET('/slow'));
  const r = await slow.replies(1, new Set(), 3000);
  assert.equal(r[0]!.status, 200, 'a request in flight longer than the idle timeout was cut');
  assert.equal(one(r[0]!, 'keep-alive'), 'timeout=0');

  const c = await Raw.open(port);
  c.send(GET('/then-idle'));
  await c.reply();
  const t0 = Date.now();
  await c.closedByServer(3000);
  const ms = Date.now() - t0;
  assert.ok(ms >= IDLE - 100, `closed after ${ms} ms`);
  assert.ok(seen.every((s) => s.fast));
});

it('the socket keeps one timeout, the shorter one: quiet spells add up to the longer bound, and bytes moving start it anew', async () => {
  const STREAM_IDLE = 150;
  const IDLE = 1200;
  const { port, seen } = await serve((req, res) => {
    if (req.url === '/quick') echo(req, res);
  }, resolveLimits({ streamIdleTimeoutMs: STREAM_IDLE, idleTimeoutMs: IDLE }));
  const c = await Raw.open(port);
  c.send(GET('/quick'));
  await c.reply();
  // Several stream-idle spells go by before the idle bound: the connection stays.
  assert.equal(await c.openAfter(IDLE - 300), true, 'closed before the idle timeout');
  // A request now is activity: the idle count starts over after it.
  c.send(GET('/quick'));
  await c.reply();
  const t0 = Date.now();
  await c.closedByServer(4000);
  const ms = Date.now() - t0;
  assert.ok(ms >= IDLE - 100, `the idle count did not start over with the second request: closed ${ms} ms after it`);
  // And a request stuck on this connection's twin still meets the stream idle bound, not the idle one.
  const d = await Raw.open(port);
  const t1 = Date.now();
  d.send(GET('/stuck'));
  await d.closedByServer(3000);
  const stuck = Date.now() - t1;
  assert.ok(stuck >= STREAM_IDLE - 50 && stuck < IDLE, `a stuck request was cut after ${stuck} ms, not at the stream idle timeout`);
  assert.ok(seen.every((x) => x.fast));
});

// --- closeIdleConnections / closeAllConnections ---

it('closeIdleConnections() closes idle fast connections (and Node\'s) but lets a response in flight finish', async () => {
  const held: (() => void)[] = [];
  const { server, port, seen } = await serve((req, res) => {
    if (req.url === '/held') held.push(() => echo(req, res));
    else echo(req, res);
  });
  const idle = await Raw.open(port);
  idle.send(GET('/idle'));
  await idle.reply();
  const nodes = await Raw.open(port);
  nodes.send('POST /node HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 1\r\n\r\nx');
  await nodes.reply();
  const busy = await Raw.open(port);
  busy.send(GET('/held'));
  await eventually(() => (held.length === 1 ? true : undefined), 2000, () => 'the held request did not reach the handler');

  server.closeIdleConnections();
  await idle.closedByServer();
  await nodes.closedByServer();
  assert.equal(await busy.openAfter(50), true, 'the connection with a request in flight was closed');
  held[0]!();
  const r = await busy.reply();
  assert.equal(json(r).url, '/held');
  assert.deepEqual(seen.map((s) => [s.url, s.fast]), [['/idle', true], ['/node', false], ['/held', true]]);
});

for (const framing of ['content-length', 'chunked'] as const) {
  it(`closeIdleConnections() right after a large response ended (${framing}): the client gets every byte`, async () => {
    const SIZE = 4 * 1024 * 1024;
    const body = Buffer.alloc(SIZE, 'z');
    let server: ProxyServer | undefined;
    const served = await serve((_req, res) => {
      if (framing === 'content-length') { res.writeHead(200, { 'content-length': SIZE }); res.end(body); }
      else { res.writeHead(200); res.write(body.subarray(0, SIZE / 2)); res.end(body.subarray(SIZE / 2)); }
      server!.closeIdleConnections();
    });
    server = served.server;
    const c = await Raw.open(served.port);
    // Reading stops for a moment, so that the response is still in the server's buffers when it ends.
    c.socket.pause();
    c.send(GET('/big'));
    await sleep(100);
    c.socket.resume();
    const r = await c.replies(1, new Set(), 5000);
    assert.equal(r[0]!.body.length, SIZE);
    assert.ok(/^z+$/.test(r[0]!.body), 'the body arrived intact');
    if (framing === 'chunked') assert.ok(r[0]!.wire.endsWith('\r\n0\r\n\r\n'));
    assert.equal(served.seen[0]!.fast, true);
    await eventually(() => served.seen[0]!.closed, 3000, () => 'no close event');
    assert.deepEqual(served.seen[0]!.closed, { writableFinished: true });
  });
}

it('back-pressure: write() returns false while the client does not read, and the response emits drain', async () => {
  const SIZE = 4 * 1024 * 1024;
  const got: { ok?: boolean; drained?: boolean } = {};
  const { port, seen } = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': SIZE });
    got.ok = res.write(Buffer.alloc(SIZE, 'd'));
    res.once('drain', () => { got.drained = true; res.end(); });
  });
  const c = await Raw.open(port);
  c.socket.pause();
  c.send(GET('/drain'));
  await eventually(() => (got.ok !== undefined ? true : undefined), 2000, () => 'the handler did not run');
  await sleep(100);
  assert.equal(got.drained, undefined, 'drain before the client read anything');
  c.socket.resume();
  const [r] = await c.replies(1, new Set(), 5000);
  assert.equal(r!.body.length, SIZE);
  assert.deepEqual(got, { ok: false, drained: true });
  assert.equal(seen[0]!.fast, true);
});

it('the response is finished (and closes) only when its bytes are written: closeAllConnections() on its close event cuts nothing', async () => {
  const SIZE = 4 * 1024 * 1024;
  let finishedAtEnd: boolean | undefined;
  let server: ProxyServer | undefined;
  const served = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': SIZE });
    res.end(Buffer.alloc(SIZE, 'e'));
    finishedAtEnd = res.writableFinished;
    // What a drain does: wait for the responses in flight, then close every connection.
    res.once('close', () => server!.closeAllConnections());
  });
  server = served.server;
  const c = await Raw.open(served.port);
  c.socket.pause();
  c.send(GET('/drain-then-cut'));
  await sleep(150);
  assert.equal(served.seen[0]?.closed, undefined, 'the response closed while its bytes were still on their way out');
  c.socket.resume();
  const [r] = await c.replies(1, new Set(), 5000);
  assert.equal(r!.body.length, SIZE);
  assert.equal(finishedAtEnd, false);
  await c.closedByServer();
  assert.deepEqual(served.seen[0]!.closed, { writableFinished: true });
});

it('closeAllConnections() cuts everything: idle, in flight (fast and Node\'s) and not yet sniffed', async () => {
  const { server, port, seen } = await serve((req, res) => {
    if (req.url === '/idle') echo(req, res);
    else req.resume();
  });
  const idle = await Raw.open(port);
  idle.send(GET('/idle'));
  await idle.reply();
  const fast = await Raw.open(port);
  fast.send(GET('/in-flight'));
  const nodes = await Raw.open(port);
  nodes.send('POST /node-in-flight HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 10\r\n\r\nabc');
  const silent = await Raw.open(port);
  await eventually(() => (seen.length === 3 ? true : undefined), 2000, () => `seen ${seen.map((s) => s.url)}`);

  server.closeAllConnections();
  for (const c of [idle, fast, nodes, silent]) await c.closedByServer(2000);
  assert.equal(fast.bytes + nodes.bytes + silent.bytes, 0, 'nothing was answered');
  const closed = await eventually(() => seen[1]!.closed, 2000, () => 'no close event on the fast response');
  assert.deepEqual(closed, { writableFinished: false });
  assert.deepEqual(seen.map((s) => [s.url, s.fast]), [['/idle', true], ['/in-flight', true], ['/node-in-flight', false]]);
});
