/**
 * Telemetry `accessLogging`: which resource decides for a workload (workload,
 * namespace, root namespace), its sides and filters, its providers; and
 * through two real data planes, a mesh-wide filter and a workload turned
 * off.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileAccessLogging } from '../../src/compile/access-logging.js';
import { meshSettings } from '../../src/compile/mesh.js';
import { eventually } from '../helpers/proxy.js';
import { meshFromYaml } from '../helpers/mesh.js';
import { parseYaml } from '../../src/api/load.js';
import { telemetryYaml, meshConfigYaml, startTwoProxies, type TwoProxies } from './two-proxies.js';

const telemetry = telemetryYaml;

const decide = (yaml: string, w: { namespace: string; labels: Record<string, string>; kind?: 'sidecar' | 'gateway' }) => {
  const m = meshFromYaml(yaml);
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  return compileAccessLogging(m.config, meshSettings(m.config), { kind: 'sidecar', ...w });
};

const WEB = { namespace: 'shop', labels: { app: 'web', version: 'v1' } };

test('the most specific Telemetry decides: the workload\'s selector, then its namespace, then the root namespace', () => {
  const mesh = telemetry('mesh', 'istio-system', '  accessLogging: [{ filter: { expression: "response.code >= 500" } }]\n');
  const ns = telemetry('shop', 'shop', '  accessLogging: [{ match: { mode: SERVER } }]\n');
  const web = telemetry('web', 'shop', '  selector: { matchLabels: { app: web } }\n  accessLogging: [{ disabled: true }]\n');
  const other = telemetry('other-ns', 'bank', '  accessLogging: [{ disabled: true }]\n');
  const onlyMesh = decide(mesh + other, WEB)!;
  assert.equal(onlyMesh.source, 'istio-system/mesh');
  assert.deepEqual(Object.keys(onlyMesh.directions).sort(), ['inbound', 'outbound']);
  assert.deepEqual(onlyMesh.directions.inbound?.filter, onlyMesh.directions.outbound?.filter);
  assert.ok(onlyMesh.directions.inbound?.filter, 'the filter is carried, parsed');
  const byNamespace = decide(mesh + ns, WEB)!;
  assert.equal(byNamespace.source, 'shop/shop');
  assert.deepEqual(byNamespace.directions, { inbound: {} }, 'SERVER: the inbound side only, every request');
  const byWorkload = decide(mesh + ns + web, WEB)!;
  assert.deepEqual([byWorkload.source, byWorkload.directions, byWorkload.file], ['shop/web', {}, ''], 'disabled: nothing logged');
  assert.equal(decide(mesh + ns + web, { namespace: 'shop', labels: { app: 'api' } })!.source, 'shop/shop', 'the selector picks its workloads only');
  const tracingOnly = telemetry('web', 'shop', '  selector: { matchLabels: { app: web } }\n  tracing: [{ randomSamplingPercentage: 5 }]\n');
  assert.equal(decide(ns + tracingOnly, WEB)?.source, 'shop/shop', 'a Telemetry without accessLogging does not decide access logs');
  assert.equal(decide(other, WEB), undefined, 'no Telemetry for this workload: MeshConfig decides');
});

test('providers: envoy is MeshConfig\'s access log; an envoyFileAccessLog provider brings its path and format; one Trellis cannot write logs nothing', () => {
  const meshConfig = `---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  accessLogFile: /var/log/mesh.log
  accessLogEncoding: TEXT
  extensionProviders:
  - { name: text-file, envoyFileAccessLog: { path: /tmp/text.log, logFormat: { text: "%RESPONSE_CODE% %REQ(:PATH)%" } } }
  - { name: json-file, envoyFileAccessLog: { path: /tmp/json.log, logFormat: { labels: { code: "%RESPONSE_CODE%", path: "%REQ(:PATH)%" } } } }
  - { name: otel, opentelemetry: { service: collector, port: 4318, http: { path: /v1/traces } } }
`;
  const withProvider = (p: string) => decide(meshConfig + telemetry('mesh', 'istio-system', `  accessLogging: [{ providers: [{ name: ${p} }] }]\n`), WEB)!;
  const envoy = withProvider('envoy');
  assert.deepEqual([envoy.file, envoy.encoding, envoy.format], ['/var/log/mesh.log', 'TEXT', undefined]);
  const text = withProvider('text-file');
  assert.deepEqual([text.file, text.encoding, text.format], ['/tmp/text.log', 'TEXT', { text: [{ op: 'RESPONSE_CODE' }, ' ', { op: 'REQ', arg: ':path' }] }]);
  const json = withProvider('json-file');
  assert.deepEqual([json.file, json.encoding, json.format], ['/tmp/json.log', 'JSON', { json: [{ key: 'code', value: [{ op: 'RESPONSE_CODE' }] }, { key: 'path', value: [{ op: 'REQ', arg: ':path' }] }] }]);
  assert.equal(withProvider('otel').file, '', 'not an access log provider');
  assert.equal(withProvider('nowhere').file, '', 'a name MeshConfig does not define');
  const unnamed = telemetry('mesh', 'istio-system', '  accessLogging: [{ filter: { expression: "response.code >= 400" } }]\n');
  assert.equal(decide(meshConfig + unnamed, WEB)!.file, '', 'no providers and no MeshConfig default: ignored, as Istio ignores it');
  const withDefault = meshConfig.replace('  extensionProviders:', '  defaultProviders: { accessLogging: [text-file] }\n  extensionProviders:');
  assert.equal(decide(withDefault + unnamed, WEB)!.file, '/tmp/text.log', 'no providers: MeshConfig defaultProviders.accessLogging');
  const gateway = decide(meshConfig + telemetry('mesh', 'istio-system', '  accessLogging: [{ match: { mode: CLIENT } }]\n'), { ...WEB, kind: 'gateway' })!;
  assert.deepEqual(gateway.directions, { gateway: {} }, 'a gateway\'s listeners are the CLIENT side');
});

test('validation: a filter expression that does not parse is an error at its field; tracing is read and said not to be acted on', () => {
  const bad = parseYaml(telemetry('mesh', 'istio-system', '  accessLogging: [{ filter: { expression: "response.code >=" } }]\n'), 'telemetry.yaml').diagnostics;
  const e = bad.find((d) => d.level === 'error');
  assert.equal(e?.code, 'TRL0106');
  assert.equal(e?.field, 'spec.accessLogging[0].filter.expression');
  assert.match(e?.message ?? '', /filter expression: .*ends after ">="/);
  assert.equal(e?.position?.line, 6, 'the line of the expression');
  const w = parseYaml(telemetry('mesh', 'istio-system', '  tracing: [{ randomSamplingPercentage: 10 }]\n'), 'telemetry.yaml').diagnostics;
  assert.deepEqual(w.map((d) => [d.code, d.field]), [['TRL1005', 'spec.tracing']]);
});

describeThroughProxies();

function describeThroughProxies(): void {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-telemetry-'));
  const file = join(dir, 'access.log');
  let p: TwoProxies;
  const lines = (): Record<string, unknown>[] =>
    (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []);
  before(async () => {
    p = await startTwoProxies({ metrics: false }, { metrics: false }, meshConfigYaml(`  accessLogFile: ${JSON.stringify(file)}\n`) + telemetry('errors-only', 'istio-system', '  accessLogging: [{ providers: [{ name: envoy }], filter: { expression: "response.code >= 500 || request.headers[\'x-audit\'] == \'yes\'" } }]\n')
      + telemetry('quiet-api', 'shop', '  selector: { matchLabels: { app: api } }\n  accessLogging: [{ providers: [{ name: envoy }], disabled: true }]\n'));
  });
  after(async () => {
    await p?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('through two sidecars: the mesh-wide filter keeps failures and audited requests, and the workload turned off logs nothing', async () => {
    assert.equal(p.caller.snapshot!.accessLogging?.source, 'istio-system/errors-only');
    assert.deepEqual(p.callee.snapshot!.accessLogging?.directions, {});
    assert.equal((await p.client.call('http://api/ok')).status, 200);
    assert.equal((await p.client.call('http://api/ok', { headers: { 'x-audit': 'yes' } })).status, 200);
    assert.equal((await p.client.call('http://api/fail')).status, 503);
    assert.equal((await p.client.call('http://api/ok?last')).status, 200);
    const got = await eventually(() => (lines().length >= 2 ? lines() : undefined), 3000, () => `${lines().length} lines`);
    // Give a line that should not be there time to show up: the log hands batches over at least every 250 ms.
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(lines().map((l) => [l['direction'], l['path'], l['response_code']]), [['outbound', '/ok', 200], ['outbound', '/fail', 503]]);
    assert.equal(got[0]!['proxy'], 'web-v1.shop', 'only the caller writes: api-v2 is turned off');
  });
}
