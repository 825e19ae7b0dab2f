/**
 * Telemetry `metrics` overrides: which standard metrics each side of a
 * workload reports (the levels adding up as Istio merges them, modes,
 * providers), what validation still calls not enforced, and through two
 * real data planes, series gone from /metrics for the sides turned off.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileMetricsTelemetry } from '../../src/compile/telemetry-metrics.js';
import { meshSettings } from '../../src/compile/mesh.js';
import { compile } from '../../src/compile/index.js';
import { parseYaml } from '../../src/api/load.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';
import { parsePrometheusText, select } from './prom-text.js';
import { telemetryYaml, scrape, startTwoProxies, type TwoProxies } from './two-proxies.js';

const telemetry = telemetryYaml;

const off = (metric: string, mode: string, disabled = true) => `    - { match: { metric: ${metric}, mode: ${mode} }, disabled: ${disabled} }\n`;
const metrics = (overrides: string, providers = '') => `  metrics:\n  - ${providers ? `providers: [${providers}]\n    ` : ''}overrides:\n${overrides}`;

const WEB = { namespace: 'shop', labels: { app: 'web', version: 'v1' } };

const decide = (yaml: string, w = WEB) => {
  const m = meshFromYaml(yaml);
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  return compileMetricsTelemetry(m.config, meshSettings(m.config), w);
};

test('overrides add up from the root namespace to the namespace to the workload; the last word on a metric and side stands', () => {
  const mesh = telemetry('mesh', 'istio-system', metrics(off('ALL_METRICS', 'SERVER')));
  const ns = telemetry('shop', 'shop', metrics(off('REQUEST_SIZE', 'CLIENT') + off('RESPONSE_SIZE', 'CLIENT_AND_SERVER')));
  const web = telemetry('web', 'shop', '  selector: { matchLabels: { app: web } }\n' + metrics(off('ALL_METRICS', 'SERVER', false) + off('REQUEST_DURATION', 'SERVER')));
  assert.deepEqual(decide(mesh), {
    sources: ['istio-system/mesh'],
    disabled: { client: [], server: ['REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES'] },
  }, 'ALL_METRICS: every metric a proxy reports; SERVER: the inbound side only');
  const both = decide(mesh + ns)!;
  assert.deepEqual(both.sources, ['istio-system/mesh', 'shop/shop']);
  assert.deepEqual(both.disabled.client, ['REQUEST_SIZE', 'RESPONSE_SIZE']);
  assert.equal(both.disabled.server.length, 8);
  const all = decide(mesh + ns + web)!;
  assert.deepEqual(all.sources, ['istio-system/mesh', 'shop/shop', 'shop/web'], 'least specific first');
  assert.deepEqual(all.disabled, { client: ['REQUEST_SIZE', 'RESPONSE_SIZE'], server: ['REQUEST_DURATION'] }, 'the workload turned the server side on again, but for durations');
  assert.deepEqual(decide(mesh + ns + web, { namespace: 'shop', labels: { app: 'api', version: 'v1' } })?.sources, ['istio-system/mesh', 'shop/shop'], 'the selector picks its workloads only');
  assert.equal(decide(telemetry('other', 'bank', metrics(off('ALL_METRICS', 'CLIENT_AND_SERVER')))), undefined, 'another namespace\'s Telemetry: nothing turned off');
  assert.equal(decide(telemetry('back-on', 'shop', metrics(off('REQUEST_COUNT', 'CLIENT') + off('REQUEST_COUNT', 'CLIENT', false)))), undefined, 'off then on again: nothing turned off, no setting in the snapshot');
});

test('defaults and providers: no match turns everything off on both sides; an entry for another provider changes nothing', () => {
  const bare = decide(telemetry('mesh', 'istio-system', '  metrics:\n  - overrides: [{ disabled: true }]\n'))!;
  assert.equal(bare.disabled.client.length, 8);
  assert.equal(bare.disabled.server.length, 8);
  assert.equal(decide(telemetry('mesh', 'istio-system', metrics(off('ALL_METRICS', 'CLIENT'), '{ name: stackdriver }'))), undefined);
  assert.deepEqual(decide(telemetry('mesh', 'istio-system', metrics(off('REQUEST_COUNT', 'CLIENT'), '{ name: stackdriver }, { name: prometheus }')))?.disabled.client, ['REQUEST_COUNT']);
  const meshConfig = `---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  defaultProviders: { metrics: [otel] }
  extensionProviders:
  - { name: otel, opentelemetry: { service: collector, port: 4317 } }
  - { name: prom, prometheus: {} }
`;
  assert.equal(decide(meshConfig + telemetry('mesh', 'istio-system', metrics(off('ALL_METRICS', 'CLIENT')))), undefined, 'no providers named: MeshConfig\'s default, here not prometheus');
  assert.deepEqual(decide(meshConfig + telemetry('mesh', 'istio-system', metrics(off('REQUEST_COUNT', 'CLIENT'), '{ name: prom }')))?.disabled.client, ['REQUEST_COUNT'], 'an extension provider of kind prometheus is the proxy\'s /metrics too');
  assert.equal(decide(telemetry('mesh', 'istio-system', metrics(off('GRPC_REQUEST_MESSAGES', 'CLIENT')))), undefined, 'a metric Trellis does not report');
  assert.equal(decide(telemetry('mesh', 'istio-system', '  metrics:\n  - overrides: [{ match: { customMetric: my_metric }, disabled: true }]\n')), undefined, 'a custom metric');
});

test('validation: disabled overrides are enforced (no TRL1005); tag overrides and the reporting interval still warn', () => {
  const m = parseYaml(telemetry('mesh', 'istio-system', `  metrics:
  - reportingInterval: 10s
    overrides:
    - { match: { metric: REQUEST_COUNT }, disabled: true }
    - { match: { metric: REQUEST_COUNT }, tagOverrides: { request_protocol: { operation: REMOVE } } }
`), 'telemetry.yaml');
  const fields = m.diagnostics.filter((d) => d.code === 'TRL1005').map((d) => d.field).sort();
  assert.deepEqual(fields, ['spec.metrics[0].overrides[1].tagOverrides', 'spec.metrics[0].reportingInterval']);
});

test('the snapshot carries the setting, and a change of it is a new snapshot version', () => {
  const t = telemetry('api', 'shop', '  selector: { matchLabels: { app: api } }\n' + metrics(off('ALL_METRICS', 'SERVER')));
  const plain = meshFromYaml(TWO_SERVICES);
  const withT = meshFromYaml(TWO_SERVICES + t);
  const a = compile(plain.config, plain.registry, { workload: 'api-v2', namespace: 'shop' });
  const b = compile(withT.config, withT.registry, { workload: 'api-v2', namespace: 'shop' });
  assert.equal(a.metrics, undefined);
  assert.deepEqual(b.metrics?.sources, ['shop/api']);
  assert.notEqual(a.version, b.version);
  assert.equal(compile(withT.config, withT.registry, { workload: 'web-v1', namespace: 'shop' }).metrics, undefined, 'the caller is not selected');
});

describeLive();

function describeLive(): void {
  let p: TwoProxies;
  before(async () => {
    // The callee (api) reports no server-side metric at all; the caller (web) no request count on its client side.
    const yaml = telemetry('api', 'shop', '  selector: { matchLabels: { app: api } }\n' + metrics(off('ALL_METRICS', 'SERVER')))
      + telemetry('web', 'shop', '  selector: { matchLabels: { app: web } }\n' + metrics(off('REQUEST_COUNT', 'CLIENT')));
    p = await startTwoProxies({}, {}, yaml);
    for (let i = 0; i < 3; i++) assert.equal((await p.client.call('http://api/ok')).status, 200);
  });
  after(async () => { await p?.close(); });

  test('through two data planes: a side turned off shows none of its series; the others count as before', async () => {
    const caller = parsePrometheusText((await scrape(p.caller)).text);
    const callee = parsePrometheusText((await scrape(p.callee)).text);
    assert.equal(select(caller.get('trellis_requests_total'), { reporter: 'source' }).length, 0, 'the caller\'s request count is off');
    const durations = select(caller.get('trellis_request_duration_milliseconds'), { reporter: 'source', response_code: '200' });
    assert.deepEqual(durations.filter((s) => s.name.endsWith('_count')).map((s) => s.value), [3], 'its durations are still counted: 3 requests');
    for (const family of ['trellis_requests_total', 'trellis_request_duration_milliseconds', 'trellis_request_bytes', 'trellis_response_bytes']) {
      assert.equal(select(callee.get(family), { reporter: 'destination' }).length, 0, `the callee reports no ${family}`);
    }
    // The proxy's own counters are not service metrics: they go on.
    assert.ok(select(callee.get('trellis_proxy_requests_total'), { direction: 'inbound' }).some((s) => s.value === 3));
  });
}
