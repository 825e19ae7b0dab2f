/**
 * Routing on JWT claims (VirtualService `headers` / `withoutHeaders` keys
 * `@request.auth.claims.*`), with real proxies: an ingress gateway whose
 * RequestAuthentication (inline JWKS, real ES256 keys) validates the token
 * before it routes, forwarding to sidecars in front of real apps; and a
 * sidecar, which routes its app's calls before any token is validated and so
 * never knows claims. Also: a client cannot spoof a claim with a header, and
 * routers with no claim condition never read a request's claims.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { compile, simulate } from '../../src/compile/index.js';
import type { RouteRequest } from '../../src/policy/request.js';
import { buildRouter } from '../../src/policy/route-table.js';
import { routeClaimPath } from '../../src/policy/route-match.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';
import { RunningMesh } from '../helpers/proxy.js';

const ISSUER = 'https://idp.example';
const GATEWAY_FILES = ['test/fixtures/ingress-gateway.yaml'];

let privateKey: CryptoKey;
let otherKey: CryptoKey;
let jwk: JWK;

const now = () => Math.floor(Date.now() / 1000);

/** A token of ISSUER for alice with `claims` added, valid for an hour; signed by `key` (the published one by default). */
function token(claims: JWTPayload, key: CryptoKey = privateKey): Promise<string> {
  return new SignJWT({ iss: ISSUER, sub: 'alice', iat: now(), exp: now() + 3600, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
    .sign(key);
}
const bearer = async (claims: JWTPayload, key?: CryptoKey) => ({ authorization: `Bearer ${await token(claims, key)}` });

const SERVICES = [
  k8sService('admin', 'default', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('admin-v1', 'default', 'admin'),
  k8sService('web', 'default', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'default', 'web'),
].join('---\n');

/** The claim rules, first match wins; the last rule takes the rest to web. */
const CLAIM_RULES = `
  - name: by-group
    match: [{ headers: { "@request.auth.claims.group": { exact: admins } } }]
    route: [{ destination: { host: admin.default.svc.cluster.local } }]
  - name: by-nested
    match: [{ headers: { "@request.auth.claims.org.team": { exact: payments } } }]
    directResponse: { status: 200, body: { string: nested } }
  - name: by-list
    match: [{ headers: { "@request.auth.claims.roles": { prefix: audit } } }]
    directResponse: { status: 200, body: { string: list } }
  - name: by-scope
    match: [{ headers: { "@request.auth.claims.scope": { exact: write } } }]
    directResponse: { status: 200, body: { string: scope } }
  - name: by-bracket
    match: [{ headers: { "@request.auth.claims[tier.name]": { regex: "gold|platinum" } } }]
    directResponse: { status: 200, body: { string: bracket } }
  - name: anonymous
    match: [{ uri: { prefix: /anon }, withoutHeaders: { "@request.auth.claims.iss": {} } }]
    directResponse: { status: 200, body: { string: anonymous } }
  - name: rest
    route: [{ destination: { host: web.default.svc.cluster.local } }]
`;

const GATEWAY_YAML = `${SERVICES}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [public]
  http:${CLAIM_RULES}`;

const requestAuthn = () => `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ingress-jwt, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  jwtRules: [{ issuer: "${ISSUER}", jwks: ${JSON.stringify(JSON.stringify({ keys: [jwk] }))} }]
`;

before(async () => {
  const k = await generateKeyPair('ES256', { extractable: true });
  privateKey = k.privateKey;
  jwk = { ...(await exportJWK(k.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  otherKey = (await generateKeyPair('ES256')).privateKey;
});

test('claim keys are read as Istio reads them: `.` for nested claims, `[a][b]` for names with dots; anything else is a header name', () => {
  assert.deepEqual(routeClaimPath('@request.auth.claims.group'), ['group']);
  assert.deepEqual(routeClaimPath('@request.auth.claims.org.team'), ['org', 'team']);
  assert.deepEqual(routeClaimPath('@request.auth.claims[tier.name]'), ['tier.name']);
  assert.deepEqual(routeClaimPath('@request.auth.claims[a][b]'), ['a', 'b']);
  assert.deepEqual(routeClaimPath('@request.auth.claims.[a]'), ['[a]']);
  for (const header of ['@request.auth.claims', '@request.auth.claims.', '@request.auth.claimsgroup', '@request.auth.claims[a', '@request.auth.claims[]', 'x-group']) {
    assert.equal(routeClaimPath(header), undefined, header);
  }
});

describe('at a gateway with RequestAuthentication', () => {
  let mesh: RunningMesh;
  before(async () => {
    mesh = await RunningMesh.start({
      yaml: GATEWAY_YAML + requestAuthn(), files: GATEWAY_FILES,
      caller: { workload: 'istio-ingressgateway', namespace: 'istio-system' }, gatewayPorts: [8080],
    });
  });
  after(async () => { await mesh?.close(); });

  const shop = (headers: Record<string, string> = {}, path = '/') => mesh.call(path, { headers: { host: 'shop.example.com', ...headers } });
  const servedBy = (r: { status: number; text: string; json: () => { app: string } }) => (r.status === 200 && r.text.startsWith('{') ? r.json().app : r.text);

  test('a valid token with the claim takes the claim route (to a real app behind its sidecar); another value, no claim or no token do not', async () => {
    assert.equal(mesh.snapshot.node.kind, 'gateway');
    assert.equal(servedBy(await shop(await bearer({ group: 'admins' }))), 'admin-v1.default');
    assert.equal(servedBy(await shop(await bearer({ group: 'users' }))), 'web-v1.default', 'another value');
    assert.equal(servedBy(await shop(await bearer({ groups: ['admins'] }))), 'web-v1.default', 'another claim');
    assert.equal(servedBy(await shop(await bearer({ group: 'Admins' }))), 'web-v1.default', 'exact is case-sensitive');
    assert.equal(servedBy(await shop()), 'web-v1.default', 'no token');
  });

  test('an invalid token never reaches routing: 401, whatever its claims say', async () => {
    const admin = mesh.callees.get('admin-v1.default')!.app;
    const hits = admin.hits;
    for (const [what, headers] of [
      ['signed by another key', await bearer({ group: 'admins' }, otherKey)],
      ['expired', await bearer({ group: 'admins', exp: now() - 3600 })],
      ['not a JWT', { authorization: 'Bearer not.a.jwt' }],
    ] as const) {
      const r = await shop(headers);
      assert.equal(r.status, 401, `${what}: ${r.text}`);
      assert.match(r.text, /Jwt verification fails/);
    }
    assert.equal(admin.hits, hits, 'none of them reached admin');
  });

  test('nested claims, list claims (any element), space-delimited scope and bracketed names with dots', async () => {
    assert.equal((await shop(await bearer({ org: { team: 'payments' } }))).text, 'nested');
    assert.equal(servedBy(await shop(await bearer({ org: { team: 'billing' } }))), 'web-v1.default');
    assert.equal(servedBy(await shop(await bearer({ 'org.team': 'payments' }))), 'web-v1.default', 'a top-level "org.team" is not the nested claim');
    assert.equal((await shop(await bearer({ roles: ['reader', 'auditor'] }))).text, 'list', 'one element of the list matches the prefix');
    assert.equal(servedBy(await shop(await bearer({ roles: ['reader', 'writer'] }))), 'web-v1.default');
    assert.equal(servedBy(await shop(await bearer({ roles: [{ name: 'auditor' }] }))), 'web-v1.default', 'objects in a list match no string');
    assert.equal((await shop(await bearer({ scope: 'read write' }))).text, 'scope', 'scope is space-delimited, so a list');
    assert.equal(servedBy(await shop(await bearer({ scope: 'read' }))), 'web-v1.default');
    assert.equal((await shop(await bearer({ 'tier.name': 'platinum' }))).text, 'bracket');
    assert.equal(servedBy(await shop(await bearer({ tier: { name: 'gold' } }))), 'web-v1.default', '[tier.name] is one claim name, not a path');
  });

  test('withoutHeaders on a claim: holds without a token, not with a valid one', async () => {
    assert.equal((await shop({}, '/anon')).text, 'anonymous');
    assert.equal(servedBy(await shop(await bearer({}), '/anon')), 'web-v1.default');
  });

  test('a client cannot spoof a claim with a header', async () => {
    // Node's parser refuses a header name with "@" (not an HTTP token character): 400 before any routing.
    const raw = await rawRequest(mesh.caller.addresses.gateway![8080]!, 'GET / HTTP/1.1\r\nhost: shop.example.com\r\n@request.auth.claims.group: admins\r\nconnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 400 /);
    // Headers a parser would let through (other transports, a lenient parser) are still not claims: the router reads only the verified payload.
    const router = buildRouter(mesh.snapshot);
    const rr = (headers: RouteRequest['headers'], claims?: RouteRequest['claims']): RouteRequest => ({ port: 8080, host: 'shop.example.com', path: '/', method: 'GET', scheme: 'http', headers, claims });
    const spoof = { '@request.auth.claims.group': 'admins', '@request.auth.claims[tier.name]': 'gold', group: 'admins' };
    const d = router.route(rr(spoof));
    assert.ok(d.ok && d.route.name === 'rest', 'spoofed claim headers take the default route');
    const anon = router.route({ ...rr({ '@request.auth.claims.iss': ISSUER }), path: '/anon' });
    assert.ok(anon.ok && anon.route.name === 'anonymous', 'a header does not make a claim present either');
    const real = router.route(rr({}, { group: 'admins' }));
    assert.ok(real.ok && real.route.name === 'by-group', 'control: the same router routes on real claims');
    const viaHeader = await shop({ 'x-jwt-claims': '{"group":"admins"}', 'x-group': 'admins' });
    assert.equal(servedBy(viaHeader), 'web-v1.default');
  });

  test('simulate takes claims as a valid token would give them, and says the outcome depends on the token', () => {
    const none = simulate(mesh.snapshot, { url: 'http://shop.example.com:8080/' });
    assert.equal(none.route?.name, 'rest');
    assert.match(none.reason, /match on JWT claims, evaluated as for a request without a valid token \(give claims/);
    const admins = simulate(mesh.snapshot, { url: 'http://shop.example.com:8080/', claims: { group: 'admins' } });
    assert.equal(admins.route?.name, 'by-group');
    assert.match(admins.reason, /evaluated with the claims given/);
    assert.equal(simulate(mesh.snapshot, { url: 'http://shop.example.com:8080/', claims: { roles: ['auditor'] } }).route?.name, 'by-list');
  });
});

describe('at a sidecar (routing before any token is validated)', () => {
  let mesh: RunningMesh;
  const SIDECAR_YAML = `${SERVICES}---
${k8sDeployment('client-v1', 'default', 'client')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  http:
  - name: by-group
    match: [{ headers: { "@request.auth.claims.group": { exact: admins } } }]
    route: [{ destination: { host: admin.default.svc.cluster.local } }]
  - name: not-admin
    match: [{ uri: { prefix: /anon }, withoutHeaders: { "@request.auth.claims.group": {} } }]
    directResponse: { status: 200, body: { string: anonymous } }
  - name: rest
    route: [{ destination: { host: web.default.svc.cluster.local } }]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: all-jwt, namespace: default }
spec:
  jwtRules: [{ issuer: "${ISSUER}", forwardOriginalToken: true, jwks: JWKS }]
`;
  before(async () => {
    mesh = await RunningMesh.start({
      yaml: SIDECAR_YAML.replace('JWKS', JSON.stringify(JSON.stringify({ keys: [jwk] }))),
      caller: { workload: 'client-v1', namespace: 'default' },
    });
  });
  after(async () => { await mesh?.close(); });

  test('a claim match never holds and a claim in withoutHeaders always holds, even with a valid token (validated later, at the destination)', async () => {
    assert.equal(mesh.snapshot.node.kind, 'sidecar');
    assert.ok(mesh.snapshot.requestAuthn?.rules.length, 'the caller\'s own workload has RequestAuthentication (for its inbound)');
    const r = await mesh.call('http://web/', { headers: await bearer({ group: 'admins' }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().app, 'web-v1.default');
    assert.equal(mesh.callees.get('admin-v1.default')!.app.hits, 0);
    assert.equal((await mesh.call('http://web/anon', { headers: await bearer({ group: 'admins' }) })).text, 'anonymous');
    const sim = simulate(mesh.snapshot, { url: 'http://web/', claims: { group: 'admins' } });
    assert.equal(sim.route?.name, 'rest', 'simulate of a sidecar ignores claims, as its proxy does');
    assert.match(sim.reason, /which a sidecar never knows/);
  });
});

test('no extra work for claims where no route uses them: the router never reads the request\'s claims', () => {
  let reads = 0;
  const probe = (base: Omit<RouteRequest, 'claims'>): RouteRequest => ({ ...base, get claims() { reads++; return { group: 'admins' }; } });
  const base = { port: 8080, host: 'shop.example.com', path: '/', method: 'GET', scheme: 'http', headers: { 'x-group': 'admins' } };
  // A gateway whose routes match headers only.
  const plain = meshFromYaml(GATEWAY_YAML.replace(CLAIM_RULES, `
  - name: by-header
    match: [{ headers: { x-group: { exact: admins } } }]
    route: [{ destination: { host: admin.default.svc.cluster.local } }]
  - route: [{ destination: { host: web.default.svc.cluster.local } }]
`) + requestAuthn(), ...GATEWAY_FILES);
  const gw = buildRouter(compile(plain.config, plain.registry, { workload: 'istio-ingressgateway', namespace: 'istio-system' }));
  for (let i = 0; i < 100; i++) assert.equal((gw.route(probe(base)) as { route: { name: string } }).route.name, 'by-header');
  assert.equal(reads, 0, 'header-only routes do not touch claims');
  // A sidecar with claim routes: decided when the snapshot is applied, no claim test per request.
  const side = meshFromYaml(`${SERVICES}---\n${k8sDeployment('client-v1', 'default', 'client')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web.default.svc.cluster.local]
  http:${CLAIM_RULES}`);
  const sc = buildRouter(compile(side.config, side.registry, { workload: 'client-v1', namespace: 'default' }));
  const d = sc.route(probe({ ...base, port: 80, host: 'web.default.svc.cluster.local', path: '/anon' }));
  assert.ok(d.ok && d.route.name === 'anonymous', 'a claim in withoutHeaders holds at a sidecar');
  assert.equal(reads, 0, 'a sidecar never reads claims');
  // Control: a gateway with claim routes does read them.
  const withClaims = meshFromYaml(GATEWAY_YAML + requestAuthn(), ...GATEWAY_FILES);
  const cg = buildRouter(compile(withClaims.config, withClaims.registry, { workload: 'istio-ingressgateway', namespace: 'istio-system' }));
  assert.equal((cg.route(probe(base)) as { route: { name: string } }).route.name, 'by-group');
  assert.ok(reads > 0, 'control: claim routes read the claims');
});

/** Sends raw bytes and returns what comes back until the server closes. */
function rawRequest(address: string, text: string): Promise<string> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), host!, () => s.write(text));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => { out += c; });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(5000, () => { s.destroy(); resolve(out); });
  });
}
