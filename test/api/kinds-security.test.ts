/** Schemas of security.istio.io: PeerAuthentication, AuthorizationPolicy, RequestAuthentication. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorsOf, loadSample, loadSpec, runTable, type Row } from './kind-table.js';

const SEC = 'security.istio.io/v1';
const src = (source: unknown) => ({ rules: [{ from: [{ source }] }] });
const op = (operation: unknown) => ({ rules: [{ to: [{ operation }] }] });
const when = (condition: unknown) => ({ rules: [{ when: [condition] }] });
const jwt = (rule: unknown) => ({ jwtRules: [rule] });

const peerAuthentication: Row[] = [
  { name: 'mesh-wide STRICT', spec: { mtls: { mode: 'STRICT' } } },
  { name: 'a port-level override under a selector', spec: { selector: { matchLabels: { app: 'db' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { 8080: { mode: 'DISABLE' } } } },
  { name: 'an empty selector', spec: { selector: {} } },
  { name: 'an unknown mode', spec: { mtls: { mode: 'ON' } }, code: 'TRL0106', field: 'spec.mtls.mode' },
  { name: 'an unknown field', spec: { mtls: { mode: 'STRICT', strict: true } }, code: 'TRL1002', field: 'spec.mtls.strict' },
  { name: 'a port key that is not a number', spec: { selector: { matchLabels: { app: 'db' } }, portLevelMtls: { http: { mode: 'STRICT' } } }, code: 'TRL0106', field: 'spec.portLevelMtls.http' },
  { name: 'port 70000', spec: { selector: { matchLabels: { app: 'db' } }, portLevelMtls: { 70000: { mode: 'STRICT' } } }, code: 'TRL0106', field: 'spec.portLevelMtls.70000' },
  { name: 'port-level mTLS without a selector', spec: { portLevelMtls: { 80: { mode: 'STRICT' } } }, code: 'TRL0106', field: 'spec.portLevelMtls' },
  { name: 'an empty portLevelMtls', spec: { selector: { matchLabels: { app: 'db' } }, portLevelMtls: {} }, code: 'TRL0106', field: 'spec.portLevelMtls' },
  { name: 'a wildcard selector value', spec: { selector: { matchLabels: { app: '*' } } }, code: 'TRL0106', field: 'spec.selector.matchLabels.app' },
];

const authorizationPolicy: Row[] = [
  { name: 'allow-nothing ({})', spec: {} },
  { name: 'allow-all (rules: [{}])', spec: { rules: [{}] } },
  { name: 'a full ALLOW rule', spec: {
    selector: { matchLabels: { app: 'httpbin' } },
    action: 'ALLOW',
    rules: [{
      from: [{ source: { principals: ['cluster.local/ns/default/sa/curl'] } }, { source: { namespaces: ['test'], notIpBlocks: ['203.0.113.0/24'] } }],
      to: [{ operation: { methods: ['GET'], paths: ['/info*', '/api/{*}/items/{**}'], ports: ['8000'] } }],
      when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }, { key: 'request.headers[x-token]', notValues: ['guest'] }],
    }],
  } },
  { name: 'service accounts alone', spec: src({ serviceAccounts: ['default/curl', 'curl'] }) },
  { name: 'a CUSTOM action with a provider', spec: { action: 'CUSTOM', provider: { name: 'ext-authz' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] } },
  { name: 'a DENY on a Service targetRef', spec: { targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }], action: 'DENY', rules: [{}] } },
  { name: 'an unknown action', spec: { action: 'REJECT' }, code: 'TRL0106', field: 'spec.action' },
  { name: 'hosts under source (a field of operation)', spec: src({ hosts: ['example.com'] }), code: 'TRL1002', field: 'spec.rules[0].from[0].source.hosts' },
  { name: 'serviceAccounts with namespaces', spec: src({ serviceAccounts: ['a/b'], namespaces: ['a'] }), code: 'TRL0106', field: 'spec.rules[0].from[0].source.namespaces' },
  { name: 'a service account with two slashes', spec: src({ serviceAccounts: ['a/b/c'] }), code: 'TRL0106', field: 'spec.rules[0].from[0].source.serviceAccounts[0]' },
  { name: 'an empty source', spec: src({}), code: 'TRL0106', field: 'spec.rules[0].from[0].source' },
  { name: 'an empty principal', spec: src({ principals: [''] }), code: 'TRL0106', field: 'spec.rules[0].from[0].source.principals[0]' },
  { name: 'an empty from list', spec: { rules: [{ from: [] }] }, code: 'TRL0106', field: 'spec.rules[0].from' },
  { name: 'a from entry without source', spec: { rules: [{ from: [{}] }] }, code: 'TRL0106', field: 'spec.rules[0].from[0].source' },
  { name: 'a malformed ipBlock', spec: src({ ipBlocks: ['10.0.0.0/33'] }), code: 'TRL0106', field: 'spec.rules[0].from[0].source.ipBlocks[0]' },
  { name: 'an empty operation', spec: op({}), code: 'TRL0106', field: 'spec.rules[0].to[0].operation' },
  { name: 'a port that is a name', spec: op({ ports: ['http'] }), code: 'TRL0106', field: 'spec.rules[0].to[0].operation.ports[0]' },
  { name: 'an unsupported path template', spec: op({ paths: ['/a/{id}'] }), code: 'TRL0106', field: 'spec.rules[0].to[0].operation.paths[0]' },
  { name: 'a path template mixed with *', spec: op({ notPaths: ['/a/{*}/b*'] }), code: 'TRL0106', field: 'spec.rules[0].to[0].operation.notPaths[0]' },
  { name: 'an unknown condition key', spec: when({ key: 'source.user', values: ['x'] }), code: 'TRL0106', field: 'spec.rules[0].when[0].key' },
  { name: 'a header condition without a header name', spec: when({ key: 'request.headers', values: ['x'] }), code: 'TRL0106', field: 'spec.rules[0].when[0].key' },
  { name: 'a condition without values', spec: when({ key: 'source.namespace' }), code: 'TRL0106', field: 'spec.rules[0].when[0]' },
  { name: 'a source.ip condition that is not an IP', spec: when({ key: 'source.ip', values: ['10.0.0.x'] }), code: 'TRL0106', field: 'spec.rules[0].when[0].values[0]' },
  { name: 'a destination.port condition that is not a port', spec: when({ key: 'destination.port', notValues: ['0'] }), code: 'TRL0106', field: 'spec.rules[0].when[0].notValues[0]' },
  { name: 'CUSTOM without a provider', spec: { action: 'CUSTOM', rules: [{}] }, code: 'TRL0106', field: 'spec.provider' },
  { name: 'CUSTOM without rules', spec: { action: 'CUSTOM', provider: { name: 'x' } }, code: 'TRL0106', field: 'spec.action' },
  { name: 'CUSTOM with principals', spec: { action: 'CUSTOM', provider: { name: 'x' }, ...src({ principals: ['a'] }) }, code: 'TRL0106', field: 'spec.rules[0].from[0].source.principals' },
  { name: 'CUSTOM with a request.auth condition', spec: { action: 'CUSTOM', provider: { name: 'x' }, ...when({ key: 'request.auth.principal', values: ['a'] }) }, code: 'TRL0106', field: 'spec.rules[0].when[0].key' },
  { name: 'a provider on an ALLOW policy', spec: { provider: { name: 'x' }, rules: [{}] }, code: 'TRL0106', field: 'spec.provider' },
  { name: 'DENY without rules', spec: { action: 'DENY' }, code: 'TRL0106', field: 'spec.action' },
  { name: 'selector and targetRef together', spec: { selector: { matchLabels: { a: 'b' } }, targetRef: { kind: 'Service', name: 'x' } }, code: 'TRL0106', field: 'spec.targetRef' },
  { name: 'a targetRef to a Deployment', spec: { targetRef: { group: 'apps', kind: 'Deployment', name: 'x' } }, code: 'TRL0106', field: 'spec.targetRef.kind' },
  { name: 'an empty caller label group', spec: src({ labels: {} }), code: 'TRL0106', field: 'spec.rules[0].from[0].source.labels' },
];

const requestAuthentication: Row[] = [
  { name: 'an issuer with a JWKS URL', spec: { selector: { matchLabels: { app: 'web' } }, ...jwt({ issuer: 'https://issuer.example.com', jwksUri: 'https://issuer.example.com/jwks.json', audiences: ['web'] }) } },
  { name: 'a JWKS URL without issuer', spec: jwt({ jwksUri: 'https://issuer.example.com/jwks.json' }) },
  { name: 'an inline key set and token locations', spec: jwt({
    issuer: 'testing@secure.istio.io', jwks: '{"keys":[]}', fromHeaders: [{ name: 'x-jwt', prefix: 'Bearer ' }], fromParams: ['token'],
    fromCookies: ['session'], outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }], forwardOriginalToken: true, timeout: '5s',
  }) },
  { name: 'a rule without issuer or jwksUri', spec: jwt({ audiences: ['a'] }), code: 'TRL0106', field: 'spec.jwtRules[0].issuer' },
  { name: 'a jwksUri without a scheme', spec: jwt({ issuer: 'a', jwksUri: 'example.com/jwks.json' }), code: 'TRL0106', field: 'spec.jwtRules[0].jwksUri' },
  { name: 'a jwksUri with an ftp scheme', spec: jwt({ issuer: 'a', jwksUri: 'ftp://example.com/jwks.json' }), code: 'TRL0106', field: 'spec.jwtRules[0].jwksUri' },
  { name: 'both jwks and jwksUri', spec: jwt({ issuer: 'a', jwksUri: 'https://a/j', jwks: '{"keys":[]}' }), code: 'TRL0106', field: 'spec.jwtRules[0].jwks' },
  { name: 'jwks that is not JSON', spec: jwt({ issuer: 'a', jwks: '{keys' }), code: 'TRL0106', field: 'spec.jwtRules[0].jwks' },
  { name: 'a zero timeout', spec: jwt({ issuer: 'a', timeout: '0s' }), code: 'TRL0106', field: 'spec.jwtRules[0].timeout' },
  { name: 'a payload header name', spec: jwt({ issuer: 'a', jwks: '{"keys":[]}', outputPayloadToHeader: 'X-Jwt_Payload-1' }) },
  { name: 'a payload header with a colon', spec: jwt({ issuer: 'a', outputPayloadToHeader: ':authority' }), code: 'TRL0106', field: 'spec.jwtRules[0].outputPayloadToHeader' },
  { name: 'a payload header with a space', spec: jwt({ issuer: 'a', outputPayloadToHeader: 'x jwt' }), code: 'TRL0106', field: 'spec.jwtRules[0].outputPayloadToHeader' },
  { name: 'an empty payload header', spec: jwt({ issuer: 'a', outputPayloadToHeader: '' }), code: 'TRL0106', field: 'spec.jwtRules[0].outputPayloadToHeader' },
  { name: 'a claim header with a colon', spec: jwt({ issuer: 'a', outputClaimToHeaders: [{ header: ':path', claim: 'sub' }] }), code: 'TRL0106', field: 'spec.jwtRules[0].outputClaimToHeaders[0].header' },
  { name: 'a header location without name', spec: jwt({ issuer: 'a', fromHeaders: [{ prefix: 'Bearer ' }] }), code: 'TRL0106', field: 'spec.jwtRules[0].fromHeaders[0].name' },
  { name: 'a targetRef in another namespace', spec: { targetRef: { kind: 'Service', name: 'x', namespace: 'other' } }, code: 'TRL0106', field: 'spec.targetRef.namespace' },
  { name: 'targetRef and targetRefs together', spec: { targetRef: { kind: 'Service', name: 'x' }, targetRefs: [{ kind: 'Service', name: 'y' }] }, code: 'TRL0106', field: 'spec.targetRefs' },
];

runTable(SEC, 'PeerAuthentication', peerAuthentication);
runTable(SEC, 'AuthorizationPolicy', authorizationPolicy);
runTable(SEC, 'RequestAuthentication', requestAuthentication);

test('v1beta1 is read like v1', () => {
  const r = loadSpec('security.istio.io/v1beta1', 'AuthorizationPolicy', { action: 'DENY', rules: [{}] });
  assert.deepEqual(errorsOf(r), []);
  assert.equal(r.resources[0]?.ref, 'AuthorizationPolicy ns/x');
});

test('source.labels and source.notLabels are accepted and reported as Trellis extensions (TRL1007)', () => {
  const r = loadSpec(SEC, 'AuthorizationPolicy', {
    selector: { matchLabels: { app: 'debit-credit' } },
    rules: [{ from: [{ source: { labels: { group: 'funds-transfer' }, notLabels: { tier: 'batch' } } }] }],
  });
  assert.deepEqual(errorsOf(r), []);
  assert.equal(r.resources.length, 1);
  const infos = r.diagnostics.filter((d) => d.code === 'TRL1007');
  assert.deepEqual(infos.map((d) => [d.level, d.field]), [
    ['info', 'spec.rules[0].from[0].source.labels'],
    ['info', 'spec.rules[0].from[0].source.notLabels'],
  ]);
  assert.match(infos[0]!.message, /Trellis extension/);
});

const warningsOf = (r: ReturnType<typeof loadSpec>) => r.diagnostics.filter((d) => d.level === 'warning').map((d) => [d.code, d.field]);

test('AuthorizationPolicy targetRef(s), trustDomains and notTrustDomains are enforced: no TRL1005', () => {
  for (const spec of [
    { targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }, { kind: 'ServiceEntry', group: 'networking.istio.io', name: 'ext' }], rules: [{}] },
    { targetRef: { kind: 'Service', name: 'reviews' }, rules: [{}] },
    src({ trustDomains: ['cluster.local'], notTrustDomains: ['old.example'] }),
  ]) {
    const r = loadSpec(SEC, 'AuthorizationPolicy', spec);
    assert.deepEqual(errorsOf(r), []);
    assert.deepEqual(r.diagnostics, [], JSON.stringify(spec));
  }
});

test('a CUSTOM AuthorizationPolicy loads with one warning (TRL1011 at spec.action): Trellis denies what it matches, and names the provider', () => {
  const r = loadSpec(SEC, 'AuthorizationPolicy', { action: 'CUSTOM', provider: { name: 'ext-authz' }, rules: [{}] });
  assert.deepEqual(errorsOf(r), []);
  assert.equal(r.resources.length, 1);
  assert.deepEqual(warningsOf(r), [['TRL1011', 'spec.action']], 'the provider gets no TRL1005 of its own: the action\'s warning covers it');
  const m = r.diagnostics[0]!.message;
  assert.match(m, /^value "CUSTOM" of "spec\.action" is accepted but not yet enforced: /);
  assert.match(m, /no external authorizer/);
  assert.match(m, /"ext-authz"/);
  assert.match(m, /denies \(403\) every request this CUSTOM policy matches/);
});

test('an AuthorizationPolicy targeting a Gateway API Gateway or GatewayClass warns (TRL1011 at the kind) that it selects no workload', () => {
  const gw = { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'edge' };
  const r = loadSpec(SEC, 'AuthorizationPolicy', { targetRefs: [{ kind: 'Service', group: '', name: 'api' }, gw], action: 'DENY', rules: [{}] });
  assert.deepEqual(errorsOf(r), []);
  assert.deepEqual(warningsOf(r), [['TRL1011', 'spec.targetRefs[1].kind']]);
  assert.match(r.diagnostics[0]!.message, /no Gateway API gateways.*selects no workload/);
  const one = loadSpec(SEC, 'AuthorizationPolicy', { targetRef: { kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio' }, rules: [{}] });
  assert.deepEqual(warningsOf(one), [['TRL1011', 'spec.targetRef.kind']]);
  assert.match(one.diagnostics[0]!.message, /gateway classes/);
});

test('RequestAuthentication: targetRef(s) and presence are still accepted but not enforced (TRL1005)', () => {
  const r = loadSpec(SEC, 'RequestAuthentication', { targetRefs: [{ kind: 'Service', name: 'api' }], ...jwt({ issuer: 'a', jwksUri: 'https://a/j', presence: 'REQUIRED' }) });
  assert.deepEqual(errorsOf(r), []);
  assert.deepEqual(warningsOf(r), [['TRL1005', 'spec.targetRefs'], ['TRL1005', 'spec.jwtRules[0].presence']]);
});

test('a JWT rule with neither jwks nor jwksUri loads with a warning (TRL1011 at its issuer) that its tokens are refused', () => {
  const r = loadSpec(SEC, 'RequestAuthentication', { jwtRules: [{ issuer: 'https://accounts.example.com' }, { issuer: 'b', jwks: '{"keys":[]}' }, { issuer: 'c', jwksUri: 'https://c/j' }] });
  assert.deepEqual(errorsOf(r), []);
  assert.equal(r.resources.length, 1);
  assert.deepEqual(warningsOf(r), [['TRL1011', 'spec.jwtRules[0].issuer']], 'rules with a key source carry none');
  const d = r.diagnostics[0]!;
  assert.equal(d.resource, 'RequestAuthentication ns/x');
  assert.ok(d.position && d.position.line > 0);
  assert.match(d.message, /^value "https:\/\/accounts\.example\.com" of "spec\.jwtRules\[0\]\.issuer" is accepted but not yet enforced: /);
  assert.match(d.message, /neither jwksUri nor jwks.*OpenID Connect.*refused \(401\)/);
});

test('enforced fields carry no warning', () => {
  const r = loadSpec(SEC, 'AuthorizationPolicy', { action: 'DENY', ...src({ principals: ['a'], namespaces: ['b'] }) });
  assert.deepEqual(r.diagnostics, []);
});

test('a missing spec is an error at spec', () => {
  const r = loadSpec(SEC, 'PeerAuthentication', undefined);
  assert.deepEqual(r.diagnostics.map((d) => [d.code, d.field]), [['TRL0106', 'spec']]);
});

for (const file of ['authn-policy.yaml', 'authz-deny.yaml', 'authz-http-bookinfo.yaml', 'authz-jwt.yaml']) {
  test(`the Istio sample security/${file} loads without errors`, () => {
    const r = loadSample(`security/${file}`);
    assert.deepEqual(errorsOf(r), []);
    assert.ok(r.resources.length > 0);
  });
}

test('security-policy-examples.yaml: hosts under source is reported at its field path', () => {
  const r = loadSample('security/security-policy-examples.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error').map((d) => [d.code, d.resource, d.field]), [
    ['TRL1002', 'AuthorizationPolicy istio-system/jwt-per-host', 'spec.rules[0].from[0].source.hosts'],
    ['TRL1002', 'AuthorizationPolicy istio-system/jwt-per-host', 'spec.rules[0].from[1].source.hosts'],
  ]);
  assert.equal(r.resources.length, 5, 'the other five policies load');
});

test('best-practices.yaml: the EnvoyFilter is rejected by name (TRL1003), the policies load', () => {
  const r = loadSample('security/best-practices.yaml');
  const errors = r.diagnostics.filter((d) => d.level === 'error');
  const envoy = errors.filter((d) => d.code === 'TRL1003');
  assert.deepEqual(envoy.map((d) => d.resource), ['EnvoyFilter istio-system/ingress-case-insensitive']);
  // The page shows its two Gateways without apiVersion; they cannot be identified (TRL1010).
  assert.deepEqual(errors.filter((d) => d.code !== 'TRL1003').map((d) => d.code), ['TRL1010', 'TRL1010']);
  assert.deepEqual(r.resources.map((x) => x.kind).sort(), ['AuthorizationPolicy', 'AuthorizationPolicy', 'AuthorizationPolicy', 'DestinationRule', 'VirtualService']);
});
