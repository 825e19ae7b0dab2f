/**
 * The topology scraper and graph (src/controlplane/topology.ts) on real data
 * planes: web-v1's sidecar calling api-v2's sidecar in front of a real app
 * (test/telemetry/two-proxies.ts), scraped on their admin ports. Counts
 * after known traffic, a restart behind the same instances, proxies that do
 * not answer, the window; then the graph's rules (which reporter wins, what
 * counts as an error) on expositions written the way the proxies write them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { buildGraph, seriesOf, type Edge, type ServiceNode, type TopologyDoc } from '../../src/controlplane/topology-graph.js';
import { Topology, topologyAnswer, type ScrapeResult, type ScrapeTarget } from '../../src/controlplane/topology.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';
import { ConfigDir, sleep, startControlPlane } from './helpers.js';
import { startTwoProxies, type TwoProxies } from '../telemetry/two-proxies.js';

const registry = meshFromYaml(TWO_SERVICES).registry;
let pair: TwoProxies;
let targets: ScrapeTarget[] = [];
const results: ScrapeResult[] = [];
let topology: Topology;

const targetsOf = (p: TwoProxies): ScrapeTarget[] => [
  { instance: 'web-v1.shop', admin: p.caller.addresses.admin! },
  { instance: 'api-v2.shop', admin: p.callee.addresses.admin! },
];
const edgesOf = (doc: TopologyDoc) => doc.edges.map((e) => ({ source: e.source, destination: e.destination, reporter: e.reporter, requests: e.requests, errors: e.errors }));
const service = (doc: TopologyDoc, id: string) => doc.nodes.find((n): n is ServiceNode => n.id === id && n.kind === 'service');

before(async () => {
  pair = await startTwoProxies({}, {});
  targets = targetsOf(pair);
  topology = new Topology({ intervalMs: 60_000, timeoutMs: 300, targets: () => targets, registry: () => registry, onScrape: (r) => results.push(r) });
  await topology.scrape(); // the baseline, before any traffic
  for (let i = 0; i < 5; i++) assert.equal((await pair.client.call('http://api/ok')).status, 200);
  assert.equal((await pair.client.call('http://api/fail')).status, 503);
  await topology.scrape();
});
after(async () => {
  await topology?.close();
  await pair?.close();
});

test('after known traffic: one edge web-v1 → api reported by the source, exact counts; api\'s own view counts every attempt', () => {
  const doc = topology.graph(60_000);
  assert.equal(doc.schema, 'trellis.dev/topology/v1');
  // The destination proxy reports its caller as unknown (no mTLS yet); since a source reports calling api, that is not an outside caller.
  assert.deepEqual(edgesOf(doc), [{ source: 'workload:web-v1.shop', destination: 'service:api.shop', reporter: 'source', requests: 6, errors: 1 }]);
  const e = doc.edges[0]!;
  assert.deepEqual(e.responseCodes, { 200: 5, 503: 1 });
  assert.deepEqual(e.destinationWorkloads, { 'api-v2.shop': 6 });
  assert.equal(e.protocol, 'http');
  assert.equal(e.errorRatio, round4(1 / 6));
  assert.ok(e.rps > 0);
  assert.ok(e.latencyMs && e.latencyMs.p50 > 0 && e.latencyMs.p50 <= e.latencyMs.p90 && e.latencyMs.p90 <= e.latencyMs.p99, JSON.stringify(e.latencyMs));
  // Istio's default retry policy retries a 503 twice: api's sidecar saw 5 + 3 requests.
  const api = service(doc, 'service:api.shop')!;
  assert.equal(api.inbound?.reporter, 'destination');
  assert.equal(api.inbound?.requests, 8);
  assert.equal(api.inbound?.errors, 3);
  assert.equal(service(doc, 'service:web.shop')?.inbound, null);
  assert.ok(!doc.nodes.some((n) => n.kind === 'unknown'));
  assert.deepEqual(doc.scrape.failed, []);
  assert.equal(doc.scrape.answered, 2);
});

test('a window that starts after the traffic holds no edges; the longer one still does', async () => {
  await sleep(1100);
  await topology.scrape();
  assert.deepEqual(topology.graph(1000).edges, []);
  assert.equal(topology.graph(60_000).edges[0]?.requests, 6);
});

test('proxies restarted behind the same instances count from zero again: nothing lost, no negative rate', async () => {
  const old = pair;
  pair = await startTwoProxies({}, {});
  await old.close();
  targets = targetsOf(pair);
  // More requests than the old processes had served: a counter that only went by "the value dropped" would miss the restart.
  for (let i = 0; i < 10; i++) assert.equal((await pair.client.call('http://api/ok')).status, 200);
  await topology.scrape();
  const doc = topology.graph(60_000);
  assert.deepEqual(edgesOf(doc), [{ source: 'workload:web-v1.shop', destination: 'service:api.shop', reporter: 'source', requests: 16, errors: 1 }]);
  assert.deepEqual(doc.edges[0]!.responseCodes, { 200: 15, 503: 1 });
  assert.equal(service(doc, 'service:api.shop')?.inbound?.requests, 18);
  assert.ok(doc.edges.every((x) => x.rps >= 0 && x.requests >= 0));
});

test('a proxy that does not answer is skipped and counted; the others still make the graph', async () => {
  const silent: Server = createNetServer(() => { /* accepts and never answers */ });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const closed = createNetServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const good = targets;
  targets = [...good, { instance: 'gone.shop', admin: `127.0.0.1:${closedPort}` }, { instance: 'silent.shop', admin: `127.0.0.1:${(silent.address() as AddressInfo).port}` }];
  results.length = 0;
  try {
    await topology.scrape();
  } finally {
    targets = good;
    silent.close();
  }
  assert.deepEqual([...results].sort(), ['failed', 'ok', 'ok', 'timeout']);
  const doc = topology.graph(60_000);
  assert.deepEqual(doc.scrape.failed, ['gone.shop', 'silent.shop']);
  assert.equal(doc.scrape.proxies, 4);
  assert.equal(doc.scrape.answered, 2);
  assert.equal(doc.edges[0]?.requests, 16);
});

test('a new process behind the same admin address (its start time changed) counts from zero, even with counters already higher', async () => {
  let body = '';
  const exposition = (start: number, ok: number) => [
    `process_start_time_seconds ${start}`, ...series('trellis_', { reporter: 'source', source_workload: 'cron' }, ok),
  ].join('\n') + '\n';
  const admin = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  const t = new Topology({ intervalMs: 60_000, targets: () => [{ instance: 'cron.shop', admin: `127.0.0.1:${(admin.address() as AddressInfo).port}` }], registry: () => registry });
  const started = Math.floor(Date.now() / 1000);
  try {
    for (const [start, ok] of [[started - 3600, 100], [started - 3600, 104], [started, 150], [started, 151]] as const) {
      body = exposition(start, ok);
      await t.scrape();
    }
  } finally {
    admin.close();
  }
  // 4 by the old process once the history began (it started long before the window), then 150 + 1 by the new one.
  assert.deepEqual(t.graph(60_000).edges.map((e) => [e.source, e.requests]), [['workload:cron.shop', 155]]);
});

test('/api/topology?window= takes a duration up to the history; the topology off says so', () => {
  assert.equal(topologyAnswer(topology, null).status, 200);
  assert.equal((topologyAnswer(topology, '10s').body as TopologyDoc).window.seconds, 10);
  for (const bad of ['0s', '2m', 'soon', '10']) {
    const a = topologyAnswer(topology, bad);
    assert.equal(a.status, 400, bad);
    assert.match((a.body as { error: string }).error, new RegExp(`window must be a duration.*at most 60s.*"${bad}"`));
  }
  const off = topologyAnswer(new Topology({ intervalMs: 0, targets: () => [], registry: () => registry }), '10s');
  assert.equal(off.status, 503);
  assert.match((off.body as { error: string }).error, /--scrape-interval 0/);
});

test('the control plane serves /api/topology, lists it among its pages, and --scrape-interval 0 turns it off', async () => {
  const config = new ConfigDir({ 'app.yaml': TWO_SERVICES });
  const on = await startControlPlane(config.path, { scrapeIntervalMs: 100 });
  const off = await startControlPlane(config.path, { scrapeIntervalMs: 0 });
  try {
    const doc = await on.get<TopologyDoc>('/api/topology?window=5s');
    assert.equal(doc.status, 200);
    assert.deepEqual([doc.body.schema, doc.body.window.seconds, doc.body.edges.length], ['trellis.dev/topology/v1', 5, 0]);
    assert.ok(service(doc.body, 'service:api.shop'), 'the registry\'s services are nodes before any traffic');
    assert.equal((await on.get('/api/topology?window=1h')).status, 400);
    assert.ok((await on.get<{ pages: string[] }>('/nope')).body.pages.includes('/api/topology'));
    const r = await off.get<{ error: string }>('/api/topology');
    assert.equal(r.status, 503);
    assert.match(r.body.error, /topology is off.*--scrape-interval 0/);
  } finally {
    await on.cp.close();
    await off.cp.close();
    config.remove();
  }
});

// The graph's rules, on expositions as a proxy writes them (Istio's label set; values cumulative).

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
const BASE: Record<string, string> = {
  source_workload: 'web-v1', source_workload_namespace: 'shop', destination_service: 'api.shop.svc.cluster.local', destination_service_name: 'api',
  destination_service_namespace: 'shop', destination_workload: 'api-v1', destination_workload_namespace: 'shop', request_protocol: 'http',
  response_code: '200', response_flags: '-', grpc_response_status: '', connection_security_policy: 'none',
};
function line(name: string, labels: Record<string, string>, value: number): string {
  return `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}} ${value}`;
}
/** One requests_total series (and, with `ms`, its duration histogram with every request in one bucket). */
function series(prefix: string, labels: Record<string, string>, n: number, ms?: number): string[] {
  const l = { ...BASE, ...labels };
  const out = [line(`${prefix}requests_total`, l, n)];
  if (ms !== undefined) for (const le of [10, 25, 50, 100, '+Inf']) out.push(line(`${prefix}request_duration_milliseconds_bucket`, { le: String(le), ...l }, le === '+Inf' || Number(le) >= ms ? n : 0));
  return out;
}
function graphOf(...expositions: string[][]): { edges: Edge[]; doc: ReturnType<typeof buildGraph> } {
  const inc = new Map<string, number>();
  for (const text of expositions) for (const [k, v] of seriesOf(text.join('\n') + '\n').values) inc.set(k, (inc.get(k) ?? 0) + v);
  const doc = buildGraph(inc, registry, 10);
  return { edges: doc.edges, doc };
}

test('rules: callers outside the mesh appear as unknown when no source reports calling the service', () => {
  const { edges, doc } = graphOf(series('trellis_', { reporter: 'destination', source_workload: 'unknown', source_workload_namespace: 'unknown' }, 20, 30));
  assert.deepEqual(edges.map((e) => [e.source, e.destination, e.reporter, e.requests, e.rps]), [['unknown', 'service:api.shop', 'destination', 20, 2]]);
  assert.ok(doc.nodes.some((n) => n.kind === 'unknown'));
  // All 20 in (25, 50]: interpolated as histogram_quantile does.
  assert.deepEqual(edges[0]!.latencyMs, { p50: 37.5, p90: 47.5, p99: 49.75 });
});

test('rules: the source\'s series win; the destination\'s fill in only edges no source reports', () => {
  const { edges } = graphOf(
    series('istio_', { reporter: 'source' }, 7),
    // api-v1's sidecar, once it knows its callers: the same edge (dropped), and one no source reports (kept).
    series('istio_', { reporter: 'destination' }, 9),
    series('istio_', { reporter: 'destination', source_workload: 'batch', source_workload_namespace: 'jobs' }, 4),
    // Not a service metric: no reporter label.
    ['trellis_proxy_requests_total{direction="outbound",status_class="2xx"} 99'],
  );
  assert.deepEqual(edges.map((e) => [e.source, e.reporter, e.requests]), [['workload:batch.jobs', 'destination', 4], ['workload:web-v1.shop', 'source', 7]]);
});

test('rules: what counts as an error, and 4xx apart', () => {
  const { edges } = graphOf([
    ...series('trellis_', { reporter: 'source', response_code: '200' }, 10),
    ...series('trellis_', { reporter: 'source', response_code: '500' }, 1),
    ...series('trellis_', { reporter: 'source', response_code: '503', response_flags: 'UH' }, 1),
    ...series('trellis_', { reporter: 'source', response_code: '0', response_flags: 'DC' }, 1),
    ...series('trellis_', { reporter: 'source', response_code: '200', request_protocol: 'grpc', grpc_response_status: '14' }, 1),
    ...series('trellis_', { reporter: 'source', response_code: '404', response_flags: 'NR' }, 2),
    ...series('trellis_', { reporter: 'source', response_code: '429', response_flags: 'RL' }, 3),
  ]);
  assert.equal(edges.length, 1);
  const e = edges[0]!;
  assert.deepEqual([e.requests, e.errors, e.clientErrors, e.errorRatio], [19, 4, 5, round4(4 / 19)]);
  assert.equal(e.protocol, 'http');
  assert.equal(e.latencyMs, null, 'no histogram, no latency');
});
