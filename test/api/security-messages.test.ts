/**
 * The zero-trust messages come from the one catalogue (src/api/messages.ts):
 * the key-set diagnostics of request authentication (TRL1301–1303) and the
 * notes compileAuthz leaves for the analyzer (TRL1304–1306) carry the
 * catalogue's code, level and rendered template, with the resource and field
 * they are about.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import { messages, render } from '../../src/api/messages.js';
import { compileAuthz } from '../../src/compile/authorization.js';
import { meshSettings } from '../../src/compile/mesh.js';
import { requestAuthnDiagnostics } from '../../src/compile/request-authentication.js';
import type { Workload } from '../../src/registry/types.js';
import { k8sDeployment, k8sService, meshFromYaml, resources } from '../helpers/mesh.js';

const ra = (name: string, rule: string) =>
  `---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: { name: ${name}, namespace: shop }\nspec:\n  jwtRules: [${rule}]\n`;
const ap = (name: string, spec: string) =>
  `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: shop }\nspec: ${spec}\n`;

test('request authentication key-set diagnostics are the catalogue entries TRL1301, TRL1302 and TRL1303', () => {
  const uri = 'https://issuer.example.com/jwks.json';
  const config = ConfigSet.of(resources(
    ra('fetched', `{ issuer: a, jwksUri: "${uri}" }`) + ra('inline', `{ issuer: b, jwks: '{"keys":[]}' }`) + ra('none', '{ issuer: c }'),
    'authn.yaml',
  ));
  const ds = requestAuthnDiagnostics(config, new Map([[uri, { error: 'connect ECONNREFUSED' }]]));
  assert.deepEqual(ds.map((d) => [d.code, d.level, d.resource, d.field]), [
    ['TRL1301', 'warning', 'RequestAuthentication shop/fetched', 'spec.jwtRules[0].jwksUri'],
    ['TRL1302', 'warning', 'RequestAuthentication shop/inline', 'spec.jwtRules[0].jwks'],
    ['TRL1303', 'warning', 'RequestAuthentication shop/none', 'spec.jwtRules[0]'],
  ]);
  assert.equal(ds[0]!.message, render(messages.JwksUnavailable.template, { issuer: 'a', uri, detail: 'connect ECONNREFUSED' }));
  assert.equal(ds[1]!.message, render(messages.JwksUnusable.template, { issuer: 'b', detail: 'jwks lists no usable key' }));
  assert.equal(ds[2]!.message, render(messages.JwksSourceMissing.template, { issuer: 'c' }));
  for (const d of ds) assert.equal(d.position?.file, 'authn.yaml', `${d.code} points into the file`);
  assert.ok(Object.isFrozen(ds[0]));
});

/** shop: web, api (group payers, sa api) and batch (sa api too, outside the group). */
const WORKLOADS = [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'shop', 'web'),
  k8sDeployment('api-v1', 'shop', 'api', { labels: { group: 'payers' } }),
  k8sDeployment('batch', 'shop', 'batch', { serviceAccount: 'api' }),
].join('---\n');

function notesFor(yaml: string) {
  const m = meshFromYaml(WORKLOADS + yaml);
  const w = m.registry.workloads().find((x) => x.name === 'web-v1') as Workload;
  const s = meshSettings(m.config);
  const authz = compileAuthz({ policies: m.config.ofKind('AuthorizationPolicy'), workload: w, mesh: { rootNamespace: s.rootNamespace, trustDomain: s.trustDomain }, registry: m.registry });
  return authz?.notes ?? [];
}

test('compileAuthz notes carry their catalogue code: TRL1304 shared identity, TRL1305 empty group, TRL1306 CUSTOM', () => {
  const notes = notesFor(
    ap('payers', '{ rules: [{ from: [{ source: { labels: { group: payers } } }] }] }')
    + ap('ghosts', '{ rules: [{ from: [{ source: { notLabels: { group: ghosts } } }] }] }')
    + ap('ext', '{ action: CUSTOM, provider: { name: opa }, rules: [{}] }'),
  );
  assert.deepEqual(notes.map((n) => [n.kind, n.code, n.resource, n.field]), [
    ['custom-not-supported', 'TRL1306', 'AuthorizationPolicy shop/ext', 'spec.action'],
    ['caller-group-empty', 'TRL1305', 'AuthorizationPolicy shop/ghosts', 'spec.rules[0].from[0].source.notLabels'],
    ['caller-identity-shared', 'TRL1304', 'AuthorizationPolicy shop/payers', 'spec.rules[0].from[0].source.labels'],
  ]);
  const [custom, empty, shared] = notes;
  assert.equal(custom!.message, render(messages.CustomActionNotSupported.template, { provider: 'opa' }));
  assert.equal(empty!.message, render(messages.CallerGroupEmpty.template, { labels: 'group=ghosts' }));
  assert.equal(shared!.message, render(messages.CallerIdentityShared.template, {
    labels: 'group=payers',
    shared: 'spiffe://cluster.local/ns/shop/sa/api (also batch.shop)',
    effect: 'the group does not grant it (fail closed)',
  }));
  assert.deepEqual(shared!.identities, ['spiffe://cluster.local/ns/shop/sa/api']);
});

test('a caller group that restricts counts a shared identity in, and its note says so', () => {
  const [n] = notesFor(ap('deny-payers', '{ action: DENY, rules: [{ from: [{ source: { labels: { group: payers } } }] }] }'));
  assert.equal(n?.code, 'TRL1304');
  assert.match(n!.message, /this DENY policy treats callers with it as members of the group/);
});
