/**
 * Lifecycle over the real stream (issue 4, zero loss): an instance that
 * registers unhealthy never enters rotation until a `health` says healthy;
 * a proxy that says `leaving` leaves rotation at once, and is told
 * `drained` only after every other connected proxy has ACKed a snapshot
 * without it — or after the leave grace, naming who did not ACK.
 */
import { createServer, request } from 'node:http';
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointRow, ProxyRow } from '../../src/controlplane/admin.js';
import { createAgent } from '../../src/proxy/agent.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import type { DrainedMessage, SnapshotMessage } from '../../src/protocol/stream.js';
import { ConfigDir, identityFor, SHOP, sleep, startControlPlane, StreamClient, waitFor, type TestControlPlane } from './helpers.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function mesh(opts = {}): Promise<TestControlPlane> {
  const dir = new ConfigDir({ 'app.yaml': SHOP });
  cleanup.push(() => dir.remove());
  const t = await startControlPlane(dir.path, { debounceMs: 20, ...opts });
  cleanup.push(() => t.cp.close());
  return t;
}

function open(t: TestControlPlane, instance: string, inbound: string, extra = {}): StreamClient {
  const c = StreamClient.hello(t.grpc, instance, inbound, extra);
  cleanup.push(() => c.close());
  return c;
}

/** ACKs every snapshot it receives, as a well-behaved proxy does. */
function autoAck(c: StreamClient): () => void {
  let seen = 0;
  const timer = setInterval(() => {
    const snaps = c.snapshots();
    for (; seen < snaps.length; seen++) c.ack(snaps[seen]!);
  }, 5);
  cleanup.push(() => clearInterval(timer));
  return () => clearInterval(timer);
}

const usable = (m: SnapshotMessage | undefined): string[] =>
  (m?.snapshot.endpoints.find((e) => e.cluster === 'outbound|8080||api.shop.svc.cluster.local')?.endpoints ?? [])
    .filter((e) => e.address && (e.health === 'HEALTHY' || e.health === 'UNKNOWN')).map((e) => e.instance);

const endpoint = async (t: TestControlPlane, instance: string) => (await t.get<EndpointRow[]>('/endpoints')).body.find((e) => e.instance === instance);

test('hello with healthy: false keeps the instance out of rotation until a health message says healthy', async () => {
  const t = await mesh();
  const web = open(t, 'web.shop', '127.0.0.1:41100');
  autoAck(web);
  const api = open(t, 'api-v2.shop', '127.0.0.1:41101', { healthy: false });
  autoAck(api);
  await waitFor('api registered', async () => (await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'api-v2.shop' && p.sync === 'SYNCED'));
  await sleep(100);
  assert.equal((await endpoint(t, 'api-v2.shop'))?.healthy, false);
  assert.ok(web.snapshots().every((s) => !usable(s).includes('api-v2.shop')), 'web never got a snapshot with api-v2 in rotation');
  api.send({ type: 'health', healthy: true });
  await waitFor('api-v2 in web\'s snapshot', () => usable(web.snapshots().at(-1)).includes('api-v2.shop'));
  assert.equal((await endpoint(t, 'api-v2.shop'))?.healthy, true);
});

test('leaving: out of rotation at once, drained only after every connected proxy ACKed a snapshot without it', async () => {
  const t = await mesh();
  const web = open(t, 'web.shop', '127.0.0.1:41200');
  const ackWeb = autoAck(web);
  const api0 = open(t, 'api-v1.shop#0', '127.0.0.1:41201');
  autoAck(api0);
  const api1 = open(t, 'api-v1.shop#1', '127.0.0.1:41202');
  autoAck(api1);
  await waitFor('web sees both api-v1', () => usable(web.snapshots().at(-1)).length === 2);
  await waitFor('all SYNCED', async () => (await t.get<ProxyRow[]>('/proxies')).body.every((p) => p.sync === 'SYNCED'));
  ackWeb(); // web stops ACKing: api-v1#0 must not be told drained
  const before = web.snapshots().length;
  const began = Date.now();
  api0.send({ type: 'leaving' });
  const pushed = await waitFor('a snapshot without api-v1#0 for web', () => web.snapshots().slice(before).find((s) => !usable(s).includes('api-v1.shop#0')));
  assert.ok(Date.now() - began < 500, `pushed ${Date.now() - began} ms after leaving`);
  assert.equal((await endpoint(t, 'api-v1.shop#0'))?.healthy, false);
  api0.send({ type: 'health', healthy: true }); // ignored while leaving
  await sleep(200);
  assert.equal(api0.received.find((m) => m.type === 'drained'), undefined, 'not drained while web has not ACKed');
  assert.equal((await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'api-v1.shop#0')?.leaving, 'WAITING');
  assert.equal((await endpoint(t, 'api-v1.shop#0'))?.healthy, false, 'a health message does not bring a leaving instance back');
  for (const s of web.snapshots().slice(before)) web.ack(s);
  const drained = await waitFor('drained', () => api0.received.find((m): m is DrainedMessage => m.type === 'drained'));
  assert.equal(drained.why, 'acked');
  assert.ok(usable(pushed).includes('api-v1.shop#1'), 'the other replica stays');
  assert.ok(t.events.some((e) => e.type === 'drained' && e.instance === 'api-v1.shop#0' && e.why === 'acked'));
  assert.equal((await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'api-v1.shop#0')?.leaving, 'DRAINED');
});

test('leaving: a caller that never ACKs holds the drain back only for the leave grace', async () => {
  const t = await mesh({ leaveGraceMs: 400 });
  const web = open(t, 'web.shop', '127.0.0.1:41300'); // never ACKs
  const api = open(t, 'api-v2.shop', '127.0.0.1:41301');
  autoAck(api);
  await waitFor('web sees api-v2', () => usable(web.snapshots().at(-1)).includes('api-v2.shop'));
  const began = Date.now();
  api.send({ type: 'leaving' });
  const drained = await waitFor('drained', () => api.received.find((m): m is DrainedMessage => m.type === 'drained'), 3000);
  const took = Date.now() - began;
  assert.equal(drained.why, 'timeout');
  assert.deepEqual(drained.pending, ['web.shop']);
  assert.ok(took >= 350 && took < 1500, `drained after ${took} ms`);
});

test('leaving when no one has the instance: drained at once', async () => {
  const t = await mesh();
  const tool = open(t, 'tool.ops', '127.0.0.1:41400');
  autoAck(tool);
  await waitFor('tool SYNCED', async () => (await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'tool.ops' && p.sync === 'SYNCED'));
  tool.send({ type: 'leaving' });
  const drained = await waitFor('drained', () => tool.received.find((m): m is DrainedMessage => m.type === 'drained'), 1000);
  assert.equal(drained.why, 'acked');
});

test('the agent: hello carries the first health check, and leave() resolves on drained while the data plane keeps serving', async () => {
  const t = await mesh();
  const web = open(t, 'web.shop', '127.0.0.1:41500');
  autoAck(web);
  const app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => { app.close(r); app.closeAllConnections(); }));
  const port = (app.address() as { port: number }).port;
  const dp = createDataPlane({ mode: 'sidecar', appPort: port });
  await dp.start();
  cleanup.push(() => dp.close(100));
  const a = createAgent({ controlPlane: t.grpc, instance: 'api-v2.shop', dataPlane: dp, identity: identityFor(t, 'api-v2.shop', dp), healthCheck: { port, path: '/healthz', intervalMs: 100 } });
  cleanup.push(() => a.close());
  await a.start();
  await waitFor('api-v2 in web\'s snapshot', () => usable(web.snapshots().at(-1)).includes('api-v2.shop'));
  assert.ok(!t.events.some((e) => e.type === 'health' && e.instance === 'api-v2.shop'), 'no health message was needed: hello said healthy');
  const r = await a.leave(3000);
  assert.equal(r.why, 'acked');
  assert.ok(!usable(web.snapshots().at(-1)).includes('api-v2.shop'), 'web had a snapshot without it before drained');
  const [host, p] = dp.addresses.inbound!.split(':');
  const status = await new Promise<number>((resolve, reject) => {
    // No keep-alive: the connection is gone when the answer is, so closing the data plane waits for nothing.
    const req = request({ host, port: Number(p), path: '/', headers: { host: 'api.shop:8080' }, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 200, 'still serving after drained, until the data plane closes');
  await sleep(300);
  assert.equal((await endpoint(t, 'api-v2.shop'))?.healthy, false, 'health checks stopped: it stays out of rotation');
});

test('the agent\'s TCP health check (no path): an app that does not accept connections registers unhealthy, and enters rotation once it does', async () => {
  const t = await mesh();
  const web = open(t, 'web.shop', '127.0.0.1:41600');
  autoAck(web);
  const app = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const port = (app.address() as { port: number }).port;
  await new Promise((r) => app.close(r)); // nothing listens there for now
  const dp = createDataPlane({ mode: 'sidecar', appPort: port });
  await dp.start();
  cleanup.push(() => dp.close(100));
  const a = createAgent({ controlPlane: t.grpc, instance: 'api-v2.shop', dataPlane: dp, identity: identityFor(t, 'api-v2.shop', dp), healthCheck: { port, intervalMs: 100 } });
  cleanup.push(() => a.close());
  await a.start();
  assert.equal(a.healthy, false);
  await waitFor('api-v2 registered', async () => (await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'api-v2.shop' && p.sync === 'SYNCED'));
  assert.equal((await endpoint(t, 'api-v2.shop'))?.healthy, false);
  await new Promise<void>((r) => app.listen(port, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => { app.close(r); app.closeAllConnections(); }));
  await waitFor('api-v2 in web\'s snapshot', () => usable(web.snapshots().at(-1)).includes('api-v2.shop'));
});
