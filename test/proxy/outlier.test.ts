/**
 * Outlier detection through real data planes: a caller's sidecar in front
 * of three api instances (each its own sidecar and node:http app on
 * loopback), one of which answers 500. With a DestinationRule
 * `outlierDetection` the caller stops sending to it after
 * consecutive5xxErrors and tries it again once baseEjectionTime has passed;
 * without one it keeps its share.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAdminServer } from '../../src/proxy/admin-server.js';
import { listen, stopListening } from '../../src/proxy/http-server.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';
import { OutlierStore } from '../../src/proxy/outlier.js';
import { ProxyTelemetry } from '../../src/telemetry/proxy-telemetry.js';
import { k8sDeployment, k8sService } from '../helpers/mesh.js';
import { echo, RunningMesh, tally, type Handler } from '../helpers/proxy.js';
import { parsePrometheusText, select } from '../telemetry/prom-text.js';

const BAD = 'api.shop#1';
const INSTANCES = ['api.shop#0', BAD, 'api.shop#2'];
const BASE_MS = 1000;

const yaml = (trafficPolicy: string) => [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web', 'shop', 'web'),
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api', 'shop', 'api', { replicas: 3 }),
].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
${trafficPolicy}`;
const WITH_OD = yaml(`    outlierDetection: { consecutive5xxErrors: 3, interval: 50ms, baseEjectionTime: ${BASE_MS}ms, maxEjectionPercent: 50 }\n`);
const WITHOUT_OD = yaml('');
const LONG_OD = yaml('    outlierDetection: { consecutive5xxErrors: 3, interval: 50ms, baseEjectionTime: 60s, maxEjectionPercent: 50 }\n');

const failing: Handler = (_req, res, app) => { res.writeHead(500, { 'x-served-by': app.name }); res.end('broken'); };

let mesh: RunningMesh;
before(async () => {
  mesh = await RunningMesh.start({
    yaml: WITH_OD, caller: { workload: 'web', namespace: 'shop' }, instances: INSTANCES,
    handlers: Object.fromEntries(INSTANCES.map((i) => [i, i === BAD ? failing : echo])),
  });
});
after(async () => { await mesh?.close(); });

interface Served { readonly at: number; readonly by: string; readonly status: number }
async function call(): Promise<Served> {
  const at = Date.now();
  const r = await mesh.call('http://api/');
  return { at, by: String(r.headers['x-served-by'] ?? '?'), status: r.status };
}
const bad = () => mesh.callees.get(BAD)!.app;

test('outlier detection: the instance answering 500 gets no traffic after 3 in a row, and is tried again after baseEjectionTime', async () => {
  assert.equal(mesh.snapshot.clusters.find((c) => c.name === 'outbound|80||api.shop.svc.cluster.local')!.outlierDetection?.consecutive5xxErrors, 3);
  const seq: Served[] = [];
  for (let i = 0; i < 60; i++) seq.push(await call());
  const bads = seq.filter((s) => s.by === BAD);
  assert.equal(bads.length, 3, `exactly consecutive5xxErrors requests reached it: ${JSON.stringify(tally(seq.map((s) => s.by)))}`);
  assert.ok(bads.every((s) => s.status === 500));
  assert.ok(seq.filter((s) => s.by !== BAD).every((s) => s.status === 200), 'the others served');
  const ejectedAt = Date.now(); // no later than the ejection (it happened during the loop)

  // Back after the ejection time: the next requests find it again (bounded loop, 15 s at most).
  const hitsBefore = bad().hits;
  let back: Served | undefined;
  for (let i = 0; i < 3000 && !back; i++) {
    const s = await call();
    if (s.by === BAD) back = s;
    else await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(back, `it never got traffic again (hits ${bad().hits})`);
  assert.ok(back.at - bads[2]!.at >= BASE_MS - 50, `not before baseEjectionTime: back ${back.at - bads[2]!.at} ms after its third 500`);
  assert.equal(bad().hits, hitsBefore + 1);
  assert.ok(ejectedAt > 0);

  // Still failing: three more 500s eject it again, now for twice as long.
  const again: Served[] = [];
  for (let i = 0; i < 30; i++) again.push(await call());
  const second = again.filter((s) => s.by === BAD);
  assert.equal(second.length, 2, `two more 500s make three since it came back: ${JSON.stringify(tally(again.map((s) => s.by)))}`);
  const secondEjection = second[1]!.at;
  let returned: Served | undefined;
  for (let i = 0; i < 3000 && !returned; i++) {
    const s = await call();
    if (s.by === BAD) returned = s;
    else await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(returned, 'it came back after the second ejection');
  assert.ok(returned.at - secondEjection >= 2 * BASE_MS - 50, `the second ejection lasts 2 × base: ${returned.at - secondEjection} ms`);
});

test('outlier detection: without outlierDetection the failing instance keeps its third of the traffic (negative)', async () => {
  mesh.reconfigure(WITHOUT_OD);
  assert.equal(mesh.snapshot.clusters.find((c) => c.name === 'outbound|80||api.shop.svc.cluster.local')!.outlierDetection, undefined);
  const seq: Served[] = [];
  for (let i = 0; i < 60; i++) seq.push(await call());
  const t = tally(seq.map((s) => s.by));
  assert.deepEqual(t, Object.fromEntries(INSTANCES.map((i) => [i, 20])), `round robin over all three: ${JSON.stringify(t)}`);
  assert.equal(seq.filter((s) => s.status === 500).length, 20);
});

test('outlier detection: a new snapshot with the same cluster keeps the ejection (state survives the push)', async () => {
  mesh.reconfigure(LONG_OD);
  // A fresh state (the cluster had no outlier detection in between): eject again, for a minute.
  const seq: Served[] = [];
  for (let i = 0; i < 30; i++) seq.push(await call());
  assert.equal(seq.filter((s) => s.by === BAD).length, 3);
  // A push that changes something else (a new version of the same config, another route) leaves the cluster's state alone.
  mesh.reconfigure(LONG_OD + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web]
  http: [{ route: [{ destination: { host: web } }], timeout: 5s }]
`);
  const after: Served[] = [];
  for (let i = 0; i < 30; i++) after.push(await call());
  assert.equal(after.filter((s) => s.by === BAD).length, 0, `still ejected after the push: ${JSON.stringify(tally(after.map((s) => s.by)))}`);
});

test('outlier detection on the admin port: /metrics counts ejections by cluster and reason and the hosts out now; /clusters lists them', async () => {
  const store = new OutlierStore();
  const telemetry = new ProxyTelemetry({});
  new ProxyMetrics(telemetry.registry, () => ({ activeRequests: 0, upstreamPools: 0, outliers: store.stats() }));
  const admin = createAdminServer({ telemetry, snapshot: () => undefined, notReady: () => undefined, outliers: () => store.stats() });
  const at = `127.0.0.1:${await listen(admin, '127.0.0.1', 0)}`;
  try {
    const name = 'outbound|80||api.shop.svc.cluster.local';
    const c = store.cluster(name, { consecutive5xxErrors: 2, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50, minHealthPercent: 0 });
    const [a, b] = c.members(['10.0.0.1:80', '10.0.0.2:80']);
    for (const h of [a!, a!, b!, b!]) c.observe(h, { kind: 'response', status: 503 });
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.deepEqual(select(m.get('trellis_proxy_outlier_ejections_enforced_total'), { cluster: name, reason: 'consecutive_5xx' }).map((x) => x.value), [1]);
    assert.deepEqual(select(m.get('trellis_proxy_outlier_ejections_overflow_total'), { cluster: name }).map((x) => x.value), [1], 'the second host was held back by maxEjectionPercent 50');
    assert.deepEqual(select(m.get('trellis_proxy_outlier_ejections_active'), { cluster: name }).map((x) => x.value), [1]);
    const body = (await (await fetch(`http://${at}/clusters`)).json()) as { clusters: { cluster: string; ejectedNow: number; ejected: { address: string; reason: string }[] }[] };
    assert.deepEqual(body.clusters.map((x) => [x.cluster, x.ejectedNow, x.ejected.map((e) => [e.address, e.reason])]), [[name, 1, [['10.0.0.1:80', 'consecutive_5xx']]]]);
  } finally {
    store.stopAll();
    admin.closeAllConnections();
    await stopListening(admin);
    await telemetry.close();
  }
});
