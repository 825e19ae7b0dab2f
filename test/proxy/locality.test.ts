/**
 * Locality-aware balancing and failover through real data planes: an App
 * manifest places four api instances in two zones (two each) and the
 * caller in zone a. With outlier detection (which turns locality
 * balancing on, as in Istio) all traffic stays in zone a; when every
 * zone-a instance dies under load (sidecar and app closed at once) the
 * caller's retries on connect-failure (with retryRemoteLocalities) carry
 * requests to zone b, the dead hosts are ejected, and only the requests in
 * flight at the kill fail. Without outlier detection the traffic is
 * spread over both zones from the start.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { RunningMesh, tally } from '../helpers/proxy.js';

const APP = `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: shop }
spec:
  namespace: shop
  services:
  - name: web
    ports: [{ name: http, port: 80, targetPort: 8080 }]
    command: [node, web.js]
    placement: [{ region: r1, zone: a }]
  - name: api
    ports: [{ name: http, port: 80, targetPort: 9000 }]
    command: [node, api.js]
    replicas: 4
    placement: [{ region: r1, zone: a }, { region: r1, zone: a }, { region: r1, zone: b }, { region: r1, zone: b }]
`;
const WITH_OD = APP + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 2, interval: 100ms, baseEjectionTime: 60s, maxEjectionPercent: 100 }
`;
const ZONE: Record<string, string> = { 'api.shop#0': 'a', 'api.shop#1': 'a', 'api.shop#2': 'b', 'api.shop#3': 'b' };
const TOTAL = 2000;
const CONCURRENCY = 8;
const KILL_AFTER = 500;

let mesh: RunningMesh | undefined;
/** One mesh at a time: a test that failed half-way leaves its mesh to the next start (or to after()) to close. */
async function start(opts: Parameters<typeof RunningMesh.start>[0]): Promise<RunningMesh> {
  await stop();
  return (mesh = await RunningMesh.start(opts));
}
async function stop(): Promise<void> {
  const m = mesh;
  mesh = undefined;
  await m?.close();
}
after(stop);

/** `phase`: when the request started; `ended`: when it ended (kill: from its start to the end of the closing). */
interface Outcome { readonly phase: 'before' | 'during' | 'after'; readonly ended: Outcome['phase']; readonly zone: string | undefined; readonly status: number }

/** Runs TOTAL requests from CONCURRENCY workers; `onCount(n)` is awaited-free, called as requests complete. */
async function load(m: RunningMesh, onCount?: (done: number) => void, phase: () => Outcome['phase'] = () => 'before'): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  const deadline = Date.now() + 60_000;
  const worker = async () => {
    while (next < TOTAL && Date.now() < deadline) {
      next++;
      const started = phase();
      let o: Outcome;
      try {
        const r = await m.call('http://api/');
        const by = r.headers['x-served-by'];
        o = { phase: started, ended: phase(), zone: typeof by === 'string' ? ZONE[by] : undefined, status: r.status };
      } catch {
        o = { phase: started, ended: phase(), zone: undefined, status: 0 };
      }
      out.push(o);
      onCount?.(out.length);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

const summary = (os: readonly Outcome[]) => ({ ...tally(os.map((o) => (o.status === 200 ? `zone ${o.zone}` : `failed ${o.status}`)))});

const REMOTE_RETRIES = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http: [{ route: [{ destination: { host: api } }], retries: { attempts: 2, retryOn: connect-failure, retryRemoteLocalities: true } }]
`;
const NO_RETRIES = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http: [{ route: [{ destination: { host: api } }], retries: { attempts: 0 } }]
`;

/** Starts the mesh, kills zone a after KILL_AFTER requests; the outcomes by phase, and the printed summary. */
async function zoneOutage(yaml: string, label: string) {
  const m = await start({ yaml, caller: { workload: 'web', namespace: 'shop' } });
  const api = m.snapshot.clusters.find((c) => c.name === 'outbound|80||api.shop.svc.cluster.local')!;
  assert.equal(api.lb.locality.enabled, true);
  assert.deepEqual(m.snapshot.node.locality, { region: 'r1', zone: 'a', subzone: '' });
  const zoneA = [...m.callees.values()].filter((c) => ZONE[c.instance] === 'a');
  const probe: string[] = [];
  for (let i = 0; i < 40; i++) probe.push(ZONE[String((await m.call('http://api/')).headers['x-served-by'])] ?? '?');
  assert.deepEqual(tally(probe), { a: 40 }, 'zone a only while it is healthy (the data plane must give buildClusterTarget the snapshot node: applied-snapshot.ts)');
  let phase: Outcome['phase'] = 'before';
  let killed: Promise<void> | undefined;
  const outcomes = await load(m, (n) => {
    if (n === KILL_AFTER && !killed) {
      phase = 'during';
      // The whole zone goes at once: sidecars (no grace: requests in flight are cut) and apps.
      killed = Promise.all(zoneA.map((c) => Promise.all([c.proxy.close(0), c.app.close()]))).then(() => { phase = 'after'; });
    }
  }, () => phase);
  await killed;
  const by = (p: Outcome['phase']) => outcomes.filter((o) => o.phase === p);
  const settled = outcomes.filter((o) => o.phase === 'before' && o.ended === 'before');
  const report = { before: summary(by('before')), during: summary(by('during')), after: summary(by('after')) };
  console.log(`zone outage, ${TOTAL} requests from ${CONCURRENCY} workers, ${label}: ${JSON.stringify(report)}`);
  await stop();
  return { by, settled, report, failed: outcomes.filter((o) => o.status !== 200) };
}

test('locality: with outlier detection the caller in zone a uses zone a only; a zone-a outage under load moves traffic to zone b', async () => {
  const { by, settled, report, failed } = await zoneOutage(WITH_OD + REMOTE_RETRIES, 'retries on connect-failure (2 attempts, retryRemoteLocalities)');
  // Requests in flight at the kill may fail, or be retried to zone b; those that ended before it all went to zone a.
  assert.ok(settled.length >= KILL_AFTER - 1 && settled.every((o) => o.status === 200 && o.zone === 'a'), `before the outage, zone a only: ${JSON.stringify(report.before)}`);
  assert.ok(by('after').length > 500, `enough requests after the outage: ${by('after').length}`);
  assert.ok(by('after').every((o) => o.status === 200 && o.zone === 'b'), `after the outage, zone b only and no failure: ${JSON.stringify(report.after)}`);
  assert.ok(failed.length <= CONCURRENCY, `only requests in flight at the kill fail (at most ${CONCURRENCY}): ${failed.length}`);
});

test('locality: the same outage without retries: besides those in flight, only the requests that find the dead hosts before their ejection fail', async () => {
  const { by, settled, report, failed } = await zoneOutage(WITH_OD + NO_RETRIES, 'no retries');
  assert.ok(settled.length >= KILL_AFTER - 1 && settled.every((o) => o.status === 200 && o.zone === 'a'), `before the outage, zone a only: ${JSON.stringify(report.before)}`);
  // Each dead host takes consecutive5xxErrors (2) failures before it is ejected.
  assert.ok(failed.length <= CONCURRENCY + 2 * 2, `in flight, plus 2 per dead host: ${failed.length}`);
  const late = by('after').slice(CONCURRENCY + 4);
  assert.ok(late.length > 500 && late.every((o) => o.status === 200 && o.zone === 'b'), `then zone b only: ${JSON.stringify(report.after)}`);
});

test('locality: one of the two zone-a instances ejected: zone a keeps 1.4 × 50 % = 70 % of the traffic, zone b gets the rest', async () => {
  const broken = (_req: unknown, res: import('node:http').ServerResponse, app: { name: string }) => { res.writeHead(500, { 'x-served-by': app.name }); res.end(); };
  const m = await start({ yaml: WITH_OD, caller: { workload: 'web', namespace: 'shop' }, handlers: { 'api.shop#1': broken } });
  const zones: string[] = [];
  for (let i = 0; i < 620; i++) {
    const r = await m.call('http://api/');
    if (i >= 20) zones.push(r.status === 200 ? ZONE[String(r.headers['x-served-by'])]! : `failed ${r.status}`); // after the ejection (2 × 500)
  }
  const t = tally(zones);
  console.log(`one of two zone-a hosts ejected, 600 requests: ${JSON.stringify(t)}`);
  assert.deepEqual(Object.keys(t).sort(), ['a', 'b'], `no failures once it is ejected: ${JSON.stringify(t)}`);
  // Expected 420 / 180 (the level is picked at random per request; 5 standard deviations either side).
  assert.ok(t.a! > 340 && t.a! < 500 && t.b! > 100 && t.b! < 260, `about 70 / 30: ${JSON.stringify(t)}`);
  await stop();
});

test('locality: without outlier detection (locality balancing off, as in Istio) traffic goes to both zones from the start (negative)', async () => {
  const m = await start({ yaml: APP, caller: { workload: 'web', namespace: 'shop' } });
  assert.equal(m.snapshot.clusters.find((c) => c.name === 'outbound|80||api.shop.svc.cluster.local')!.lb.locality.enabled, false);
  const seq: string[] = [];
  for (let i = 0; i < 200; i++) {
    const r = await m.call('http://api/');
    assert.equal(r.status, 200);
    seq.push(ZONE[String(r.headers['x-served-by'])] ?? '?');
  }
  const t = tally(seq);
  assert.ok((t.a ?? 0) > 40 && (t.b ?? 0) > 40, `both zones served: ${JSON.stringify(t)}`);
});
