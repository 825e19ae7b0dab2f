/**
 * Snapshots applied to a data plane with traffic flowing: a request finishes
 * on the snapshot it started with; twenty swaps under load fail no request;
 * a snapshot that cannot be used is refused with the reason and the old one
 * stays; pools are shared across swaps; close() lets requests finish within
 * the grace and cuts them after it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { Client, echo, eventually, RunningMesh, startProxy, type App } from '../helpers/proxy.js';

const tagged = (tag: string) => `${TWO_SERVICES}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - name: tagged-${tag}
    headers: { response: { set: { x-config: ${tag} } } }
    route: [{ destination: { host: api } }]
`;

let releaseHold: () => void = () => undefined;
let hold = Promise.resolve();
const newHold = () => { hold = new Promise((r) => { releaseHold = r; }); };
const holding = (req: IncomingMessage, res: ServerResponse, app: App) => {
  if (req.url === '/hold') { void hold.then(() => { res.writeHead(200); res.end('released'); }); return; }
  echo(req, res, app);
};
const INSTANCES = ['api-v1.shop#0', 'api-v1.shop#1', 'api-v2.shop'];
const appHits = () => [...mesh.callees.values()].reduce((n, c) => n + c.app.hits, 0);

let mesh: RunningMesh;
before(async () => {
  mesh = await RunningMesh.start({ yaml: tagged('one'), caller: { workload: 'web-v1', namespace: 'shop' }, instances: INSTANCES, handlers: Object.fromEntries(INSTANCES.map((i) => [i, holding])) });
});
after(async () => {
  releaseHold();
  await mesh?.close();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://${mesh.caller.addresses.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

test('apply: a request in flight finishes on the snapshot it started with', async () => {
  mesh.reconfigure(tagged('one'));
  newHold();
  const hits = appHits();
  const pending = mesh.call('http://api/hold');
  await eventually(() => (appHits() > hits ? true : undefined), 2000, () => 'the app never got /hold');
  mesh.reconfigure(tagged('two'));
  assert.equal((await mesh.call('http://api/now')).headers['x-config'], 'two');
  releaseHold();
  const r = await pending;
  assert.equal(r.text, 'released');
  assert.equal(r.headers['x-config'], 'one', 'the response headers of the old route');
});

test('apply: twenty swaps while traffic flows fail no request, and reuse the pools', async () => {
  const configs = [mesh.compile(tagged('one')), mesh.compile(tagged('two'))];
  const statuses: number[] = [];
  let stop = false;
  const worker = async () => {
    while (!stop && statuses.length < 20_000) statuses.push((await mesh.call('http://api/load')).status);
  };
  const workers = Array.from({ length: 16 }, worker);
  for (let i = 0; i < 20; i++) {
    const target = statuses.length + 10;
    await eventually(() => (statuses.length >= target ? true : undefined), 5000, () => `traffic stalled at ${statuses.length} requests`);
    const s = configs[i % 2]!;
    assert.deepEqual(mesh.caller.apply({ ...s, version: `${s.version.slice(0, 12)}${String(i).padStart(4, '0')}` }), { ok: true });
  }
  stop = true;
  await Promise.all(workers);
  assert.ok(statuses.length >= 200, `only ${statuses.length} requests ran`);
  assert.deepEqual(statuses.filter((s) => s !== 200), [], 'every request succeeded');
  // One pool per callee address, shared by all snapshots, and one to the caller's own app (its inbound listener).
  assert.equal(await metric('trellis_proxy_upstream_pools'), INSTANCES.length + 1);
});

test('apply: the pool of an endpoint that leaves every cluster closes once no request uses it', async () => {
  const s = mesh.snapshot;
  const without = { ...s, version: 'without-v2', endpoints: s.endpoints.map((ce) => ({ ...ce, endpoints: ce.endpoints.filter((e) => e.instance !== 'api-v2.shop') })) };
  assert.deepEqual(mesh.caller.apply(without), { ok: true });
  assert.equal(await metric('trellis_proxy_upstream_pools'), INSTANCES.length);
  assert.deepEqual(mesh.caller.apply(s), { ok: true });
  assert.equal(await metric('trellis_proxy_upstream_pools'), INSTANCES.length + 1);
});

test('apply: a snapshot that cannot be used is refused with the reason; the old one stays', async () => {
  const good = mesh.snapshot;
  const rejected = await metric('trellis_proxy_snapshots_rejected_total');
  const copy = (): { -readonly [K in keyof Snapshot]: any } => JSON.parse(JSON.stringify(good));
  const badRegex = copy();
  badRegex.outbound.http[0].virtualHosts[0].routes[0].match = [{ uri: { kind: 'regex', value: '(unclosed' }, headers: [], withoutHeaders: [], queryParams: [] }];
  const badLb = copy();
  badLb.clusters[0].lb = { ...badLb.clusters[0].lb, policy: 'FANCY' };
  const badEndpoints = copy();
  badEndpoints.endpoints.pop();
  const badDirect = copy();
  badDirect.outbound.http[0].virtualHosts[0].routes[0].action = { kind: 'direct', status: 42 };
  const cases: [unknown, RegExp][] = [
    [{ ...good, schema: 'trellis.dev/snapshot/v0' }, /schema is "trellis\.dev\/snapshot\/v0", expected "trellis\.dev\/snapshot\/v1"/],
    [badRegex, /route matches do not compile: .*missing closing \)/],
    [badLb, /cluster outbound\|80\|\|api\.shop\.svc\.cluster\.local: unknown load-balancing policy "FANCY"/],
    [badEndpoints, /4 clusters but 3 endpoint lists/],
    [badDirect, /route "tagged-.*": directResponse: status 42/],
    [null, /not an object/],
  ];
  for (const [s, reason] of cases) {
    const r = mesh.caller.apply(s as Snapshot);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.reason, reason);
    assert.equal(mesh.caller.snapshot, good, 'the snapshot in force did not change');
    assert.equal((await mesh.call('http://api/still')).status, 200);
  }
  assert.equal(await metric('trellis_proxy_snapshots_rejected_total'), rejected + cases.length);
});

test('apply: close() lets a request in flight finish within the grace, and refuses new connections', async () => {
  const dp = await startProxy({ mode: 'sidecar' }, mesh.snapshot);
  const client = new Client(dp.addresses.outbound!);
  newHold();
  const hits = appHits();
  const pending = client.call('http://api/hold');
  await eventually(() => (appHits() > hits ? true : undefined), 2000, () => 'the app never got /hold');
  const closing = dp.close(5000);
  const [host, port] = dp.addresses.outbound!.split(':');
  let refused: true | undefined;
  const probe = connect(Number(port), host!);
  probe.on('error', () => { refused = true; });
  probe.on('connect', () => probe.destroy());
  await eventually(() => refused, 2000, () => 'a new connection was accepted while closing');
  const ready = await fetch(`http://${dp.addresses.admin}/ready`);
  assert.equal(ready.status, 503, 'the admin port stays up while draining');
  assert.equal(await ready.text(), 'not ready: the proxy is shutting down\n');
  releaseHold();
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.text, 'released');
  await closing;
  await client.close();
});

test('apply: close() cuts requests still running when the grace is over', async () => {
  const dp = await startProxy({ mode: 'sidecar' }, mesh.snapshot);
  const client = new Client(dp.addresses.outbound!);
  newHold();
  const hits = appHits();
  const pending = client.call('http://api/hold').then(() => 'answered', (err: Error) => err);
  await eventually(() => (appHits() > hits ? true : undefined), 2000, () => 'the app never got /hold');
  const t0 = Date.now();
  await dp.close(200);
  assert.ok(Date.now() - t0 < 1500, `close took ${Date.now() - t0} ms`);
  assert.ok((await pending) instanceof Error, 'the request was cut');
  releaseHold();
  await client.close();
});
