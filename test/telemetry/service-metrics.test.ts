/**
 * Istio's service metrics after known traffic through two real data planes:
 * exact counts, Istio's bucket bounds, Istio's label set and values, the
 * `istio_` prefix, proxy- and process-level metrics, and OpenMetrics when
 * the Accept header asks for it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ISTIO_LABELS } from '../../src/telemetry/istio-labels.js';
import { ISTIO_BUCKETS } from '../../src/telemetry/service-metrics.js';
import { histogram, parsePrometheusText, select, type Family } from './prom-text.js';
import { scrape, startTwoProxies, type TwoProxies } from './two-proxies.js';

let p: TwoProxies;
let callerMetrics: Map<string, Family>;
let calleeMetrics: Map<string, Family>;
const okBytes: number[] = [];

const ISTIO_DEFAULT_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

before(async () => {
  p = await startTwoProxies({}, { metricsPrefix: 'istio_' });
  // Known traffic: 3 GETs, 2 POSTs of 5 bytes (all 200), 1 GET answered 503 by the app.
  for (let i = 0; i < 3; i++) { const r = await p.client.call('http://api/ok'); assert.equal(r.status, 200); okBytes.push(Buffer.byteLength(r.text)); }
  for (let i = 0; i < 2; i++) { const r = await p.client.call('http://api/ok', { method: 'POST', body: 'hello' }); assert.equal(r.status, 200); okBytes.push(Buffer.byteLength(r.text)); }
  assert.equal((await p.client.call('http://api/fail')).status, 503);
  callerMetrics = parsePrometheusText((await scrape(p.caller)).text);
  calleeMetrics = parsePrometheusText((await scrape(p.callee)).text);
});
after(async () => { await p?.close(); });

const SOURCE_OK = { reporter: 'source', response_code: '200' };

test('requests_total: exact counts per reporter and response code, with Istio\'s label set', () => {
  const total = callerMetrics.get('trellis_requests_total');
  assert.equal(total?.type, 'counter');
  assert.deepEqual(select(total, SOURCE_OK).map((s) => s.value), [5]);
  const failed = select(total, { reporter: 'source', response_code: '503' });
  assert.deepEqual(failed.map((s) => [s.value, s.labels['response_flags']]), [[1, 'URX']], 'retries exhausted: flagged URX');
  assert.equal(total!.samples.length, 2, 'one series per response code, no path or id labels');
  const labels = select(total, SOURCE_OK)[0]!.labels;
  assert.deepEqual(Object.keys(labels).sort(), [...ISTIO_LABELS].sort());
  assert.deepEqual(labels, {
    reporter: 'source',
    source_workload: 'web-v1', source_canonical_service: 'web', source_canonical_revision: 'v1', source_workload_namespace: 'shop',
    source_principal: 'spiffe://cluster.local/ns/shop/sa/web', source_app: 'web', source_version: 'v1', source_cluster: 'Kubernetes',
    destination_workload: 'api-v2', destination_workload_namespace: 'shop', destination_principal: 'spiffe://cluster.local/ns/shop/sa/api',
    destination_app: 'api', destination_version: 'v2',
    destination_service: 'api.shop.svc.cluster.local', destination_service_name: 'api', destination_service_namespace: 'shop',
    destination_canonical_service: 'api', destination_canonical_revision: 'v2', destination_cluster: 'Kubernetes',
    request_protocol: 'http', response_code: '200', grpc_response_status: '', response_flags: '-', connection_security_policy: 'unknown',
  });
});

test('the destination proxy reports with the istio_ prefix; over plaintext the caller is unknown and the security policy none', () => {
  assert.equal(calleeMetrics.get('trellis_requests_total'), undefined);
  const total = calleeMetrics.get('istio_requests_total');
  const ok = select(total, { reporter: 'destination', response_code: '200' });
  assert.deepEqual(ok.map((s) => s.value), [5]);
  // Istio's default retry policy retries a 503 twice: the destination saw three attempts.
  assert.deepEqual(select(total, { reporter: 'destination', response_code: '503' }).map((s) => s.value), [3]);
  const l = ok[0]!.labels;
  assert.equal(l['destination_workload'], 'api-v2');
  assert.equal(l['destination_principal'], 'spiffe://cluster.local/ns/shop/sa/api');
  assert.equal(l['destination_service'], 'api.shop.svc.cluster.local');
  assert.equal(l['destination_version'], 'v2');
  assert.equal(l['source_workload'], 'unknown');
  assert.equal(l['source_principal'], 'unknown');
  assert.equal(l['source_workload_namespace'], 'unknown');
  assert.equal(l['connection_security_policy'], 'none', 'these two proxies have no certificates: plaintext');
  assert.ok(calleeMetrics.has('istio_request_duration_milliseconds'));
});

test('histograms: Istio\'s bucket bounds, exact counts and sums', () => {
  assert.deepEqual([...ISTIO_BUCKETS], ISTIO_DEFAULT_BUCKETS);
  for (const name of ['trellis_request_duration_milliseconds', 'trellis_request_bytes', 'trellis_response_bytes']) {
    const h = histogram(callerMetrics.get(name), SOURCE_OK);
    assert.deepEqual(h.bounds, [...ISTIO_DEFAULT_BUCKETS, Infinity], name);
    assert.equal(h.count, 5, name);
    assert.equal(h.counts.at(-1), 5, name);
    for (let i = 1; i < h.counts.length; i++) assert.ok(h.counts[i]! >= h.counts[i - 1]!, `${name} buckets are cumulative`);
  }
  const req = histogram(callerMetrics.get('trellis_request_bytes'), SOURCE_OK);
  assert.equal(req.sum, 10);
  assert.deepEqual(req.counts.slice(0, 3), [3, 3, 5], 'three empty bodies (≤ 0.5), two of 5 bytes (≤ 5)');
  const res = histogram(callerMetrics.get('trellis_response_bytes'), SOURCE_OK);
  assert.equal(res.sum, okBytes.reduce((a, b) => a + b, 0));
  const dur = histogram(callerMetrics.get('trellis_request_duration_milliseconds'), SOURCE_OK);
  assert.ok(dur.sum > 0 && dur.sum < 5 * 10_000);
  assert.equal(histogram(calleeMetrics.get('istio_request_bytes'), { reporter: 'destination', response_code: '200' }).sum, 10);
});

test('proxy-level and process metrics are served beside the service metrics', () => {
  const v = (name: string, match: Record<string, string> = {}) => select(callerMetrics.get(name), match).map((s) => s.value);
  assert.deepEqual(v('trellis_proxy_requests_total', { direction: 'outbound', status_class: '2xx' }), [5]);
  assert.deepEqual(v('trellis_proxy_requests_total', { direction: 'outbound', status_class: '5xx' }), [1]);
  assert.deepEqual(v('trellis_proxy_downstream_connections_opened_total', { listener: 'outbound' }).length, 1);
  assert.ok(v('trellis_proxy_downstream_connections_opened_total', { listener: 'outbound' })[0]! >= 1);
  assert.deepEqual(v('trellis_proxy_active_requests'), [0]);
  assert.deepEqual(v('trellis_proxy_snapshot_info', { version: p.caller.snapshot!.version }), [1]);
  const age = v('trellis_proxy_snapshot_age_seconds');
  assert.ok(age.length === 1 && age[0]! >= 0 && age[0]! < 60);
  assert.equal(callerMetrics.get('nodejs_eventloop_lag_seconds')?.type, 'gauge');
  assert.ok(v('process_resident_memory_bytes')[0]! > 0);
  assert.ok(v('nodejs_heap_size_used_bytes')[0]! > 0);
});

test('OpenMetrics when the Accept header asks; Prometheus text stays the default afterwards', async () => {
  const om = await scrape(p.caller, 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
  assert.equal(om.type, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  assert.ok(om.text.endsWith('# EOF\n'));
  assert.match(om.text, /^# TYPE trellis_requests counter$/m);
  assert.match(om.text, /^trellis_requests_total\{reporter="source",.*response_code="200".*\} 5$/m);
  assert.match(om.text, /^# TYPE trellis_proxy_requests counter$/m);
  const text = await scrape(p.caller);
  assert.equal(text.type, 'text/plain; version=0.0.4; charset=utf-8');
  const again = parsePrometheusText(text.text);
  assert.equal(again.get('trellis_requests_total')?.type, 'counter', 'counter names are whole again after an OpenMetrics scrape');
  assert.ok(!text.text.includes('# EOF'));
});

test('?filter=<regex>: only the families whose name matches (the topology scrape asks this way); a bad regex is a 400', async () => {
  const get = async (q: string) => { const r = await fetch(`http://${p.caller.addresses.admin}/metrics${q}`); return { status: r.status, text: await r.text() }; };
  const some = await get(`?filter=${encodeURIComponent('^(?!nodejs_|trellis_proxy_)\\w*(requests_total|request_duration_milliseconds)$|^process_start_time_seconds$')}`);
  assert.equal(some.status, 200);
  const families = [...parsePrometheusText(some.text).keys()].sort();
  assert.deepEqual(families, ['process_start_time_seconds', 'trellis_request_duration_milliseconds', 'trellis_requests_total']);
  assert.deepEqual(select(parsePrometheusText(some.text).get('trellis_requests_total'), SOURCE_OK).map((s) => s.value), [5], 'the same values as unfiltered');
  const om = await fetch(`http://${p.caller.addresses.admin}/metrics?filter=_requests_total$`, { headers: { accept: 'application/openmetrics-text;version=1.0.0' } });
  assert.match(await om.text(), /^# TYPE trellis_requests counter$[\s\S]*# EOF\n$/m, 'OpenMetrics: counters matched by their registered name');
  const bad = await get('?filter=(');
  assert.equal(bad.status, 400);
  assert.match(bad.text, /^filter: not a regular expression/);
  assert.ok(parsePrometheusText((await get('?filter=')).text).has('nodejs_heap_size_used_bytes'), 'an empty filter is no filter');
});

// grpc_response_status needs the forwarder to hand the status it sees (headers or trailers) to the exchange: not asserted yet.
test('gRPC: request_protocol is grpc on both reporters', async () => {
  const r = await p.client.call('http://api/pkg.Svc/Get', { method: 'POST', headers: { 'content-type': 'application/grpc' }, body: Buffer.alloc(5) });
  assert.equal(r.status, 200);
  assert.equal(r.headers['grpc-status'], '5');
  const caller = parsePrometheusText((await scrape(p.caller)).text).get('trellis_requests_total');
  assert.deepEqual(select(caller, { reporter: 'source', request_protocol: 'grpc' }).map((s) => [s.value, s.labels['response_code']]), [[1, '200']]);
  const callee = parsePrometheusText((await scrape(p.callee)).text).get('istio_requests_total');
  assert.deepEqual(select(callee, { reporter: 'destination', request_protocol: 'grpc' }).map((s) => s.value), [1]);
});
