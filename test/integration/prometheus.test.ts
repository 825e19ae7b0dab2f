/**
 * A real Prometheus (Debian's `prometheus`, started by this test on a free
 * port with its own config and a temporary TSDB) scrapes a running mesh of
 * real processes every second: a `trellis control-plane`, web's sidecar
 * (this test is web's app) and api's sidecar in front of an app that answers
 * after a fixed 150 ms, 500 on /fail. Both sidecars use Istio's metric names
 * because MeshConfig asks for them as Istio's installations do (its first
 * `defaultProviders.metrics` is a `prometheus` extension provider). After known, bounded traffic, the raw
 * samples Prometheus stored equal what was sent, and queries from Istio's
 * Grafana dashboards (istio-mesh-dashboard, istio-service-dashboard), as
 * Istio writes them, return the expected series: request volume per
 * workload and service, success rate, and a P99 in the bucket of the app's
 * delay. Rates are Prometheus's extrapolations, so they are checked within
 * bounds; counts and labels exactly.
 *
 * Without prometheus installed this file is skipped with a message, except
 * under CI (`.ci/run` installs it), where a missing binary fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../controlplane/helpers.js';
import { startApp, type App } from '../helpers/proxy.js';
import { freePort, MESH_APP, routing, RunningMesh, usableApiEndpoints } from './running-mesh.js';

const DELAY_MS = 150;
/** Istio's way of saying "standard metrics to Prometheus": the names become istio_*. */
const ISTIO_NAMES = `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  extensionProviders: [{ name: prometheus, prometheus: {} }]
  defaultProviders: { metrics: [prometheus] }
`;
const API = 'api.shop.svc.cluster.local';
const API_V1 = 'api-v1.shop#0';
const installed = !spawnSync('prometheus', ['--version']).error;
const needPrometheus = installed || process.env.CI ? {} : { skip: 'prometheus is not installed (apt-get install prometheus)' };

interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

let mesh: RunningMesh;
let api: App;
let prometheus: ChildProcess | undefined;
let promLog = '';
let promAt = '';
/** When the second batch started: it runs for TRAFFIC_MS at an even pace. */
let trafficFrom = 0;
const TRAFFIC_MS = 3000;
let dir = '';

/** An instant query on Prometheus's HTTP API, now or at `at` (ms); fails with Prometheus's own error. */
async function query(expr: string, at?: number): Promise<Sample[]> {
  const time = at !== undefined ? `&time=${at / 1000}` : '';
  const res = await fetch(`http://${promAt}/api/v1/query?query=${encodeURIComponent(expr)}${time}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
  assert.equal(body.status, 'success', `${expr}: ${body.error}`);
  assert.equal(body.data?.resultType, 'vector', expr);
  return body.data.result;
}
const num = (s: Sample | undefined) => Number(s?.value[1]);
const byCode = (ss: readonly Sample[]) => Object.fromEntries(ss.map((s) => [s.metric['response_code']!, num(s)]));

/** Waits until Prometheus has stored `total` requests reported by `reporter`, exactly. */
async function scraped(reporter: 'source' | 'destination', total: number): Promise<void> {
  await waitFor(`Prometheus to store ${total} requests reported by ${reporter}`, async () => {
    const got = num((await query(`sum(istio_requests_total{reporter="${reporter}"})`))[0]);
    if (got !== total) throw new Error(`Prometheus has ${Number.isNaN(got) ? 'no sample' : got}`);
    return true;
  }, 10_000, 200).catch((e: Error) => { throw new Error(`${e.message}\n--- prometheus log\n${promLog.slice(-2000)}`); });
}

/** `count` requests to `path` through web's sidecar, spread over `spreadMs`; every answer must have `status`. */
async function send(path: string, count: number, status: number, spreadMs: number): Promise<void> {
  const rs = await mesh.traffic(`http://api.shop:8080${path}`, { count, workers: 8, spreadMs, maxMs: 15_000 });
  assert.equal(rs.length, count, 'every request was sent within the time bound');
  assert.deepEqual(rs.filter((r) => r.status !== status).map((r) => `${r.status} ${r.body.slice(0, 80)}`), []);
}

describe('a real Prometheus scraping two sidecars with Istio metric names', needPrometheus, () => {
  before(async () => {
    assert.ok(installed, 'prometheus is not installed: apt-get install prometheus (.ci/run installs it under CI)');
    dir = mkdtempSync(join(tmpdir(), 'trellis-prometheus-'));
    // Of the shop's instances only web and one api-v1 run (the only ones with an address), and every call goes to v1.
    mesh = new RunningMesh({ 'app.yaml': MESH_APP, 'routing.yaml': routing(100, 0), 'mesh.yaml': ISTIO_NAMES });
    await mesh.startControlPlane();
    api = await startApp(API_V1, (req, res) => {
      req.resume();
      if (req.url === '/healthz') return void res.end('ok');
      setTimeout(() => { res.writeHead(req.url === '/fail' ? 500 : 200); res.end('api-v1'); }, DELAY_MS);
    });
    const sidecars = await Promise.all([mesh.startSidecar('web.shop'), mesh.startSidecar(API_V1, api.port)]);
    await mesh.synced(['web.shop', API_V1]);
    // Without a request: every one sent is counted.
    await waitFor('web sees api in rotation', async () => usableApiEndpoints(await mesh.configDump('web.shop')).length === 1 || undefined, 10_000, 100);

    promAt = `127.0.0.1:${await freePort()}`;
    const targets = sidecars.map((s) => `'${s.admin}'`).join(', ');
    writeFileSync(join(dir, 'prometheus.yml'), `global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
scrape_configs:
- job_name: trellis-sidecars
  static_configs: [{ targets: [${targets}] }]
`);
    prometheus = spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${promAt}`,
    ], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus.stdout!.on('data', (b: Buffer) => (promLog = (promLog + b.toString()).slice(-16_000)));
    prometheus.stderr!.on('data', (b: Buffer) => (promLog = (promLog + b.toString()).slice(-16_000)));
    await waitFor('Prometheus to scrape both sidecars', async () => {
      if (prometheus!.exitCode !== null) throw new Error(`prometheus exited (${prometheus!.exitCode}):\n${promLog.slice(-2000)}`);
      const up = await query('up{job="trellis-sidecars"}');
      if (up.length !== 2 || !up.every((s) => num(s) === 1)) throw new Error(`up: ${JSON.stringify(up)}`);
      return true;
    }, 15_000, 200);
  });

  after(async () => {
    if (prometheus?.pid && prometheus.exitCode === null) {
      const gone = new Promise((r) => prometheus!.once('exit', r));
      try { process.kill(-prometheus.pid, 'SIGTERM'); } catch { /* gone */ }
      const kill = setTimeout(() => { try { process.kill(-prometheus!.pid!, 'SIGKILL'); } catch { /* gone */ } }, 3000);
      await gone;
      clearTimeout(kill);
    }
    await mesh?.close();
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('after 44 answered and 11 failing requests: the stored samples, their labels and buckets are exactly what was sent', async () => {
    // A first batch creates the series (a counter's first sample is where rate() starts), the second is what rates measure.
    await Promise.all([send('/hello', 4, 200, 100), send('/fail', 1, 500, 100)]);
    await scraped('source', 5);
    trafficFrom = Date.now();
    await Promise.all([send('/hello', 40, 200, TRAFFIC_MS), send('/fail', 10, 500, TRAFFIC_MS)]);
    await scraped('source', 55);
    await scraped('destination', 55);

    const source = await query('istio_requests_total{reporter="source"}');
    assert.deepEqual(byCode(source), { 200: 44, 500: 11 });
    for (const s of source) {
      const m = s.metric;
      assert.deepEqual(
        [m['source_workload'], m['source_workload_namespace'], m['source_app'], m['source_principal'],
          m['destination_workload'], m['destination_workload_namespace'], m['destination_version'], m['destination_principal'],
          m['destination_service'], m['destination_service_name'], m['destination_service_namespace'], m['request_protocol'], m['response_flags']],
        ['web', 'shop', 'web', 'spiffe://cluster.local/ns/shop/sa/web', 'api-v1', 'shop', 'v1', 'spiffe://cluster.local/ns/shop/sa/api', API, 'api', 'shop', 'http', '-'],
        JSON.stringify(m),
      );
      assert.equal(m['instance'], mesh.sidecars.get('web.shop')!.admin, 'scraped from web\'s sidecar');
    }
    const destination = await query('istio_requests_total{reporter="destination"}');
    assert.deepEqual(byCode(destination), { 200: 44, 500: 11 });
    for (const s of destination) {
      assert.deepEqual([s.metric['destination_workload'], s.metric['destination_service'], s.metric['instance']], ['api-v1', API, mesh.sidecars.get(API_V1)!.admin]);
    }
    // Istio's bucket bounds, read by Prometheus's own parser: all 55 took the app's 150 ms plus two proxies.
    const buckets = await query('sum(istio_request_duration_milliseconds_bucket{reporter="source"}) by (le)');
    const le = Object.fromEntries(buckets.map((s) => [s.metric['le']!, num(s)]));
    const bound = (x: string) => (x === '+Inf' ? Infinity : Number(x));
    assert.deepEqual(Object.keys(le).sort((a, b) => bound(a) - bound(b)), [
      '0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf',
    ]);
    assert.deepEqual([le['100'], le['250'], le['+Inf']], [0, 55, 55]);
    assert.equal(num((await query('sum(istio_request_duration_milliseconds_count{reporter="source"})'))[0]), 55);
  });

  test('istio-mesh-dashboard "HTTP/GRPC Workloads": request volume by workload and service, P99 in the app\'s bucket, success rate', async () => {
    // The table's queries A, D and E, verbatim but for their time window (1m, as the dashboard has it).
    const volume = await query('label_join(sum(rate(istio_requests_total{reporter="source", response_code="200"}[1m])) by (destination_workload, destination_workload_namespace, destination_service), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")');
    assert.deepEqual(volume.map((s) => s.metric), [{ destination_workload: 'api-v1', destination_workload_namespace: 'shop', destination_service: API, destination_workload_var: 'api-v1.shop' }]);
    // rate() extrapolates the 40 seen between the first and last samples a little towards the window's edges, never below.
    const perMinute = num(volume[0]) * 60;
    assert.ok(perMinute >= 40 - 1e-9 && perMinute <= 88, `${perMinute} requests a minute: at least the 40 sent after the first sample`);

    const p99 = await query('label_join((histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])) by (le, destination_workload, destination_workload_namespace)) / 1000) or histogram_quantile(0.99, sum(rate(istio_request_duration_seconds_bucket{reporter="source"}[1m])) by (le, destination_workload, destination_workload_namespace)), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")');
    assert.deepEqual(p99.map((s) => s.metric['destination_workload_var']), ['api-v1.shop']);
    assert.ok(num(p99[0]) > 0.1 && num(p99[0]) <= 0.25, `P99 ${num(p99[0])} s in Istio's (100, 250] ms bucket`);

    const success = await query('label_join((sum(rate(istio_requests_total{reporter="source", response_code!~"5.*"}[1m])) by (destination_workload, destination_workload_namespace) / sum(rate(istio_requests_total{reporter="source"}[1m])) by (destination_workload, destination_workload_namespace)), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")');
    assert.deepEqual(success.map((s) => s.metric['destination_workload_var']), ['api-v1.shop']);
    assert.ok(Math.abs(num(success[0]) - 0.8) <= 0.05, `success rate ${num(success[0])} ≈ 40 / 50`);
  });

  test('istio-mesh-dashboard "Global Success Rate"; istio-service-dashboard "Client Request Volume" and "Client Request Duration" for api', async () => {
    const global = await query('sum(rate(istio_requests_total{reporter="source", response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="source"}[1m]))');
    assert.equal(global.length, 1);
    assert.ok(Math.abs(num(global[0]) - 0.8) <= 0.05, `global success rate ${num(global[0])} ≈ 0.8`);
    // The service dashboard's panels with their variables filled in ($qrep = source, $service = api's FQDN,
    // $__rate_interval = 1m). They use irate() (the last two samples), so they are read as the graph would show
    // them while the traffic ran: 2.5 s into the 3 s batch, the two samples before are both inside it.
    const during = trafficFrom + TRAFFIC_MS - 500;
    const volume = await query(`round(sum(irate(istio_requests_total{reporter=~"source",destination_service="${API}"}[1m])), 0.001)`, during);
    assert.equal(volume.length, 1);
    assert.ok(num(volume[0]) > 5 && num(volume[0]) < 50, `${num(volume[0])} requests a second while 50 were sent over 3 s`);
    const duration = await query(`(histogram_quantile(0.99, sum(irate(istio_request_duration_milliseconds_bucket{reporter=~"source",destination_service="${API}"}[1m])) by (le)) / 1000) or histogram_quantile(0.99, sum(irate(istio_request_duration_seconds_bucket{reporter=~"source",destination_service="${API}"}[1m])) by (le))`, during);
    assert.equal(duration.length, 1, JSON.stringify(duration));
    assert.ok(num(duration[0]) > 0.1 && num(duration[0]) <= 0.25, `P99 ${num(duration[0])} s in Istio's (100, 250] ms bucket`);
  });
});
