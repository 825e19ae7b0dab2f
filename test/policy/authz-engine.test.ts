/**
 * The authorization engine, rule by rule: policies written as YAML, loaded by
 * the real loader, compiled for a workload and decided by the authorizer the
 * proxy uses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResourceOf } from '../../src/api/config-set.js';
import { parseYaml } from '../../src/api/load.js';
import { compileAuthz } from '../../src/compile/authorization.js';
import { buildAuthorizer, type AuthzDecision, type AuthzRequest } from '../../src/policy/authorize.js';
import { createRegistry } from '../../src/registry/registry.js';

const WORKLOAD = { namespace: 'foo', labels: { app: 'httpbin' } };
const MESH = { rootNamespace: 'istio-system', trustDomain: 'cluster.local' };
const REGISTRY = createRegistry([]).registry;

/** AuthorizationPolicy documents in namespace foo: `name: spec-yaml` pairs, spec given as flow YAML. */
function policies(...specs: [name: string, spec: string][]): ResourceOf<'AuthorizationPolicy'>[] {
  const yaml = specs.map(([name, spec]) => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: foo }\nspec: ${spec}\n`).join('---\n');
  const r = parseYaml(yaml, 'test.yaml');
  const errors = r.diagnostics.filter((d) => d.level === 'error');
  assert.deepEqual(errors.map((e) => `${e.field}: ${e.message}`), [], 'the test policies load');
  return r.resources as ResourceOf<'AuthorizationPolicy'>[];
}

function authorizer(...specs: [string, string][]): (r: Partial<AuthzRequest>) => AuthzDecision {
  const authz = compileAuthz({ policies: policies(...specs), workload: WORKLOAD, mesh: MESH, registry: REGISTRY });
  const decide = buildAuthorizer(authz);
  return (r) => decide({ tcp: false, sourceIp: '10.0.0.5', destinationPort: 8080, method: 'GET', path: '/', host: 'httpbin.foo', ...r });
}

const allowed = (d: AuthzDecision) => d.allowed;
const PEER = 'cluster.local/ns/foo/sa/sleep';

test('with no policy selecting the workload everything is allowed', () => {
  const d = buildAuthorizer(undefined)({ tcp: false, sourceIp: '10.0.0.1', destinationPort: 80 });
  assert.deepEqual(d, { allowed: true, reason: 'no policy selects this workload' });
  const other = compileAuthz({ policies: policies(['x', '{ selector: { matchLabels: { app: other } }, rules: [{}] }']), workload: WORKLOAD, mesh: MESH, registry: REGISTRY });
  assert.equal(other, undefined, 'a policy whose selector does not match does not apply');
});

test('a matching DENY beats a matching ALLOW, and names the policy and rule', () => {
  const a = authorizer(['allow-all', '{ rules: [{}] }'], ['deny-admin', '{ action: DENY, rules: [{ to: [{ operation: { paths: [/x] } }] }, { to: [{ operation: { paths: [/admin] } }] }] }']);
  assert.deepEqual(a({ path: '/admin' }), { allowed: false, policy: 'foo/deny-admin', rule: 1, reason: 'denied by DENY policy foo/deny-admin rule 1' });
  assert.deepEqual(a({ path: '/public' }), { allowed: true, policy: 'foo/allow-all', rule: 0, reason: 'allowed by foo/allow-all rule 0' });
});

test('an ALLOW policy with spec {} denies everything; rules: [{}] allows everything', () => {
  const nothing = authorizer(['allow-nothing', '{}']);
  assert.deepEqual(nothing({}), { allowed: false, reason: 'no ALLOW policy matched' });
  assert.equal(authorizer(['allow-all', '{ rules: [{}] }'])({ tcp: true }).allowed, true);
});

test('only DENY policies: what none of them matches is allowed', () => {
  const a = authorizer(['deny-post', '{ action: DENY, rules: [{ to: [{ operation: { methods: [POST] } }] }] }']);
  assert.deepEqual(a({ method: 'GET' }), { allowed: true, reason: 'no DENY policy matched and no ALLOW policy selects this workload' });
  assert.equal(a({ method: 'POST' }).allowed, false);
});

test('rules are OR-ed; from, to and when are AND-ed; values OR-ed; operations OR-ed', () => {
  const a = authorizer(['p', `{ rules: [
    { from: [{ source: { namespaces: [a] } }], to: [{ operation: { methods: [GET] } }] },
    { from: [{ source: { namespaces: [b] } }], to: [{ operation: { methods: [POST, PUT] } }, { operation: { paths: [/b-only] } }], when: [{ key: "request.headers[x-ok]", values: ["1"] }] } ] }`]);
  const from = (ns: string) => `cluster.local/ns/${ns}/sa/x`;
  assert.equal(a({ principal: from('a'), method: 'GET' }).allowed, true);
  assert.equal(a({ principal: from('a'), method: 'POST' }).allowed, false, 'rule 0 needs GET');
  const ok = () => '1';
  assert.equal(a({ principal: from('b'), method: 'PUT', headers: ok }).allowed, true);
  assert.equal(a({ principal: from('b'), method: 'DELETE', path: '/b-only', headers: ok }).allowed, true, 'the second operation');
  assert.equal(a({ principal: from('b'), method: 'PUT' }).allowed, false, 'the when condition is required');
  assert.equal(a({ principal: from('c'), method: 'GET' }).allowed, false);
});

test('fields of one source or operation are AND-ed, and not-fields match when no value does', () => {
  const a = authorizer(['p', '{ rules: [{ to: [{ operation: { methods: [GET, HEAD], notPaths: [/admin*], notPorts: ["9090"] } }] }] }']);
  assert.equal(a({ path: '/ok' }).allowed, true);
  assert.equal(a({ path: '/admin/x' }).allowed, false);
  assert.equal(a({ path: '/ok', destinationPort: 9090 }).allowed, false);
  assert.equal(a({ path: '/ok', method: 'POST' }).allowed, false);
  const notMethods = authorizer(['p', '{ rules: [{ to: [{ operation: { notMethods: [PUT] } }] }] }']);
  assert.deepEqual([notMethods({ method: 'GET' }), notMethods({ method: 'PUT' })].map(allowed), [true, false]);
});

test('exact, prefix*, *suffix and * (non-empty) patterns; paths are case-sensitive', () => {
  const a = authorizer(['p', '{ rules: [{ to: [{ operation: { paths: [/exact, "/pre*", "*.png"] } }] }] }']);
  assert.deepEqual(['/exact', '/exact/', '/prefix/a', '/img/a.png', '/EXACT', '/Pre'].map((path) => a({ path }).allowed), [true, false, true, true, false, false]);
  const any = authorizer(['p', '{ rules: [{ from: [{ source: { principals: ["*"] } }] }] }']);
  assert.equal(any({ principal: PEER }).allowed, true);
  assert.equal(any({}).allowed, false, '"*" needs an identity: plaintext has none');
});

test('path templates: {*} is one non-empty segment, {**} zero or more segments, anchored', () => {
  const a = authorizer(['p', '{ rules: [{ to: [{ operation: { paths: ["/allow/admin/{**}", "/foo/{*}/bar/{**}", "/store/{**}/cart", "/x/{**}/"] } }] }] }']);
  const cases: [string, boolean][] = [
    ['/allow/admin/', true], ['/allow/admin', false], ['/allow/admin/a/b.txt', true], ['/foo/buzz/bar/bat', true],
    ['/foo//bar/bat', false], ['/foo/a/b/bar/c', false], ['/store//cart', true], ['/store/cart', false], ['/store/a/b/cart', true],
    ['/x//', true], ['/pre/store/a/cart', false], ['/store/a/cart/more', false],
  ];
  assert.deepEqual(cases.map(([path]) => [path, a({ path }).allowed]), cases);
});

test('hosts are compared without case, and a port is part of the host as in Istio', () => {
  const a = authorizer(['deny', '{ action: DENY, rules: [{ to: [{ operation: { hosts: [secret.com] } }] }] }']);
  assert.deepEqual(['secret.com', 'Secret.COM', 'secret.com:80', 'other.com'].map((host) => a({ host }).allowed), [false, false, true, true]);
  const both = authorizer(['deny', '{ action: DENY, rules: [{ to: [{ operation: { hosts: [secret.com, "secret.com:*"] } }] }] }']);
  assert.deepEqual(['SECRET.com:8080', 'secret.com'].map((host) => both({ host }).allowed), [false, false]);
  const suffix = authorizer(['p', '{ rules: [{ to: [{ operation: { hosts: ["*.example.com"] } }] }] }']);
  assert.deepEqual(['API.Example.com', 'example.com'].map((host) => suffix({ host }).allowed), [true, false]);
});

test('ports and destination.port are the port the workload receives on', () => {
  const a = authorizer(['p', '{ rules: [{ to: [{ operation: { ports: ["8080"] } }] }, { when: [{ key: destination.port, values: ["9000"] }] }] }']);
  assert.deepEqual([8080, 9000, 80].map((destinationPort) => a({ destinationPort }).allowed), [true, true, false]);
});

test('namespaces, serviceAccounts and trustDomains are read from the peer identity, literals quoted', () => {
  const ns = authorizer(['p', '{ rules: [{ from: [{ source: { namespaces: [ns.prod, "team-*"] } }] }] }']);
  const id = (n: string, sa = 'x', td = 'cluster.local') => `${td}/ns/${n}/sa/${sa}`;
  assert.deepEqual([id('ns.prod'), id('nsXprod'), id('team-a'), id('other')].map((principal) => ns({ principal }).allowed), [true, false, true, false]);
  const sa = authorizer(['p', '{ rules: [{ from: [{ source: { serviceAccounts: [api.reader, bar/db] } }] }] }']);
  assert.deepEqual(
    [id('foo', 'api.reader'), id('foo', 'apiXreader'), id('bar', 'db'), id('foo', 'db'), id('foo', 'api.reader-x')].map((principal) => sa({ principal }).allowed),
    [true, false, true, false, false], 'a service account without a namespace is in the policy\'s namespace',
  );
  const td = authorizer(['p', '{ rules: [{ from: [{ source: { trustDomains: [partner.example] } }] }] }']);
  assert.deepEqual([id('a', 'x', 'partner.example'), id('a')].map((principal) => td({ principal }).allowed), [true, false]);
});

test('identity fields with plaintext compare against an empty value (Istio semantics)', () => {
  const notFoo = authorizer(['p', '{ rules: [{ from: [{ source: { notNamespaces: [foo] } }] }] }']);
  assert.equal(notFoo({}).allowed, true, 'plaintext has no namespace, so notNamespaces matches');
  assert.equal(notFoo({ principal: PEER }).allowed, false);
  const fixed = authorizer(['p', '{ rules: [{ from: [{ source: { namespaces: ["*"], notNamespaces: [foo] } }] }] }']);
  assert.equal(fixed({}).allowed, false, 'namespaces: ["*"] requires an identity');
  const deny = authorizer(['p', '{ action: DENY, rules: [{ from: [{ source: { namespaces: [foo] } }] }] }']);
  assert.equal(deny({}).allowed, true, 'a DENY on a namespace does not stop plaintext');
});

test('ipBlocks match the direct peer, remoteIpBlocks the original client, IPv4 and IPv6 CIDRs', () => {
  const a = authorizer(['p', '{ rules: [{ from: [{ source: { ipBlocks: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7], notIpBlocks: [10.9.0.0/16] } }] }] }']);
  const cases: [string, boolean][] = [
    ['10.1.2.3', true], ['10.9.1.1', false], ['11.0.0.1', false], ['2001:db8:1::5', true], ['2001:db9::1', false],
    ['::ffff:10.1.2.3', true], ['::ffff:10.9.0.1', false], ['192.0.2.7', true], ['192.0.2.8', false], ['not-an-ip', false],
  ];
  assert.deepEqual(cases.map(([sourceIp]) => [sourceIp, a({ sourceIp }).allowed]), cases);
  const remote = authorizer(['p', '{ rules: [{ from: [{ source: { remoteIpBlocks: ["203.0.113.0/24"] } }] }] }']);
  assert.equal(remote({ sourceIp: '10.0.0.1', remoteIp: '203.0.113.9' }).allowed, true);
  assert.equal(remote({ sourceIp: '203.0.113.9', remoteIp: '10.0.0.1' }).allowed, false);
  assert.equal(remote({ sourceIp: '203.0.113.9' }).allowed, true, 'without a remote address the peer is the client');
  const v6 = authorizer(['p', '{ rules: [{ when: [{ key: source.ip, values: ["fe80::/10"] }, { key: destination.ip, notValues: ["::1"] }] }] }']);
  assert.equal(v6({ sourceIp: 'fe80::1%eth0', destinationIp: '::2' }).allowed, true);
  assert.equal(v6({ sourceIp: 'fe80::1', destinationIp: '0:0:0:0:0:0:0:1' }).allowed, false);
});

test('requestPrincipals match iss/sub of a validated token, split at the last slash', () => {
  const a = authorizer(['p', '{ rules: [{ from: [{ source: { requestPrincipals: ["https://issuer.example/a/alice", "*/bob", "corp/*"] } }] }] }']);
  const tok = (iss: string, sub: string) => ({ requestPrincipal: `${iss}/${sub}`, claims: { iss, sub } });
  assert.equal(a(tok('https://issuer.example/a', 'alice')).allowed, true);
  assert.equal(a(tok('https://issuer.example', 'a/alice')).allowed, false, 'the claims say where issuer and subject split');
  assert.equal(a(tok('any.example', 'bob')).allowed, true);
  assert.equal(a(tok('corp', 'anyone')).allowed, true);
  assert.equal(a({}).allowed, false, 'no token, no request principal');
  const needToken = authorizer(['p', '{ action: DENY, rules: [{ from: [{ source: { notRequestPrincipals: ["*"] } }] }] }']);
  assert.equal(needToken({}).allowed, false);
  assert.equal(needToken(tok('x', 'y')).allowed, true);
});

test('header conditions: names without case, each value of a repeated header on its own, whitespace trimmed, * = present', () => {
  const a = authorizer(['p', '{ action: DENY, rules: [{ when: [{ key: "request.headers[X-Role]", values: [admin] }] }] }']);
  assert.equal(a({ headers: (n) => (n === 'x-role' ? ['user', 'admin'] : undefined) }).allowed, false);
  assert.equal(a({ headers: (n) => (n === 'x-role' ? 'admin   ' : undefined) }).allowed, false);
  assert.equal(a({ headers: (n) => (n === 'x-role' ? 'user,admin' : undefined) }).allowed, true, 'one value containing a comma is one value');
  const present = authorizer(['p', '{ rules: [{ when: [{ key: "request.headers[x-debug]", values: ["*"] }] }] }']);
  assert.equal(present({ headers: (n) => (n === 'x-debug' ? '' : undefined) }).allowed, true, 'present even when empty');
  assert.equal(present({}).allowed, false);
  const notValues = authorizer(['p', '{ action: DENY, rules: [{ when: [{ key: "request.headers[x-token]", notValues: [admin] }] }] }']);
  assert.equal(notValues({}).allowed, false, 'an absent header matches notValues');
});

test('JWT conditions: nested claims, list claims, audiences and presenter', () => {
  const a = authorizer(['p', `{ rules: [{ when: [
    { key: "request.auth.claims[groups]", values: [group1] },
    { key: "request.auth.claims[org][team]", values: ["mesh-*"] },
    { key: request.auth.audiences, values: [api] },
    { key: request.auth.presenter, notValues: [evil] },
    { key: request.auth.principal, values: ["iss/*"] } ] }] }`]);
  const claims = { iss: 'iss', sub: 'me', groups: ['group2', 'group1'], org: { team: 'mesh-core' }, aud: ['web', 'api'], azp: 'app' };
  assert.equal(a({ claims, requestPrincipal: 'iss/me' }).allowed, true);
  assert.equal(a({ claims: { ...claims, groups: 'group1' }, requestPrincipal: 'iss/me' }).allowed, true, 'a string claim');
  assert.equal(a({ claims: { ...claims, groups: ['group2'] }, requestPrincipal: 'iss/me' }).allowed, false);
  assert.equal(a({ claims: { ...claims, azp: 'evil' }, requestPrincipal: 'iss/me' }).allowed, false);
  assert.equal(a({ claims, requestPrincipal: 'iss/me', audiences: ['other'] }).allowed, false, 'audiences given by authentication win over the claim');
});

test('source and connection conditions: source.namespace, source.principal, source.serviceAccount, connection.sni, remote.ip', () => {
  const a = authorizer(['p', `{ rules: [{ when: [
    { key: source.namespace, values: [foo] }, { key: source.principal, notValues: ["*/sa/banned"] },
    { key: source.serviceAccount, values: [sleep, bar/sleep] }, { key: connection.sni, values: ["*.internal"] },
    { key: remote.ip, notValues: [198.51.100.0/24] } ] }] }`]);
  const base = { principal: PEER, sni: 'httpbin.internal', sourceIp: '10.0.0.1' };
  assert.equal(a(base).allowed, true);
  assert.equal(a({ ...base, sni: 'other' }).allowed, false);
  assert.equal(a({ ...base, principal: 'cluster.local/ns/foo/sa/banned' }).allowed, false);
  assert.equal(a({ ...base, remoteIp: '198.51.100.4' }).allowed, false);
});

test('TCP: an ALLOW rule with HTTP-only fields is dropped; the others still apply', () => {
  const a = authorizer(['p', '{ rules: [{ to: [{ operation: { methods: [GET] } }] }, { from: [{ source: { principals: ["cluster.local/ns/foo/sa/db-client"] } }], to: [{ operation: { ports: ["5432"] } }] }] }']);
  assert.equal(a({ tcp: true, principal: PEER, destinationPort: 5432 }).allowed, false, 'rule 0 (methods) matches no TCP connection');
  assert.deepEqual(a({ tcp: true, principal: 'cluster.local/ns/foo/sa/db-client', destinationPort: 5432 }), { allowed: true, policy: 'foo/p', rule: 1, reason: 'allowed by foo/p rule 1' });
  const httpOnly = authorizer(['p', '{ rules: [{ from: [{ source: { requestPrincipals: ["*"] } }] }] }']);
  assert.equal(httpOnly({ tcp: true, principal: PEER }).allowed, false, 'an ALLOW policy whose rules are all dropped still denies TCP');
  assert.equal(httpOnly({ claims: { iss: 'a', sub: 'b' } }).allowed, true, 'on HTTP the rule applies');
});

test('TCP: in a DENY rule only the HTTP-only conditions are dropped, so the deny is wider', () => {
  const a = authorizer(['d', '{ action: DENY, rules: [{ to: [{ operation: { paths: [/admin], ports: ["9000"] } }], when: [{ key: "request.headers[x]", values: [y] }] }] }']);
  assert.equal(a({ tcp: true, destinationPort: 9000 }).allowed, false, 'port 9000 is denied on TCP');
  assert.equal(a({ tcp: true, destinationPort: 9001 }).allowed, true, 'the port condition stays');
  assert.equal(a({ destinationPort: 9000, path: '/admin' }).allowed, true, 'on HTTP the header condition still applies');
  const methodsOnly = authorizer(['d', '{ action: DENY, rules: [{ to: [{ operation: { methods: [GET] } }] }] }']);
  assert.equal(methodsOnly({ tcp: true }).allowed, false, 'a DENY on methods alone denies every TCP connection');
});

test('conditions on Envoy filter metadata never hold in ALLOW and always hold in DENY (fail closed)', () => {
  const allow = authorizer(['p', '{ rules: [{ when: [{ key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"] }] }, { to: [{ operation: { paths: [/ok] } }] }] }']);
  assert.equal(allow({ path: '/x' }).allowed, false);
  assert.equal(allow({ path: '/ok' }).allowed, true, 'the other rule still allows');
  const deny = authorizer(['d', '{ action: DENY, rules: [{ to: [{ operation: { paths: [/db] } }], when: [{ key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"] }] }] }']);
  assert.deepEqual([deny({ path: '/db' }).allowed, deny({ path: '/other' }).allowed], [false, true]);
});

test('AUDIT policies never change the decision and are listed when they match', () => {
  const a = authorizer(['audit-admin', '{ action: AUDIT, rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] }'], ['allow-get', '{ rules: [{ to: [{ operation: { methods: [GET] } }] }] }']);
  assert.deepEqual(a({ path: '/admin/x' }), { allowed: true, policy: 'foo/allow-get', rule: 0, reason: 'allowed by foo/allow-get rule 0', audit: ['foo/audit-admin'] });
  assert.deepEqual(a({ path: '/admin/x', method: 'POST' }), { allowed: false, reason: 'no ALLOW policy matched', audit: ['foo/audit-admin'] });
  assert.equal(a({ path: '/public' }).audit, undefined);
  assert.equal(authorizer(['audit-all', '{ action: AUDIT, rules: [{}] }'])({}).allowed, true, 'AUDIT alone allows');
});

test('CUSTOM policies are not supported: what they match is denied, and the compile result says so', () => {
  const specs: [string, string] = ['ext', '{ action: CUSTOM, provider: { name: opa }, rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] }'];
  const a = authorizer(specs, ['allow-all', '{ rules: [{}] }']);
  const d = a({ path: '/admin' });
  assert.equal(d.allowed, false);
  assert.match(d.reason, /^denied by CUSTOM policy foo\/ext rule 0/);
  assert.equal(a({ path: '/public' }).allowed, true);
  const authz = compileAuthz({ policies: policies(specs), workload: WORKLOAD, mesh: MESH, registry: REGISTRY });
  assert.deepEqual(authz?.notes.map((n) => [n.kind, n.field]), [['custom-not-supported', 'spec.action']]);
});

test('a path handed over with its query still matches on the path alone', () => {
  const a = authorizer(['d', '{ action: DENY, rules: [{ to: [{ operation: { paths: [/secret] } }] }] }']);
  assert.equal(a({ path: '/secret?x=1' }).allowed, false);
});
