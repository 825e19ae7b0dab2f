/**
 * Failures and resilience through two real data planes: connect failures
 * (UF), timeouts (UT), retries on another endpoint, exhausted retries (URX),
 * per-try timeouts, bodies that cannot be replayed, fault injection (FI, DI),
 * an upstream that breaks mid-response (UC) and a caller that leaves (DC).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { echo, eventually, RunningMesh, withEndpoints, type App } from '../helpers/proxy.js';

const VS = `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - name: slow
    match: [{ uri: { prefix: /slow } }]
    timeout: 200ms
    retries: { attempts: 0 }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: slow-body
    match: [{ uri: { prefix: /trickle } }]
    timeout: 200ms
    route: [{ destination: { host: api, subset: v1 } }]
  - name: flaky
    match: [{ uri: { prefix: /flaky } }]
    retries: { attempts: 2, retryOn: "503" }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: down
    match: [{ uri: { prefix: /down } }]
    retries: { attempts: 2, retryOn: "retriable-status-codes,503" }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: lag
    match: [{ uri: { prefix: /lag } }]
    retries: { attempts: 2, perTryTimeout: 100ms, retryOn: 5xx }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: abort
    match: [{ uri: { prefix: /abort } }]
    fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: half
    match: [{ uri: { prefix: /half } }]
    fault: { abort: { httpStatus: 500, percentage: { value: 50 } } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: delay
    match: [{ uri: { prefix: /delay } }]
    fault: { delay: { fixedDelay: 200ms, percentage: { value: 100 } } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: dead-once
    match: [{ uri: { prefix: /dead-once } }]
    retries: { attempts: 0 }
    route: [{ destination: { host: api, subset: v2 } }]
  - name: dead
    match: [{ uri: { prefix: /dead } }]
    route: [{ destination: { host: api, subset: v2 } }]
  - name: rest
    route: [{ destination: { host: api, subset: v1 } }]
`;

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** #0 is the troubled instance; #1 answers well except where both fail. */
function handler(first: boolean) {
  return (req: IncomingMessage, res: ServerResponse, app: App) => {
    const path = req.url ?? '/';
    const answer = (status: number, body: string) => { req.resume(); req.on('end', () => { res.writeHead(status, { 'x-served-by': app.name }); res.end(body); }); };
    if (path.startsWith('/slow')) { void wait(1000).then(() => answer(200, 'late')); return; }
    if (path.startsWith('/trickle')) { res.writeHead(200, { 'content-length': '10' }); res.write('12345'); void wait(1000).then(() => res.end('67890')); return; }
    if (path.startsWith('/flaky') && first) { answer(503, 'flaky'); return; }
    if (path.startsWith('/down')) { answer(503, `down at ${app.name}`); return; }
    if (path.startsWith('/lag') && first) { void wait(1000).then(() => answer(200, 'lagging')); return; }
    if (path.startsWith('/break')) { res.writeHead(200, { 'content-length': '1000' }); res.write('x'.repeat(100)); setTimeout(() => res.socket?.destroy(), 20); return; }
    if (path.startsWith('/hold')) { void wait(1500).then(() => { if (!res.destroyed) answer(200, 'held'); }); return; }
    echo(req, res, app);
  };
}

let mesh: RunningMesh;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);
const callerRecords = () => records.filter((r) => r.direction === 'outbound' && r.proxy === 'web-v1.shop');
const hits = () => [...mesh.callees.values()].reduce((n, c) => n + c.app.hits, 0);

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await RunningMesh.start({
    yaml: TWO_SERVICES + VS, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v1.shop#0', 'api-v1.shop#1'],
    handlers: { 'api-v1.shop#0': handler(true), 'api-v1.shop#1': handler(false) },
  });
  // v2's only instance "runs" on a port nobody listens on.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const deadPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const s = withEndpoints(mesh.snapshot, { 'api-v2.shop': { address: '127.0.0.1', port: deadPort, health: 'HEALTHY' } });
  assert.deepEqual(mesh.caller.apply(s), { ok: true });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

test('failures: a connect failure is 503 UF, retried per the default policy (then URX), or not retried (UF only)', async () => {
  const r = await mesh.call('http://api/dead');
  assert.equal(r.status, 503);
  assert.match(r.text, /^upstream connect error: connect-failure \(.*ECONNREFUSED.*\) after 3 attempts\n$/);
  const rec = callerRecords().at(-1)!;
  assert.deepEqual(rec.responseFlags, ['UF', 'URX']);
  assert.equal(rec.attempts, 3);
  const once = await mesh.call('http://api/dead-once');
  assert.equal(once.status, 503);
  assert.deepEqual(callerRecords().at(-1)!.responseFlags, ['UF']);
  assert.equal(callerRecords().at(-1)!.attempts, 1);
});

test('failures: the route timeout answers 504 UT', async () => {
  const t0 = Date.now();
  const r = await mesh.call('http://api/slow');
  assert.equal(r.status, 504);
  assert.equal(r.text, 'upstream request timeout: no response within the route timeout of 200 ms\n');
  assert.ok(Date.now() - t0 < 900, `answered after ${Date.now() - t0} ms`);
  assert.deepEqual(callerRecords().at(-1)!.responseFlags, ['UT']);
});

test('failures: a route timeout after the response started cuts the response (UT)', async () => {
  const n0 = callerRecords().length;
  await assert.rejects(async () => {
    const r = await mesh.client.pool.request({ path: 'http://api/trickle', method: 'GET', headers: { host: 'api' } });
    assert.equal(r.statusCode, 200);
    await r.body.text();
  });
  const rec = await eventually(() => callerRecords()[n0], 2000, () => 'no record');
  assert.equal(rec.status, 200);
  assert.deepEqual(rec.responseFlags, ['UT']);
  assert.equal(rec.bytesSent, 5);
});

test('failures: a 503 is retried on the other endpoint, and the caller sees only successes', async () => {
  const first = mesh.callees.get('api-v1.shop#0')!.app;
  const before = first.hits;
  const n0 = callerRecords().length;
  for (let i = 0; i < 20; i++) {
    const r = await mesh.call(`http://api/flaky/${i}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().app, 'api-v1.shop#1');
  }
  const recs = callerRecords().slice(n0);
  assert.ok(first.hits > before, 'the troubled endpoint was tried');
  assert.equal(recs.filter((r) => r.attempts === 2).length, first.hits - before, 'each retry went elsewhere, once');
  assert.ok(recs.every((r) => r.responseFlags.length === 0));
});

test('failures: when every attempt gets a retriable status, the last response passes with URX', async () => {
  const r = await mesh.call('http://api/down');
  assert.equal(r.status, 503);
  assert.match(r.text, /^down at api-v1\.shop#[01]$/);
  const rec = callerRecords().at(-1)!;
  assert.deepEqual(rec.responseFlags, ['URX']);
  assert.equal(rec.attempts, 3);
});

test('failures: a small buffered body is retried; a body streamed beyond what is kept (64 KiB) is sent once', async () => {
  const small = await mesh.call('http://api/down', { method: 'POST', body: 'x'.repeat(1000) });
  assert.equal(small.status, 503);
  assert.equal(callerRecords().at(-1)!.attempts, 3);
  assert.equal(callerRecords().at(-1)!.bytesReceived, 1000);
  const before = hits();
  const body = Readable.from((async function* () { yield Buffer.alloc(40_000, 1); await wait(10); yield Buffer.alloc(40_000, 2); })());
  const r = await mesh.client.pool.request({ path: 'http://api/down', method: 'POST', headers: { host: 'api' }, body });
  assert.equal(r.statusCode, 503);
  await r.body.text();
  assert.equal(hits() - before, 1, 'one attempt only');
  const rec = callerRecords().at(-1)!;
  assert.equal(rec.attempts, 1);
  assert.deepEqual(rec.responseFlags, [], 'not URX: the body could not be replayed');
  assert.equal(rec.bytesReceived, 80_000);
});

test('failures: a per-try timeout moves the request to another endpoint in time', async () => {
  const n0 = callerRecords().length;
  for (let i = 0; i < 10; i++) {
    const t0 = Date.now();
    const r = await mesh.call(`http://api/lag/${i}`);
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 < 800, `took ${Date.now() - t0} ms`);
  }
  const recs = callerRecords().slice(n0);
  assert.ok(recs.some((r) => r.attempts === 2), 'some first attempts timed out');
  assert.ok(recs.every((r) => r.responseFlags.length === 0 && r.status === 200));
});

test('failures: fault abort answers for the upstream (FI); a 50% abort hits about half; a delay holds (DI)', async () => {
  const before = hits();
  const r = await mesh.call('http://api/abort');
  assert.equal(r.status, 418);
  assert.equal(r.text, 'fault filter abort\n');
  assert.deepEqual(callerRecords().at(-1)!.responseFlags, ['FI']);
  assert.equal(hits(), before, 'the app never saw it');
  let aborted = 0;
  for (let b = 0; b < 4; b++) {
    const rs = await Promise.all(Array.from({ length: 50 }, () => mesh.call('http://api/half')));
    aborted += rs.filter((x) => x.status === 500).length;
  }
  assert.ok(aborted > 60 && aborted < 140, `${aborted} of 200 aborted`);
  const t0 = Date.now();
  const d = await mesh.call('http://api/delay');
  assert.equal(d.status, 200);
  assert.ok(Date.now() - t0 >= 190, `delayed ${Date.now() - t0} ms`);
  assert.deepEqual(callerRecords().at(-1)!.responseFlags, ['DI']);
});

test('failures: an upstream that breaks mid-response cuts the caller (UC on both proxies)', async () => {
  const n0 = records.length;
  await assert.rejects(async () => {
    const r = await mesh.client.pool.request({ path: 'http://api/break', method: 'GET', headers: { host: 'api' } });
    assert.equal(r.statusCode, 200);
    await r.body.text();
  });
  const recs = await eventually(() => {
    const rs = records.slice(n0);
    return rs.length >= 2 ? rs : undefined;
  }, 2000, () => JSON.stringify(records.slice(n0)));
  assert.ok(recs.find((r) => r.direction === 'inbound')!.responseFlags.includes('UC'));
  assert.ok(recs.find((r) => r.direction === 'outbound')!.responseFlags.includes('UC'));
});

test('failures: a caller that goes away is DC, and the upstream request is abandoned', async () => {
  const n0 = records.length;
  const ac = new AbortController();
  const first = mesh.callees.get('api-v1.shop#0')!.app;
  const second = mesh.callees.get('api-v1.shop#1')!.app;
  const hitsBefore = first.hits + second.hits;
  const pending = mesh.client.pool.request({ path: 'http://api/hold', method: 'GET', headers: { host: 'api' }, signal: ac.signal });
  await eventually(() => (first.hits + second.hits > hitsBefore ? true : undefined), 2000, () => 'the app never got the request');
  ac.abort();
  await assert.rejects(pending);
  const out = await eventually(() => records.slice(n0).find((r) => r.direction === 'outbound'), 2000, () => 'no outbound record');
  assert.deepEqual(out.responseFlags, ['DC']);
  assert.equal(out.status, 0);
  const inbound = await eventually(() => records.slice(n0).find((r) => r.direction === 'inbound'), 2000, () => 'no inbound record');
  assert.deepEqual(inbound.responseFlags, ['DC'], 'the callee saw its caller (the outbound proxy) leave');
});
