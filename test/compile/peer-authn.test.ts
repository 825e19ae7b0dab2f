/**
 * PeerAuthentication → each inbound port's mTLS mode, with Istio's
 * precedence: port-level, workload selector, namespace, mesh-wide (root
 * namespace), PERMISSIVE; UNSET passes to the next level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import { compile, createCompiler } from '../../src/compile/index.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';

const pa = (name: string, namespace: string, spec: string) => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${namespace} }
spec: ${spec}
`;

const modeOf = (yaml: string, workload: string) => {
  const m = meshFromYaml(TWO_SERVICES + yaml);
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  const s = compile(m.config, m.registry, { workload, namespace: 'shop' });
  assert.equal(s.inbound.length, 1);
  return s.inbound[0]!.mtls;
};

test('no PeerAuthentication: PERMISSIVE (Istio\'s default)', () => {
  assert.equal(modeOf('', 'api-v1'), 'PERMISSIVE');
});

test('mesh-wide STRICT (root namespace, no selector) applies to every namespace', () => {
  const mesh = pa('default', 'istio-system', '{ mtls: { mode: STRICT } }');
  assert.equal(modeOf(mesh, 'api-v1'), 'STRICT');
  assert.equal(modeOf(mesh, 'web-v1'), 'STRICT');
});

test('a namespace policy beats the mesh-wide one; a workload policy beats the namespace', () => {
  const yaml = pa('default', 'istio-system', '{ mtls: { mode: STRICT } }') +
    pa('shop', 'shop', '{ mtls: { mode: PERMISSIVE } }') +
    pa('api-v2', 'shop', '{ selector: { matchLabels: { version: v2 } }, mtls: { mode: DISABLE } }');
  assert.equal(modeOf(yaml, 'api-v1'), 'PERMISSIVE');
  assert.equal(modeOf(yaml, 'api-v2'), 'DISABLE');
});

test('port-level mTLS (keyed by the workload port) beats the workload policy; UNSET passes to the next level', () => {
  const ns = pa('shop', 'shop', '{ mtls: { mode: DISABLE } }');
  assert.equal(modeOf(ns + pa('api', 'shop', '{ selector: { matchLabels: { app: api } }, mtls: { mode: PERMISSIVE }, portLevelMtls: { "9000": { mode: STRICT } } }'), 'api-v1'), 'STRICT');
  // The service port (80) is not the workload port: the port-level setting does not apply.
  assert.equal(modeOf(ns + pa('api', 'shop', '{ selector: { matchLabels: { app: api } }, mtls: { mode: PERMISSIVE }, portLevelMtls: { "80": { mode: STRICT } } }'), 'api-v1'), 'PERMISSIVE');
  assert.equal(modeOf(ns + pa('api', 'shop', '{ selector: { matchLabels: { app: api } }, mtls: { mode: UNSET } }'), 'api-v1'), 'DISABLE');
  assert.equal(modeOf(ns + pa('api', 'shop', '{ selector: { matchLabels: { app: api } }, portLevelMtls: { "9000": { mode: UNSET } } }'), 'api-v1'), 'DISABLE');
});

test('a policy in another namespace, or a selector that does not match, changes nothing', () => {
  assert.equal(modeOf(pa('other', 'elsewhere', '{ mtls: { mode: STRICT } }'), 'api-v1'), 'PERMISSIVE');
  assert.equal(modeOf(pa('v3', 'shop', '{ selector: { matchLabels: { version: v3 } }, mtls: { mode: STRICT } }'), 'api-v1'), 'PERMISSIVE');
});

test('one compiler: changing only a PeerAuthentication changes the inbound mode and the snapshot version', () => {
  const a = meshFromYaml(TWO_SERVICES + pa('shop', 'shop', '{ mtls: { mode: PERMISSIVE } }'));
  const b = ConfigSet.of([...a.config.resources.filter((r) => r.kind !== 'PeerAuthentication'), ...meshFromYaml(pa('shop', 'shop', '{ mtls: { mode: STRICT } }')).config.ofKind('PeerAuthentication')]);
  const c = createCompiler();
  const before = c.compile(a.config, a.registry, { workload: 'api-v1', namespace: 'shop' });
  const after = c.compile(b, a.registry, { workload: 'api-v1', namespace: 'shop' });
  assert.deepEqual([before.inbound[0]!.mtls, after.inbound[0]!.mtls], ['PERMISSIVE', 'STRICT']);
  assert.notEqual(before.version, after.version);
});

/** The caller's TLS mode to each cluster of the api service, from web-v1's snapshot. */
const upstreamModes = (yaml: string): Record<string, string> => {
  const m = meshFromYaml(TWO_SERVICES + yaml);
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  const s = compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' });
  return Object.fromEntries(s.clusters.filter((c) => c.service.startsWith('api.')).map((c) => [c.subset ?? '-', c.tls.mode]));
};

test('auto mTLS sends plaintext to a cluster whose every endpoint is DISABLE, as Istio infers from the destination\'s policy; mixed clusters keep mTLS', () => {
  assert.deepEqual(upstreamModes(''), { '-': 'ISTIO_MUTUAL', v1: 'ISTIO_MUTUAL', v2: 'ISTIO_MUTUAL' });
  // Only v2 is DISABLE: its subset goes plaintext, the whole service (v1 and v2 together) stays mTLS.
  assert.deepEqual(upstreamModes(pa('api-v2', 'shop', '{ selector: { matchLabels: { version: v2 } }, mtls: { mode: DISABLE } }')), { '-': 'ISTIO_MUTUAL', v1: 'ISTIO_MUTUAL', v2: 'DISABLE' });
  // The whole namespace DISABLE: every cluster plaintext.
  assert.deepEqual(upstreamModes(pa('shop', 'shop', '{ mtls: { mode: DISABLE } }')), { '-': 'DISABLE', v1: 'DISABLE', v2: 'DISABLE' });
  // Port-level: DISABLE on the workload port (9000) counts; on another port it does not.
  assert.deepEqual(upstreamModes(pa('api', 'shop', '{ selector: { matchLabels: { app: api } }, portLevelMtls: { "9000": { mode: DISABLE } } }'))['-'], 'DISABLE');
  assert.deepEqual(upstreamModes(pa('api', 'shop', '{ selector: { matchLabels: { app: api } }, portLevelMtls: { "80": { mode: DISABLE } } }'))['-'], 'ISTIO_MUTUAL');
});

test('a DestinationRule tls mode wins over what auto mTLS infers from a DISABLE PeerAuthentication', () => {
  const dr = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api-tls, namespace: shop }
spec:
  host: api
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
`;
  // The shop DestinationRule of TWO_SERVICES names the same host; a second one in the same namespace is ignored by Istio, so replace it.
  const m = meshFromYaml(TWO_SERVICES.replace(/---\napiVersion: networking.istio.io\/v1\nkind: DestinationRule[\s\S]*$/, '') + dr + pa('shop', 'shop', '{ mtls: { mode: DISABLE } }'));
  const s = compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' });
  assert.equal(s.clusters.find((c) => c.service.startsWith('api.') && c.subset === undefined)!.tls.mode, 'ISTIO_MUTUAL');
});
