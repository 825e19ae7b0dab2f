/**
 * Distributed traces end to end: three services (web → a → b), each with a
 * real sidecar data plane and a real app, configured by a compiled
 * MeshConfig (OpenTelemetry extension provider, sampling), exporting to a
 * real OTLP/HTTP receiver that decodes what arrives. a's app propagates the
 * trace headers it got when it calls b, as an app in a mesh must.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseYaml } from '../../src/api/load.js';
import { compile } from '../../src/compile/index.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';
import { Client, echo, eventually, startApp, withEndpoints, type App, type Echo } from '../helpers/proxy.js';
import { OtlpReceiver, type ReceivedSpan } from './otlp-receiver.js';
import { scrape } from './two-proxies.js';

const SERVICES = [
  ...['web', 'a', 'b'].flatMap((n, i) => [k8sService(n, 'shop', { name: 'http', port: 80, targetPort: 9000 + i }), k8sDeployment(`${n}-v1`, 'shop', n)]),
].join('---\n');

function meshConfig(port: number, extra = ''): string {
  return `---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  ${extra}
  extensionProviders:
  - name: otel
    opentelemetry: { service: 127.0.0.1, port: ${port}, http: { path: /v1/traces, timeout: 300ms } }
  defaultProviders: { tracing: [otel] }
`;
}

const TRACE_HEADERS = ['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'x-request-id'];
const SERVER = 2;
const CLIENT = 3;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

const dir = mkdtempSync(join(tmpdir(), 'trellis-tracing-'));
const webLog = join(dir, 'web.log');
const recv = new OtlpReceiver();
const logs: Record<string, string[]> = { web: [], a: [], b: [] };
const planes: Record<string, DataPlane> = {};
let apps: App[] = [];
let client: Client;
/** What a's app last received. */
let atA: IncomingHttpHeaders = {};

/** a's app: calls b through its own sidecar with the trace headers it got, and answers with b's answer. */
function callB(outbound: string, incoming: IncomingHttpHeaders): Promise<string> {
  const [host, port] = outbound.split(':');
  const headers: Record<string, string> = { host: 'b' };
  for (const k of TRACE_HEADERS) if (typeof incoming[k] === 'string') headers[k] = incoming[k];
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path: 'http://b/deep', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every endpoint of `workload` gets `inbound` as its address. */
function patch(s: Snapshot, addresses: Record<string, string>): Snapshot {
  const by: Record<string, { address: string; port: number; health: 'HEALTHY' }> = {};
  for (const ce of s.endpoints) {
    for (const e of ce.endpoints) {
      const at = addresses[e.workload];
      if (at) by[e.instance] = { address: at.split(':')[0]!, port: Number(at.split(':')[1]), health: 'HEALTHY' };
    }
  }
  return withEndpoints(s, by);
}

/** Compiles the three proxies' snapshots from `yaml` and applies them. */
function configure(yaml: string): void {
  const mesh = meshFromYaml(SERVICES + yaml);
  const inbound = (n: string) => planes[n]!.addresses.inbound!;
  const addresses = { 'a-v1': inbound('a'), 'b-v1': inbound('b') };
  for (const n of ['web', 'a', 'b']) {
    const r = planes[n]!.apply(patch(compile(mesh.config, mesh.registry, { workload: `${n}-v1`, namespace: 'shop' }), addresses));
    if (!r.ok) throw new Error(r.reason);
  }
}

const tuning = { maxQueueSize: 50, maxExportBatchSize: 10, scheduledDelayMs: 20 };

before(async () => {
  await recv.start();
  const b = await startApp('b', echo);
  const a = await startApp('a', (req, res) => {
    atA = req.headers;
    req.resume();
    callB(planes['a']!.addresses.outbound!, req.headers).then((body) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    }, (err: Error) => { res.writeHead(502); res.end(err.message); });
  });
  apps = [a, b];
  for (const [n, app] of [['b', b], ['a', a], ['web', undefined]] as const) {
    const dp = createDataPlane({
      mtlsWithoutCertificate: 'plaintext',
      mode: 'sidecar', ...(app ? { appPort: app.port } : {}),
      telemetry: { tracing: tuning, log: (l) => logs[n]!.push(l), ...(n === 'web' ? { accessLog: { file: webLog } } : {}) },
    });
    await dp.start();
    planes[n] = dp;
  }
  configure('');
  client = new Client(planes['web']!.addresses.outbound!);
});

after(async () => {
  await client?.close();
  for (const dp of Object.values(planes)) await dp.close(100);
  for (const app of apps) await app.close();
  await recv.close();
  rmSync(dir, { recursive: true, force: true });
});

const accessLines = (): Record<string, unknown>[] =>
  existsSync(webLog) ? readFileSync(webLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];

// The first trace waits for each proxy to load the OpenTelemetry exporter, which takes seconds on a loaded 2-core machine.
async function waitForTrace(traceId: string, n: number): Promise<ReceivedSpan[]> {
  return eventually(() => (recv.trace(traceId).length >= n ? recv.trace(traceId) : undefined), 20_000,
    () => `spans of ${traceId}: ${recv.trace(traceId).map((s) => `${s.resource['service.name']} ${s.kind}`).join(', ') || 'none'}; ${recv.spans.length} spans in all`);
}

const traceparentOf = (e: Echo): string[] => String(e.headers['traceparent']).split('-');

test('tracing off: the trace headers pass untouched, nothing is traced, no trace_id in the access log', async () => {
  const tp = `00-${TRACE}-${SPAN}-01`;
  const r = await client.call('http://a/off', { headers: { traceparent: tp, tracestate: 'k=v' } });
  assert.equal(r.status, 200);
  const atB = r.json();
  assert.equal(atB.headers['traceparent'], tp);
  assert.equal(atB.headers['tracestate'], 'k=v');
  const line = await eventually(() => accessLines().find((l) => l['path'] === '/off'), 3000, () => 'no access log line for /off');
  assert.equal('trace_id' in line, false);
  assert.doesNotMatch((await scrape(planes['web']!)).text, /trellis_proxy_trace_/);
});

test('one request through three services: one trace, client → server → client → server, with HTTP and mesh attributes', async () => {
  configure(meshConfig(recv.port, 'defaultConfig: { tracing: { sampling: 100 } }'));
  const r = await client.call('http://a/hello?x=1');
  assert.equal(r.status, 200);
  const atB = r.json();
  const [, traceId, parentAtB, flags] = traceparentOf(atB);
  assert.equal(flags, '01');
  const spans = await waitForTrace(traceId!, 4);
  assert.equal(spans.length, 4, 'one span per proxy hop');
  const by = (service: string, kind: number) => {
    const s = spans.find((x) => x.resource['service.name'] === service && x.kind === kind);
    assert.ok(s, `a ${kind === CLIENT ? 'client' : 'server'} span of ${service}`);
    return s;
  };
  const webOut = by('web.shop', CLIENT);
  const aIn = by('a.shop', SERVER);
  const aOut = by('a.shop', CLIENT);
  const bIn = by('b.shop', SERVER);
  assert.equal(webOut.parentSpanId, undefined, 'the trace starts at the caller\'s sidecar');
  assert.equal(aIn.parentSpanId, webOut.spanId);
  assert.equal(aOut.parentSpanId, aIn.spanId);
  assert.equal(bIn.parentSpanId, aOut.spanId);
  assert.equal(parentAtB, bIn.spanId, 'b\'s app gets b\'s server span as its parent');
  assert.equal(String(atA['traceparent']).split('-')[2], aIn.spanId);
  assert.deepEqual(spans.map((s) => s.name).sort(), ['a.shop.svc.cluster.local:80/*', 'a.shop.svc.cluster.local:80/*', 'b.shop.svc.cluster.local:80/*', 'b.shop.svc.cluster.local:80/*']);
  assert.equal(webOut.scope, 'trellis-proxy');
  assert.equal(recv.contentTypes.has('application/json'), true);

  const requestId = atB.headers['x-request-id'];
  assert.deepEqual(pick(webOut.attributes, ['http.request.method', 'url.full', 'server.address', 'server.port', 'http.response.status_code', 'network.protocol.version',
    'trellis.request_id', 'trellis.upstream_cluster', 'trellis.source.workload', 'trellis.destination.workload', 'trellis.response_flags', 'trellis.source.principal', 'trellis.destination.principal']), {
    'http.request.method': 'GET', 'url.full': 'http://a/hello?x=1', 'server.address': 'a', 'server.port': 80, 'http.response.status_code': 200, 'network.protocol.version': '1.1',
    'trellis.request_id': requestId, 'trellis.upstream_cluster': 'outbound|80||a.shop.svc.cluster.local', 'trellis.source.workload': 'web-v1.shop', 'trellis.destination.workload': 'a-v1.shop',
    'trellis.response_flags': '-', 'trellis.source.principal': 'spiffe://cluster.local/ns/shop/sa/web', 'trellis.destination.principal': 'spiffe://cluster.local/ns/shop/sa/a',
  });
  assert.equal(webOut.attributes['network.peer.address'], '127.0.0.1');
  assert.deepEqual(pick(aIn.attributes, ['url.path', 'url.query', 'url.scheme', 'http.response.status_code', 'trellis.destination.workload', 'trellis.upstream_cluster', 'trellis.request_id']), {
    'url.path': '/hello', 'url.query': 'x=1', 'url.scheme': 'http', 'http.response.status_code': 200, 'trellis.destination.workload': 'a-v1.shop',
    'trellis.upstream_cluster': 'inbound|80|a.shop.svc.cluster.local', 'trellis.request_id': requestId,
  });
  assert.equal(bIn.attributes['url.path'], '/deep');
  assert.ok(spans.every((s) => s.status === 0 && s.endNs >= s.startNs), 'no error status on a 200');
  assert.deepEqual(pick(webOut.resource, ['service.name', 'service.namespace', 'service.version', 'service.instance.id', 'trellis.workload']), {
    'service.name': 'web.shop', 'service.namespace': 'shop', 'service.version': 'latest', 'service.instance.id': 'web-v1.shop', 'trellis.workload': 'web-v1.shop',
  });
  const line = await eventually(() => accessLines().find((l) => l['path'] === '/hello?x=1'), 3000, () => 'no access log line');
  assert.equal(line['trace_id'], traceId);
});

test('errors: a request that fails upstream is an error span with its response flag', async () => {
  const res = await client.call('http://127.0.0.1:1/refused');
  assert.equal(res.status, 503);
  const span = await eventually(() => recv.spans.find((s) => s.attributes['url.full'] === 'http://127.0.0.1:1/refused'), 5000, () => 'no span for the refused request');
  assert.equal(span.status, 2, 'STATUS_CODE_ERROR');
  assert.equal(span.attributes['error.type'], 'UF');
  assert.equal(span.attributes['trellis.upstream_cluster'], 'PassthroughCluster');
  assert.equal(span.name, '127.0.0.1:1/*');
});

test('0 % sampling: no spans, but the context goes on with the sampled flag off; a sampled traceparent from the app is honoured', async () => {
  configure(meshConfig(recv.port, 'defaultConfig: { tracing: { sampling: 0 } }'));
  const off = (await client.call('http://a/unsampled')).json();
  const [, unsampled, , flags] = traceparentOf(off);
  assert.equal(flags, '00');
  assert.match(unsampled!, /^[0-9a-f]{32}$/);
  assert.equal(String(atA['traceparent']).split('-')[1], unsampled, 'a\'s app saw the same trace');

  const on = (await client.call('http://a/sampled', { headers: { traceparent: `00-${TRACE}-${SPAN}-01` } })).json();
  assert.equal(traceparentOf(on)[1], TRACE);
  assert.equal(traceparentOf(on)[3], '01');
  const spans = await waitForTrace(TRACE, 4);
  assert.equal(spans.find((s) => s.kind === CLIENT && s.resource['service.name'] === 'web.shop')?.parentSpanId, SPAN, 'the app\'s span is the parent');
  // Each proxy exports in order: the sampled trace's spans came, so the unsampled request's would have too.
  assert.deepEqual(recv.trace(unsampled!), []);
});

test('B3 in, B3 out: single and multi headers carry the trace across the three hops', async () => {
  const single = (await client.call('http://a/b3', { headers: { b3: `${TRACE.slice(16)}-${SPAN}-1` } })).json();
  assert.equal(single.headers['traceparent'], undefined, 'B3 only, as it arrived');
  const [tid, sid, sampled, parent] = String(single.headers['b3']).split('-');
  assert.deepEqual([tid, sampled], [TRACE.slice(16), '1']);
  const spans = await eventually(() => {
    const t = recv.trace(`0000000000000000${TRACE.slice(16)}`);
    return t.length >= 4 ? t : undefined;
  }, 5000, () => 'no B3 trace');
  const bIn = spans.find((s) => s.resource['service.name'] === 'b.shop' && s.kind === SERVER)!;
  assert.deepEqual([sid, parent], [bIn.spanId, bIn.parentSpanId]);

  const multi = (await client.call('http://a/b3m', { headers: { 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0' } })).json();
  assert.deepEqual([multi.headers['x-b3-traceid'], multi.headers['x-b3-sampled'], multi.headers['traceparent']], [TRACE, '0', undefined]);
  assert.match(String(multi.headers['x-b3-parentspanid']), /^[0-9a-f]{16}$/);
});

test('a collector that never answers: every request still succeeds, the queue stays bounded, one log line per proxy, and a recovery line after', async () => {
  const stuck = await new OtlpReceiver().start();
  stuck.mode = 'hang';
  try {
    for (const l of Object.values(logs)) l.length = 0;
    const before = counts((await scrape(planes['a']!)).text);
    configure(meshConfig(stuck.port, 'defaultConfig: { tracing: { sampling: 100 } }'));
    const N = 300;
    const statuses: number[] = [];
    const started = Date.now();
    let next = 0;
    let maxQueue = 0;
    let loading = true;
    const sampler = (async () => {
      while (loading) {
        maxQueue = Math.max(maxQueue, counts((await scrape(planes['a']!)).text).queue);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < N && Date.now() - started < 30_000) { next++; statuses.push((await client.call('http://a/load')).status); }
    }));
    loading = false;
    await sampler;
    assert.ok(maxQueue <= tuning.maxQueueSize, `a's queue held ${maxQueue} spans`);
    assert.equal(statuses.length, N);
    assert.deepEqual([...new Set(statuses)], [200]);
    await eventually(() => (logs['a']!.length > 0 ? true : undefined), 5000, () => 'a\'s proxy logged nothing about the stuck collector');
    // Another export round passes (300 ms timeout), still one line.
    await new Promise((r) => setTimeout(r, 700));
    const at = `http://127.0.0.1:${stuck.port}/v1/traces`;
    for (const n of ['web', 'a', 'b']) {
      assert.equal(logs[n]!.length, 1, `${n}: ${logs[n]!.join(' | ')}`);
      assert.match(logs[n]![0]!, new RegExp(`^tracing: .*${at.replace(/[/.]/g, '\\$&')}`));
    }
    const now = counts((await scrape(planes['a']!)).text);
    assert.equal(now.exported - before.exported, 0);
    assert.ok(now.dropped - before.dropped > 0, 'spans were dropped');
    const accounted = now.failed - before.failed + now.dropped - before.dropped + now.queue;
    const inFlight = 2 * tuning.maxExportBatchSize;
    assert.ok(accounted <= 2 * N && accounted >= 2 * N - inFlight, `a's proxy: ${accounted} of ${2 * N} spans failed, dropped or queued`);

    stuck.mode = 'ok';
    await client.call('http://a/after');
    await eventually(() => logs['a']!.find((l) => l.includes('again')), 5000, () => `no recovery line: ${logs['a']!.join(' | ')}`);
    assert.match(logs['a']!.at(-1)!, /^tracing: exporting spans to \S+ again \(\d+ spans lost meanwhile\)$/);
  } finally {
    await stuck.close();
  }
});

test('MeshConfig: what reaches the snapshot, and what validation says', () => {
  const yaml = (spec: string) => `apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: { name: mesh }\nspec:\n${spec}`;
  const snap = (spec: string) => {
    const mesh = meshFromYaml(SERVICES + '---\n' + yaml(spec));
    return compile(mesh.config, mesh.registry, { workload: 'web-v1', namespace: 'shop' }).mesh.tracing;
  };
  const provider = `  extensionProviders:
  - name: otel
    opentelemetry:
      service: observability/otel-collector.observability.svc.cluster.local
      port: 4318
      maxTagLength: 100
      http: { path: /otlp/v1/traces, timeout: 2s, headers: [{ name: X-Tenant, value: blue }, { name: authorization, value: Bearer t }] }
  defaultProviders: { tracing: [otel] }
`;
  assert.deepEqual(snap(provider + '  defaultConfig: { tracing: { sampling: 12.5, maxPathTagLength: 64 } }\n'), {
    provider: 'otel', endpoint: 'http://otel-collector.observability.svc.cluster.local:4318/otlp/v1/traces',
    headers: { authorization: 'Bearer t', 'x-tenant': 'blue' }, timeoutMs: 2000, sampling: 12.5, maxPathTagLength: 64, maxTagLength: 100,
  });
  assert.deepEqual(snap(`  extensionProviders: [{ name: otel, opentelemetry: { service: otel.obs, port: 4318 } }]\n  defaultProviders: { tracing: [otel] }\n`), {
    provider: 'otel', endpoint: 'http://otel.obs:4318/v1/traces', headers: {}, timeoutMs: 5000, sampling: 1, maxPathTagLength: 256, maxTagLength: 256,
  }, 'Istio\'s 1 % by default');
  assert.equal(snap(provider + '  enableTracing: false\n'), undefined);
  assert.equal(snap('  defaultConfig: { tracing: { sampling: 50 } }\n'), undefined, 'no provider: no tracing');

  const diags = (spec: string) => parseYaml(yaml(spec), 'mesh.yaml').diagnostics.map((d) => `${d.level} ${d.code} ${d.field}`);
  assert.deepEqual(diags('  defaultProviders: { tracing: [nope] }\n'), ['error TRL0106 spec.defaultProviders.tracing[0]']);
  assert.deepEqual(diags('  extensionProviders: [{ name: z, zipkin: { service: zipkin, port: 9411 } }]\n  defaultProviders: { tracing: [z] }\n'),
    ['warning TRL1005 spec.extensionProviders[0].zipkin', 'warning TRL1011 spec.defaultProviders.tracing[0]']);
  const grpcDefault = parseYaml(yaml('  extensionProviders: [{ name: o, opentelemetry: { service: otel, port: 4317 } }]\n'), 'mesh.yaml').diagnostics;
  assert.deepEqual(grpcDefault.map((d) => `${d.level} ${d.code} ${d.field}`), ['warning TRL1011 spec.extensionProviders[0].opentelemetry.port']);
  assert.match(grpcDefault[0]!.message, /OTLP\/HTTP to http:\/\/otel:4317\/v1\/traces.*4318/);
  assert.deepEqual(diags('  extensionProviders: [{ name: o, opentelemetry: { service: otel, port: 4318, http: { path: v1/traces } } }]\n'), ['error TRL0106 spec.extensionProviders[0].opentelemetry.http.path']);
});

function pick(o: Readonly<Record<string, unknown>>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

function counts(text: string): { exported: number; failed: number; dropped: number; queue: number } {
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  return {
    exported: num(/^trellis_proxy_trace_spans_total\{outcome="exported"\} (\d+)/m),
    failed: num(/^trellis_proxy_trace_spans_total\{outcome="failed"\} (\d+)/m),
    dropped: num(/^trellis_proxy_trace_spans_total\{outcome="dropped"\} (\d+)/m),
    queue: num(/^trellis_proxy_trace_queue_spans (\d+)/m),
  };
}
