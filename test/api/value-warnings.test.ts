/**
 * Value-based warnings (TRL1011): a field Trellis enforces, set to a value it
 * does not act on yet, is accepted with a warning at the value's position.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Diagnostic } from '../../src/api/diagnostic.js';
import { Gateway } from '../../src/api/kinds/gateway.js';
import { parseYaml } from '../../src/api/load.js';

const valueWarnings = (ds: readonly Diagnostic[]) => ds.filter((d) => d.code === 'TRL1011');

/** A Gateway with one server on line 6; `tls` is the server's tls mapping, written on line 9. */
function gateway(protocol: string, tls: string): string {
  return [
    'apiVersion: networking.istio.io/v1',
    'kind: Gateway',
    'metadata: {name: edge, namespace: ingress}',
    'spec:',
    '  servers:',
    `  - port: {number: 443, name: p, protocol: ${protocol}}`,
    '    hosts: ["*.example.com"]',
    '    tls:',
    `      ${tls}`,
  ].join('\n');
}

const unenforcedModes: [mode: string, tls: string][] = [
  ['SIMPLE', '{mode: SIMPLE, credentialName: edge-cert}'],
  ['MUTUAL', '{mode: MUTUAL, credentialName: edge-cert}'],
  ['PASSTHROUGH', '{mode: PASSTHROUGH}'],
  ['AUTO_PASSTHROUGH', '{mode: AUTO_PASSTHROUGH}'],
  ['ISTIO_MUTUAL', '{mode: ISTIO_MUTUAL}'],
  ['OPTIONAL_MUTUAL', '{mode: OPTIONAL_MUTUAL, credentialName: edge-cert}'],
];

for (const [mode, tls] of unenforcedModes) {
  test(`a Gateway server in TLS mode ${mode} loads with TRL1011 at the mode's value`, () => {
    const r = parseYaml(gateway('TLS', tls), 'gw.yaml');
    assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error'), []);
    assert.equal(r.resources.length, 1, 'the Gateway is kept');
    const [d, ...more] = valueWarnings(r.diagnostics);
    assert.deepEqual(more, []);
    assert.ok(d);
    assert.equal(d.level, 'warning');
    assert.equal(d.field, 'spec.servers[0].tls.mode');
    assert.equal(d.resource, 'Gateway ingress/edge');
    assert.deepEqual(d.position, { file: 'gw.yaml', line: 9, col: 14 });
    assert.match(d.message, new RegExp(`^value "${mode}" of "spec\\.servers\\[0\\]\\.tls\\.mode" is accepted but not yet enforced: Trellis gateways do not terminate or pass through TLS yet, so this server is not served`));
  });
}

test('an HTTPS server in SIMPLE or MUTUAL mode is warned about too: gateways do not terminate TLS yet', () => {
  for (const tls of ['{mode: SIMPLE, credentialName: c}', '{mode: MUTUAL, credentialName: c}']) {
    const r = parseYaml(gateway('HTTPS', tls), 'gw.yaml');
    assert.deepEqual(r.diagnostics.map((d) => [d.code, d.field]), [['TRL1011', 'spec.servers[0].tls.mode']], tls);
  }
});

test('a plain HTTP server whose tls only redirects is not warned about its mode', () => {
  const r = parseYaml(gateway('HTTP', '{httpsRedirect: true, mode: PASSTHROUGH}'), 'gw.yaml');
  assert.deepEqual(r.diagnostics, []);
});

test('the warnings hook is pure: it reads the body and gives the same answer twice', () => {
  const r = parseYaml(gateway('TLS', '{mode: PASSTHROUGH}'), 'gw.yaml');
  const body = r.resources[0]!.body as Parameters<NonNullable<typeof Gateway.warnings>>[0];
  const first = Gateway.warnings!(body);
  assert.deepEqual(first.map((w) => w.path), [['spec', 'servers', 0, 'tls', 'mode']]);
  assert.deepEqual(Gateway.warnings!(body), first);
});

test('a document with an error gets no TRL1011: the hook runs only after a clean parse', () => {
  const r = parseYaml(gateway('TLS', '{mode: PASSTHROUGH, credentialNames: [a, b, c]}'), 'gw.yaml');
  assert.deepEqual(r.diagnostics.map((d) => [d.code, d.field]), [['TRL0106', 'spec.servers[0].tls.credentialNames']]);
});

/** An AuthorizationPolicy; its `action` is on line 5 and its first condition's key on line 9. */
function policy(action: string, key: string): string {
  return [
    'apiVersion: security.istio.io/v1',
    'kind: AuthorizationPolicy',
    'metadata: {name: audit-admin, namespace: bank}',
    'spec:',
    `  action: ${action}`,
    '  rules:',
    '  - to: [{operation: {paths: ["/admin/*"]}}]',
    '    when:',
    `    - key: ${key}`,
    '      values: ["x"]',
  ].join('\n');
}

test('an AUDIT AuthorizationPolicy loads with TRL1011 at spec.action', () => {
  const r = parseYaml(policy('AUDIT', 'request.headers[x-user]'), 'authz.yaml');
  assert.equal(r.resources.length, 1);
  const ds = valueWarnings(r.diagnostics);
  assert.deepEqual(ds.map((d) => [d.level, d.field, d.position]), [['warning', 'spec.action', { file: 'authz.yaml', line: 5, col: 11 }]]);
  assert.match(ds[0]!.message, /^value "AUDIT" of "spec\.action" is accepted but not yet enforced: .*audit logging/);
});

test('ALLOW and DENY actions carry no TRL1011 (CUSTOM does: kinds-security.test.ts)', () => {
  assert.deepEqual(valueWarnings(parseYaml(policy('ALLOW', 'request.headers[x-user]'), 'authz.yaml').diagnostics), []);
  assert.deepEqual(valueWarnings(parseYaml(policy('DENY', 'request.headers[x-user]'), 'authz.yaml').diagnostics), []);
});

test('a condition on experimental.envoy.filters.* loads with TRL1011 saying Trellis fails closed', () => {
  const r = parseYaml(policy('ALLOW', 'experimental.envoy.filters.network.mysql_proxy[db.table]'), 'authz.yaml');
  assert.equal(r.resources.length, 1);
  const ds = valueWarnings(r.diagnostics);
  assert.deepEqual(ds.map((d) => [d.level, d.resource, d.field, d.position]), [
    ['warning', 'AuthorizationPolicy bank/audit-admin', 'spec.rules[0].when[0].key', { file: 'authz.yaml', line: 9, col: 12 }],
  ]);
  assert.match(ds[0]!.message, /^value "experimental\.envoy\.filters\.network\.mysql_proxy\[db\.table\]" of "spec\.rules\[0\]\.when\[0\]\.key" is accepted but not yet enforced: /);
  assert.match(ds[0]!.message, /cannot evaluate/);
  assert.match(ds[0]!.message, /fails closed: the compiler denies/);
});

test('AUDIT with an Envoy filter condition gets both warnings, in document order', () => {
  const r = parseYaml(policy('AUDIT', 'experimental.envoy.filters.http.x[y]'), 'authz.yaml');
  assert.deepEqual(valueWarnings(r.diagnostics).map((d) => d.field), ['spec.action', 'spec.rules[0].when[0].key']);
});
