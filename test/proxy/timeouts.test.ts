/**
 * The proxy's own timeouts (limits.ts), configured short so that the test
 * runs in seconds: a stream that keeps moving bytes outlives the stream idle
 * bound many times over, while one that goes quiet ends at that bound (504
 * SI waiting on the upstream, 408 SI while its body arrives, a cut once the
 * response has begun); an idle keep-alive connection is closed at the
 * configured idle bound, also when that is longer than Node's default
 * keep-alive (5 s); HTTP/2 sessions get a GOAWAY; the request timeout cuts
 * an upload that moves but never ends (408 DT) and leaves a request that has
 * arrived alone. HTTP/1.1 over raw sockets and undici, HTTP/2 with node:http2.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { Client, eventually } from '../helpers/proxy.js';
import { LimitedMesh, open, parseRaw, rawExchange, type Target } from './limited-mesh.js';

const STREAM_IDLE_MS = 500;
const IDLE_MS = 1500;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Seen { readonly url: string; bytes: number; complete: boolean; closed: boolean }
const seen: Seen[] = [];

/** Trickles `n` bytes, one every `every` ms (query `?n=&every=`); /stall never answers; /stall-after-head answers one byte, then nothing. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const s: Seen = { url: url.pathname, bytes: 0, complete: false, closed: false };
  seen.push(s);
  req.on('close', () => { s.closed = true; });
  req.on('data', (c: Buffer) => { s.bytes += c.length; });
  req.on('end', () => {
    s.complete = true;
    if (s.url === '/stall') return;
    if (s.url === '/stall-after-head') { res.writeHead(200, { 'content-length': '10' }); res.write('.'); return; }
    if (s.url === '/trickle') {
      const n = Number(url.searchParams.get('n') ?? 10);
      const every = Number(url.searchParams.get('every') ?? 100);
      res.writeHead(200, { 'content-type': 'text/plain' });
      let sent = 0;
      const tick = setInterval(() => {
        if (res.destroyed) { clearInterval(tick); return; }
        res.write('.');
        if (++sent === n) { clearInterval(tick); res.end(); }
      }, every);
      return;
    }
    const delay = Number(url.searchParams.get('delay') ?? 0);
    setTimeout(() => { if (!res.destroyed) res.end(JSON.stringify(s)); }, delay);
  });
}

let mesh: LimitedMesh;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  // The caller's sidecar has the short limits; the callee's keeps the defaults, so what cuts a stream is the caller's bound.
  mesh = await LimitedMesh.start({ streamIdleTimeoutMs: STREAM_IDLE_MS, idleTimeoutMs: IDLE_MS, headersTimeoutMs: 1000 }, handler, { calleeLimits: {} });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

const outboundRecords = (from: number) => records.slice(from).filter((r) => r.direction === 'outbound' && r.proxy === 'web-v1.shop');

function h2request(address: string, path: string): Promise<{ status: number; body: string; ms: number; error?: string }> {
  const t0 = Date.now();
  const session = h2connect(`http://${address}`);
  return new Promise((resolve) => {
    const req = session.request({ ':path': path, ':authority': 'api' });
    let status = 0;
    let body = '';
    const done = (error?: string) => { session.destroy(); resolve({ status, body, ms: Date.now() - t0, ...(error ? { error } : {}) }); };
    req.on('response', (h: IncomingHttpHeaders) => { status = Number(h[':status']); });
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => done());
    req.on('error', (e: Error & { code?: string }) => done(e.code ?? e.message));
    req.end();
  });
}

test('timeouts: a response that keeps moving outlives the stream idle bound many times over (HTTP/1.1 and HTTP/2)', async () => {
  const r0 = records.length;
  const client = new Client(mesh.caller.addresses.outbound!);
  try {
    const t0 = Date.now();
    const r = await client.call(`http://api/trickle?n=25&every=100`);
    assert.equal(r.status, 200);
    assert.equal(r.text, '.'.repeat(25));
    assert.ok(Date.now() - t0 >= 4 * STREAM_IDLE_MS, `the stream lasted ${Date.now() - t0} ms`);
  } finally {
    await client.close();
  }
  const h2 = await h2request(mesh.caller.addresses.outbound!, '/trickle?n=25&every=100');
  assert.equal(h2.status, 200, h2.error);
  assert.equal(h2.body, '.'.repeat(25));
  assert.ok(h2.ms >= 4 * STREAM_IDLE_MS, `the HTTP/2 stream lasted ${h2.ms} ms`);
  assert.deepEqual(outboundRecords(r0).map((x) => [x.status, x.responseFlags]), [[200, []], [200, []]]);
});

test('timeouts: an upload that keeps moving outlives the stream idle bound', async () => {
  const t = mesh.outbound;
  const chunks = Array.from({ length: 25 }, () => '3\r\nabc\r\n');
  const r = await rawExchange(t.address, [`POST ${t.requestTarget('/upload')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, ...chunks, '0\r\n\r\n'], { gapMs: 100, waitMs: 6000 });
  assert.equal(r.status, 200, r.raw);
  assert.equal(JSON.parse(r.body).bytes, 75);
  assert.ok(r.ms >= 4 * STREAM_IDLE_MS, `the upload lasted ${r.ms} ms`);
});

test('timeouts: an upstream that goes quiet is 504 SI at the stream idle bound (HTTP/1.1 and HTTP/2), and its request is abandoned', async () => {
  const r0 = records.length;
  const s0 = seen.length;
  const t = mesh.outbound;
  const r = await rawExchange(t.address, [`GET ${t.requestTarget('/stall')} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`], { waitMs: 3000 });
  assert.equal(r.status, 504, r.raw);
  assert.equal(r.body, `stream timeout: no bytes from the upstream for ${STREAM_IDLE_MS} ms\n`);
  const rec = await eventually(() => outboundRecords(r0)[0], 2000, () => 'no record');
  assert.deepEqual([rec.status, rec.responseFlags], [504, ['SI']]);
  assert.ok(rec.durationMs >= STREAM_IDLE_MS - 20 && rec.durationMs < STREAM_IDLE_MS + 1000, `answered after ${rec.durationMs} ms`);
  const stalled = seen.slice(s0).find((x) => x.url === '/stall')!;
  await eventually(() => (stalled.closed ? true : undefined), 3000, () => 'the app still holds the request');

  const h2 = await h2request(mesh.caller.addresses.outbound!, '/stall');
  assert.equal(h2.status, 504, h2.error);
  assert.ok(h2.ms >= STREAM_IDLE_MS - 20 && h2.ms < STREAM_IDLE_MS + 1000, `HTTP/2: answered after ${h2.ms} ms`);
  assert.deepEqual(outboundRecords(r0).map((x) => x.responseFlags), [['SI'], ['SI']]);
});

test('timeouts: a client that stops sending its body is 408 SI with connection: close at the bound; the app never sees it complete', async () => {
  const r0 = records.length;
  const s0 = seen.length;
  const t = mesh.outbound;
  const r = await rawExchange(t.address, [`POST ${t.requestTarget('/upload')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`], { waitMs: 3000 });
  assert.equal(r.status, 408, r.raw);
  assert.equal(r.body, `stream timeout: no bytes either way for ${STREAM_IDLE_MS} ms while the request was arriving\n`);
  assert.equal(r.headers.connection, 'close');
  assert.ok(r.closed && r.ms >= STREAM_IDLE_MS - 20 && r.ms < STREAM_IDLE_MS + 1000, `closed ${r.closed} after ${r.ms} ms`);
  assert.deepEqual(outboundRecords(r0).map((x) => [x.status, x.responseFlags]), [[408, ['SI']]]);
  const upload = seen.slice(s0).find((x) => x.url === '/upload');
  if (upload) await eventually(() => (upload.closed ? true : undefined), 3000, () => 'the app still holds the request');
  assert.ok(!upload?.complete, 'the app saw the upload complete');
});

test('timeouts: a response that goes quiet after it began is cut at the bound (SI)', async () => {
  const r0 = records.length;
  const t = mesh.outbound;
  const r = await rawExchange(t.address, [`GET ${t.requestTarget('/stall-after-head')} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`], { waitMs: 3000 });
  assert.equal(r.status, 200, r.raw);
  assert.ok(r.closed && r.body === '.', `cut after "${r.body}" (closed ${r.closed}, ${r.ms} ms)`);
  const rec = await eventually(() => outboundRecords(r0)[0], 2000, () => 'no record');
  assert.deepEqual([rec.status, rec.responseFlags], [200, ['SI']]);
});

/** Sends one keep-alive request and resolves with the socket and how long after the response the proxy closed it (or -1 if it did not within `waitMs`). */
async function idleAfterOneRequest(t: Target, waitMs: number): Promise<{ closedAfterMs: number; openAt: (ms: number) => boolean }> {
  const s = await open(t.address);
  let raw = '';
  s.on('data', (b: Buffer) => { raw += b.toString('latin1'); });
  s.write(`GET ${t.requestTarget('/ok')} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`);
  await eventually(() => (parseRaw(raw).status === 200 && raw.endsWith('}') ? true : undefined), 3000, () => raw);
  const t0 = Date.now();
  const closes: number[] = [];
  const closed = new Promise<number>((resolve) => {
    s.once('close', () => { closes.push(Date.now() - t0); resolve(Date.now() - t0); });
    setTimeout(() => resolve(-1), waitMs);
  });
  const closedAfterMs = await closed;
  s.destroy();
  return { closedAfterMs, openAt: (ms) => closes.length === 0 || closes[0]! > ms };
}

test('timeouts: an idle keep-alive connection is closed at the idle bound; one in use more often stays open', async () => {
  const idle = await idleAfterOneRequest(mesh.outbound, 6000);
  // Node adds 1 s to the keep-alive timeout it advertises (limits.ts).
  assert.ok(idle.closedAfterMs >= IDLE_MS - 50 && idle.closedAfterMs < IDLE_MS + 2000, `closed after ${idle.closedAfterMs} ms`);

  const t = mesh.outbound;
  const s = await open(t.address);
  let raw = '';
  let closed = false;
  s.on('data', (b: Buffer) => { raw += b.toString('latin1'); });
  s.once('close', () => { closed = true; });
  const n = 6;
  for (let i = 0; i < n; i++) {
    s.write(`GET ${t.requestTarget('/ok')} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`);
    await wait(700);
  }
  assert.equal(closed, false, 'the connection in use was closed');
  assert.equal(raw.match(/HTTP\/1\.1 200 OK/g)?.length, n, raw);
  s.destroy();
});

test('timeouts: an idle HTTP/2 session gets a GOAWAY at the idle bound', async () => {
  const session = h2connect(`http://${mesh.caller.addresses.outbound!}`);
  try {
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ':path': '/ok', ':authority': 'api' });
      req.on('error', reject);
      req.resume();
      req.on('end', () => resolve());
      req.end();
    });
    const t0 = Date.now();
    const after = await new Promise<number>((resolve) => {
      session.once('goaway', () => resolve(Date.now() - t0));
      setTimeout(() => resolve(-1), IDLE_MS + 3000);
    });
    assert.ok(after >= IDLE_MS - 50 && after < IDLE_MS + 1000, `GOAWAY after ${after} ms`);
  } finally {
    session.destroy();
  }
});

test('timeouts: the request timeout cuts an upload that moves but never ends (408 DT), leaves an arrived request alone, and a long idle bound outlasts Node\'s 5 s keep-alive', async () => {
  const REQUEST_MS = 1000;
  const m = await LimitedMesh.start({ requestTimeoutMs: REQUEST_MS, streamIdleTimeoutMs: 0, idleTimeoutMs: 6000 }, handler);
  try {
    for (const t of [m.outbound, m.inbound]) {
      const r0 = records.length;
      const s0 = seen.length;
      const chunks = Array.from({ length: 40 }, () => '1\r\nx\r\n');
      const r = await rawExchange(t.address, [`POST ${t.requestTarget('/upload')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\n\r\n`, ...chunks], { gapMs: 100, waitMs: 5000 });
      assert.equal(r.status, 408, `${t.name}: ${r.raw}`);
      assert.equal(r.body, `request timeout: the request did not arrive in full within ${REQUEST_MS} ms\n`);
      assert.equal(r.headers.connection, 'close');
      assert.ok(r.closed && r.ms >= REQUEST_MS - 50 && r.ms < REQUEST_MS + 1000, `${t.name}: closed ${r.closed} after ${r.ms} ms`);
      const rec = await eventually(() => records.slice(r0).find((x) => x.direction === t.name), 2000, () => 'no record');
      assert.deepEqual([rec.status, rec.responseFlags], [408, ['DT']]);
      const upload = seen.slice(s0).find((x) => x.url === '/upload');
      if (upload) await eventually(() => (upload.closed ? true : undefined), 3000, () => `${t.name}: the app still holds the request`);
      assert.ok(!upload?.complete, `${t.name}: the app saw the upload complete`);

      // The whole request arrived at once; the answer takes longer than the request timeout.
      const slow = await rawExchange(t.address, [`POST ${t.requestTarget('/upload?delay=1500')} HTTP/1.1\r\nHost: ${t.host}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`], { waitMs: 5000 });
      assert.equal(slow.status, 200, `${t.name}: ${slow.raw}`);
    }
    const idle = await idleAfterOneRequest(m.outbound, 9000);
    assert.ok(idle.openAt(5500), `closed after ${idle.closedAfterMs} ms, within Node's default keep-alive`);
    assert.ok(idle.closedAfterMs >= 6000 - 50 && idle.closedAfterMs < 6000 + 2000, `closed after ${idle.closedAfterMs} ms`);
  } finally {
    await m.close();
  }
});
