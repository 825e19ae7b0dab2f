/**
 * compileAuthz: which policies apply to a workload, what is resolved at
 * compile time (service accounts, trust-domain aliases, caller groups), and
 * that the result is deterministic, frozen, plain data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import { compileAuthz, type AuthzInput } from '../../src/compile/authorization.js';
import { meshSettings } from '../../src/compile/mesh.js';
import { buildAuthorizer, type AuthzRequest } from '../../src/policy/authorize.js';
import type { Workload } from '../../src/registry/types.js';
import { k8sDeployment, k8sService, meshFromFiles, meshFromYaml, type Mesh } from '../helpers/mesh.js';

const policy = (ns: string, name: string, spec: string) =>
  `---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec: ${spec}\n`;

/** shop: web (sa web), api (sa api), batch (sa api too: shares api's identity); other: tools. */
const WORKLOADS = [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'shop', 'web', { labels: { tier: 'front' } }),
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api-v1', 'shop', 'api', { labels: { group: 'payers' } }),
  k8sDeployment('batch', 'shop', 'batch', { serviceAccount: 'api' }),
  k8sDeployment('tools', 'other', 'tools', { labels: { group: 'payers' } }),
].join('---\n');

function input(m: Mesh, workload: string, extra: Partial<AuthzInput['mesh']> = {}): AuthzInput {
  const w = m.registry.workloads().find((x) => x.name === workload) as Workload;
  const s = meshSettings(m.config);
  return { policies: m.config.ofKind('AuthorizationPolicy'), workload: w, mesh: { rootNamespace: s.rootNamespace, trustDomain: s.trustDomain, ...extra }, registry: m.registry };
}

const names = (m: Mesh, workload: string) => compileAuthz(input(m, workload))?.policies.map((p) => p.name) ?? [];

test('root-namespace policies apply mesh-wide, namespace policies to their namespace, selectors narrow', () => {
  const m = meshFromYaml(WORKLOADS
    + policy('istio-system', 'mesh-all', '{ action: DENY, rules: [{ to: [{ operation: { paths: [/debug] } }] }] }')
    + policy('istio-system', 'mesh-front', '{ selector: { matchLabels: { tier: front } }, rules: [{}] }')
    + policy('shop', 'shop-all', '{ action: AUDIT, rules: [{}] }')
    + policy('shop', 'shop-api', '{ selector: { matchLabels: { app: api } }, rules: [{}] }')
    + policy('other', 'other-all', '{ rules: [{}] }'));
  assert.deepEqual(names(m, 'web-v1'), ['istio-system/mesh-all', 'istio-system/mesh-front', 'shop/shop-all']);
  assert.deepEqual(names(m, 'api-v1'), ['istio-system/mesh-all', 'shop/shop-api', 'shop/shop-all']);
  assert.deepEqual(names(m, 'tools'), ['istio-system/mesh-all', 'other/other-all']);
});

test('targetRefs narrow a policy to the workloads of the Services it names', () => {
  const m = meshFromYaml(WORKLOADS + policy('shop', 'api-only', '{ targetRefs: [{ kind: Service, group: "", name: api }], action: DENY, rules: [{}] }'));
  assert.deepEqual(names(m, 'api-v1'), ['shop/api-only']);
  assert.deepEqual(names(m, 'web-v1'), []);
  assert.equal(compileAuthz(input(m, 'web-v1')), undefined, 'no policy: undefined, everything is allowed');
});

test('short service accounts get the policy namespace; cluster.local principals stand for the mesh trust domain and its aliases', () => {
  const m = meshFromYaml(WORKLOADS + policy('shop', 'p', '{ rules: [{ from: [{ source: { principals: ["cluster.local/ns/shop/sa/web", "other.example/ns/x/sa/y", "*/ns/z/sa/w"] } }] }] }'));
  const withSa = meshFromYaml(WORKLOADS + policy('shop', 'p', '{ rules: [{ from: [{ source: { serviceAccounts: [web] } }] }] }'));
  assert.deepEqual(compileAuthz(input(withSa, 'api-v1'))?.policies[0]?.rules[0]?.from?.[0]?.serviceAccounts, ['shop/web']);
  const src = compileAuthz(input(m, 'api-v1', { trustDomain: 'bank.example', trustDomainAliases: ['old.example'] }))?.policies[0]?.rules[0]?.from?.[0];
  assert.deepEqual(src?.principals, ['bank.example/ns/shop/sa/web', 'old.example/ns/shop/sa/web', 'other.example/ns/x/sa/y', '*/ns/z/sa/w']);
  const decide = buildAuthorizer(compileAuthz(input(m, 'api-v1', { trustDomain: 'bank.example' })));
  const call = (principal: string): boolean => decide({ tcp: false, principal, sourceIp: '10.0.0.1', destinationPort: 9000 }).allowed;
  assert.equal(call('bank.example/ns/shop/sa/web'), true);
  assert.equal(call('cluster.local/ns/shop/sa/web'), false, 'the literal cluster.local is not this mesh\'s trust domain');
});

test('a caller group grants the identities only its workloads use, and fails closed on a shared one', () => {
  // group=payers: api-v1 (sa api, shared with batch, outside the group) and tools (sa tools in other).
  const m = meshFromYaml(WORKLOADS + policy('shop', 'payers', '{ selector: { matchLabels: { app: web } }, rules: [{ from: [{ source: { labels: { group: payers } } }] }] }'));
  const authz = compileAuthz(input(m, 'web-v1'))!;
  assert.deepEqual(authz.policies[0]?.rules[0]?.from?.[0]?.callers, { labels: { group: 'payers' }, principals: ['cluster.local/ns/other/sa/tools'] });
  assert.equal(authz.notes.length, 1);
  const note = authz.notes[0]!;
  assert.equal(note.kind, 'caller-identity-shared');
  assert.equal(note.resource, 'AuthorizationPolicy shop/payers');
  assert.equal(note.field, 'spec.rules[0].from[0].source.labels');
  assert.deepEqual(note.identities, ['spiffe://cluster.local/ns/shop/sa/api']);
  assert.match(note.message, /batch\.shop/);
  const decide = buildAuthorizer(authz);
  const call = (principal?: string) => decide({ tcp: false, sourceIp: '10.0.0.1', destinationPort: 8080, ...(principal ? { principal } : {}) }).allowed;
  assert.equal(call('cluster.local/ns/other/sa/tools'), true);
  assert.equal(call('cluster.local/ns/shop/sa/api'), false, 'batch could be the caller: not granted');
  assert.equal(call(), false, 'plaintext is never in a group');
});

test('caller groups restrict inclusively: a DENY on a group, or an ALLOW on notLabels, counts shared identities in', () => {
  const m = meshFromYaml(WORKLOADS
    + policy('shop', 'deny-payers', '{ selector: { matchLabels: { app: web } }, action: DENY, rules: [{ from: [{ source: { labels: { group: payers } } }] }] }')
    + policy('shop', 'not-payers', '{ selector: { matchLabels: { app: web } }, rules: [{ from: [{ source: { notLabels: { group: payers } } }] }] }'));
  const authz = compileAuthz(input(m, 'web-v1'))!;
  const [deny, allow] = authz.policies;
  assert.deepEqual(deny?.rules[0]?.from?.[0]?.callers?.principals, ['cluster.local/ns/other/sa/tools', 'cluster.local/ns/shop/sa/api']);
  assert.deepEqual(allow?.rules[0]?.from?.[0]?.notCallers?.principals, ['cluster.local/ns/other/sa/tools', 'cluster.local/ns/shop/sa/api']);
  assert.deepEqual(authz.notes.map((n) => [n.kind, n.resource]), [['caller-identity-shared', 'AuthorizationPolicy shop/deny-payers'], ['caller-identity-shared', 'AuthorizationPolicy shop/not-payers']]);
  const decide = buildAuthorizer(authz);
  const call = (principal: string) => decide({ tcp: false, principal, sourceIp: '10.0.0.1', destinationPort: 8080 }).allowed;
  assert.equal(call('cluster.local/ns/shop/sa/api'), false);
  assert.equal(call('cluster.local/ns/shop/sa/web'), true);
});

test('a caller group no workload carries matches nobody, and is noted', () => {
  const m = meshFromYaml(WORKLOADS + policy('shop', 'ghosts', '{ rules: [{ from: [{ source: { labels: { group: ghosts } } }] }] }'));
  const authz = compileAuthz(input(m, 'web-v1'))!;
  assert.deepEqual(authz.policies[0]?.rules[0]?.from?.[0]?.callers?.principals, []);
  assert.deepEqual(authz.notes.map((n) => n.kind), ['caller-group-empty']);
  assert.equal(buildAuthorizer(authz)({ tcp: false, principal: 'cluster.local/ns/shop/sa/web', sourceIp: '10.0.0.1', destinationPort: 80 }).allowed, false);
});

test('the bank example: only the fundsTransfer group may POST /debit and /credit to debit-credit', () => {
  const m = meshFromFiles('examples/bank');
  const authz = compileAuthz(input(m, 'debit-credit'))!;
  assert.deepEqual(authz.notes, []);
  const decide = buildAuthorizer(authz);
  const call = (sa: string, method: string, path: string) => decide({ tcp: false, principal: `bank.example/ns/bank/sa/${sa}`, sourceIp: '10.0.0.1', destinationPort: 8080, method, path }).allowed;
  assert.equal(call('funds-transfer', 'POST', '/debit'), true);
  assert.equal(call('funds-transfer', 'POST', '/credit'), true);
  assert.equal(call('funds-transfer', 'GET', '/debit'), false);
  assert.equal(call('frontend', 'POST', '/debit'), false);
  assert.equal(compileAuthz(input(m, 'frontend')), undefined, 'the policy selects debit-credit only');
});

test('the result is frozen plain data, equal for equal input whatever the load order', () => {
  const docs = [
    policy('istio-system', 'b', '{ action: DENY, rules: [{ to: [{ operation: { paths: [/x] } }] }] }'),
    policy('shop', 'a', '{ rules: [{ from: [{ source: { labels: { group: payers } } }] }] }'),
    policy('shop', 'c', '{ action: AUDIT, rules: [{}] }'),
    policy('shop', 'd', '{ action: DENY, rules: [{}] }'),
  ];
  const one = meshFromYaml(WORKLOADS + docs.join(''));
  const two = meshFromYaml(WORKLOADS + [...docs].reverse().join(''));
  const a = compileAuthz(input(one, 'web-v1'))!;
  const b = compileAuthz(input({ ...two, config: ConfigSet.of([...two.config.resources].reverse()) }, 'web-v1'))!;
  assert.deepEqual(a, b);
  assert.deepEqual(a.policies.map((p) => `${p.action} ${p.name}`), ['DENY istio-system/b', 'DENY shop/d', 'ALLOW shop/a', 'AUDIT shop/c']);
  assert.deepEqual(JSON.parse(JSON.stringify(a)), a, 'JSON round trip');
  const frozen = (v: unknown): boolean => v === null || typeof v !== 'object' || (Object.isFrozen(v) && Object.values(v).every(frozen));
  assert.ok(frozen(a), 'deeply frozen');
  const probe: AuthzRequest = { tcp: false, sourceIp: '10.0.0.1', destinationPort: 80, path: '/x' };
  assert.equal(buildAuthorizer(a)(probe).policy, 'istio-system/b');
});
