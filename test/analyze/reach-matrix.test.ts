/**
 * The reachability matrix on small meshes written here: no policy allows
 * everything; ALLOW by principal and by namespace; an ALLOW that matches
 * nothing denies everything; DENY beats ALLOW; method and path conditions
 * listed exactly; PeerAuthentication (plaintext row, a DestinationRule that
 * turns mTLS off); a VirtualService rewrite decides on the rewritten path;
 * TCP ports; and every probe's decision equals the proxy's own authorizer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reachMatrix } from '../../src/analyze/reach/matrix.js';
import type { ReachCell, ReachMatrix } from '../../src/analyze/reach/model.js';
import { compile } from '../../src/compile/index.js';
import { buildAuthorizer } from '../../src/policy/authorize.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';

const BASE = [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web', 'shop', 'web'),
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api', 'shop', 'api'),
  k8sService('intruder', 'other', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('intruder', 'other', 'intruder'),
].join('---\n');

function matrix(extra = ''): ReachMatrix {
  const m = meshFromYaml(`${BASE}${extra ? `---\n${extra}` : ''}`);
  return reachMatrix(m.config, m.registry);
}

function cell(m: ReachMatrix, from: string, to: string): ReachCell {
  const c = m.cells.find((x) => x.from === from && x.to === to);
  assert.ok(c, `cell ${from} → ${to} in ${m.cells.map((x) => `${x.from}→${x.to}`).join(', ')}`);
  return c;
}

const policy = (name: string, ns: string, app: string, spec: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ${name}, namespace: ${ns} }
spec:
  selector: { matchLabels: { app: ${app} } }
${spec}`;

test('sources are every workload and plaintext; destinations every service port with workloads', () => {
  const m = matrix();
  assert.deepEqual(m.sources.map((s) => s.id), ['api.shop', 'intruder.other', 'web.shop', 'plaintext']);
  assert.deepEqual(m.destinations.map((d) => d.id), ['api.shop:80', 'intruder.other:80', 'web.shop:80']);
  assert.equal(m.cells.length, 12);
  assert.equal(m.sources[2]!.identity, 'spiffe://cluster.local/ns/shop/sa/web');
});

test('no policy: every request allowed, by default', () => {
  const c = cell(matrix(), 'web.shop', 'api.shop:80');
  assert.equal(c.access, 'all');
  assert.equal(c.summary, 'everything allowed');
  assert.deepEqual(c.probes.map((p) => p.decision.kind), ['default-allow']);
  assert.deepEqual(c.decidedBy, ['default allow: no ALLOW policy selects the workload']);
});

test('ALLOW by principal: that caller gets everything, the others nothing (default deny)', () => {
  const m = matrix(policy('api-callers', 'shop', 'api', `  action: ALLOW
  rules: [{ from: [{ source: { principals: [cluster.local/ns/shop/sa/web] } }] }]`));
  const ok = cell(m, 'web.shop', 'api.shop:80');
  assert.equal(ok.access, 'all');
  assert.deepEqual([ok.probes[0]!.decision.kind, ok.probes[0]!.decision.policy, ok.probes[0]!.decision.rule], ['allow-policy', 'shop/api-callers', 0]);
  const no = cell(m, 'intruder.other', 'api.shop:80');
  assert.equal(no.access, 'none');
  assert.equal(no.probes[0]!.decision.kind, 'default-deny');
  assert.match(no.summary, /^nothing allowed: default deny: ALLOW policies select the workload, none matched$/);
  // Other destinations are untouched.
  assert.equal(cell(m, 'intruder.other', 'web.shop:80').access, 'all');
});

test('ALLOW by namespace: callers of that namespace only', () => {
  const m = matrix(policy('same-ns', 'shop', 'api', `  rules: [{ from: [{ source: { namespaces: [shop] } }] }]`));
  assert.equal(cell(m, 'web.shop', 'api.shop:80').access, 'all');
  assert.equal(cell(m, 'api.shop', 'api.shop:80').access, 'all');
  assert.equal(cell(m, 'intruder.other', 'api.shop:80').access, 'none');
});

test('an ALLOW policy that matches no caller denies everything', () => {
  const m = matrix(policy('nobody', 'shop', 'api', `  rules: [{ from: [{ source: { principals: [cluster.local/ns/shop/sa/ghost] } }] }]`));
  for (const from of ['web.shop', 'api.shop', 'intruder.other']) {
    const c = cell(m, from, 'api.shop:80');
    assert.equal(c.access, 'none', from);
    assert.ok(c.probes.every((p) => p.decision.kind === 'default-deny'));
  }
});

test('DENY beats ALLOW: an ALLOW for everyone of shop, a DENY on /admin*', () => {
  const m = matrix(`${policy('allow-shop', 'shop', 'api', `  rules: [{ from: [{ source: { namespaces: [shop] } }] }]`)}
---
${policy('no-admin', 'shop', 'api', `  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]`)}`);
  const c = cell(m, 'web.shop', 'api.shop:80');
  assert.equal(c.access, 'some');
  assert.equal(c.summary, 'everything except any method /admin*');
  const admin = c.probes.find((p) => p.path === '/admin/x')!;
  assert.deepEqual([admin.verdict, admin.decision.kind, admin.decision.policy, admin.decision.rule], ['denied', 'deny-policy', 'shop/no-admin', 0]);
  const other = c.probes.find((p) => p.pathLabel === 'other paths')!;
  assert.deepEqual([other.verdict, other.decision.policy], ['allowed', 'shop/allow-shop']);
  assert.equal(cell(m, 'intruder.other', 'api.shop:80').access, 'none');
});

test('method and path conditions: each cell lists exactly what is allowed', () => {
  const m = matrix(policy('api-ops', 'shop', 'api', `  rules:
  - from: [{ source: { principals: [cluster.local/ns/shop/sa/web] } }]
    to: [{ operation: { methods: [GET], paths: ["/items/*"] } }, { operation: { methods: [POST], paths: [/orders] } }]`));
  const c = cell(m, 'web.shop', 'api.shop:80');
  assert.equal(c.summary, 'GET /items/*; POST /orders; everything else denied');
  const allowed = c.probes.filter((p) => p.verdict === 'allowed').map((p) => `${p.method} ${p.path}`);
  assert.deepEqual(allowed.sort(), ['GET /items/x', 'POST /orders']);
  // The "any other" requests really are other: a method and a path no rule names.
  const other = c.probes.find((p) => p.methodLabel === 'other methods' && p.pathLabel === 'other paths')!;
  assert.ok(!['GET', 'POST'].includes(other.method) && !other.path.startsWith('/items/') && other.path !== '/orders');
  assert.equal(other.decision.kind, 'default-deny');
  assert.equal(cell(m, 'intruder.other', 'api.shop:80').access, 'none');
});

test('PeerAuthentication: STRICT refuses the plaintext row; PERMISSIVE lets authorization decide', () => {
  const strict = matrix(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }`);
  const c = cell(strict, 'plaintext', 'api.shop:80');
  assert.equal(c.access, 'none');
  assert.equal(c.probes[0]!.decision.kind, 'mtls-refused');
  assert.match(c.probes[0]!.decision.reason, /STRICT on port 80: plaintext is refused/);
  assert.equal(cell(strict, 'web.shop', 'api.shop:80').access, 'all', 'mesh callers use mTLS');
  assert.equal(cell(matrix(), 'plaintext', 'api.shop:80').access, 'all', 'PERMISSIVE (the default) and no policy');
  const withPolicy = matrix(policy('api-callers', 'shop', 'api', `  rules: [{ from: [{ source: { principals: [cluster.local/ns/shop/sa/web] } }] }]`));
  assert.equal(cell(withPolicy, 'plaintext', 'api.shop:80').probes[0]!.decision.kind, 'default-deny', 'no identity matches no principal');
});

test('a DestinationRule that turns mTLS off towards a STRICT port: refused by PeerAuthentication', () => {
  const m = matrix(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: api, namespace: shop }
spec: { selector: { matchLabels: { app: api } }, mtls: { mode: STRICT } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api-plain, namespace: shop }
spec: { host: api, trafficPolicy: { tls: { mode: DISABLE } } }`);
  const c = cell(m, 'web.shop', 'api.shop:80');
  assert.equal(c.access, 'none');
  assert.equal(c.probes[0]!.decision.kind, 'mtls-refused');
  assert.equal(cell(m, 'web.shop', 'web.shop:80').access, 'all');
});

test('the destination decides on the path the caller\'s route rewrote', () => {
  const m = matrix(`${policy('no-admin', 'shop', 'api', `  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]`)}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - match: [{ uri: { prefix: /public } }]
    rewrite: { uri: /admin }
    route: [{ destination: { host: api } }]
  - route: [{ destination: { host: api } }]`);
  const c = cell(m, 'web.shop', 'api.shop:80');
  const pub = c.probes.find((p) => p.pathLabel === '/public*')!;
  assert.equal(pub.path, '/public/x');
  assert.deepEqual([pub.verdict, pub.decision.policy], ['denied', 'shop/no-admin'], '/public/x arrives as /admin/x');
  assert.equal(c.probes.find((p) => p.pathLabel === 'other paths')!.verdict, 'allowed');
});

test('a TCP port is one connection, decided on identity and port', () => {
  const m = meshFromYaml(`${k8sService('db', 'shop', { name: 'tcp', port: 5432, targetPort: 5432 })}---
${k8sDeployment('db', 'shop', 'db')}---
${k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 })}---
${k8sDeployment('web', 'shop', 'web')}---
${policy('db-callers', 'shop', 'db', `  rules: [{ from: [{ source: { principals: [cluster.local/ns/shop/sa/web] } }], to: [{ operation: { ports: ["5432"] } }] }]`)}`);
  const r = reachMatrix(m.config, m.registry);
  const c = cell(r, 'web.shop', 'db.shop:5432');
  assert.deepEqual(c.probes.map((p) => [p.tcp, p.verdict, p.decision.policy]), [[true, 'allowed', 'shop/db-callers']]);
  assert.equal(cell(r, 'db.shop', 'db.shop:5432').access, 'none');
});

test('every probe\'s decision is the proxy authorizer\'s own on the same request', () => {
  const yaml = `${BASE}---\n${policy('api-ops', 'shop', 'api', `  rules:
  - from: [{ source: { namespaces: [shop] } }]
    to: [{ operation: { methods: [GET, DELETE], paths: ["/a/{*}/b", "*.json"] } }]`)}`;
  const m = meshFromYaml(yaml);
  const r = reachMatrix(m.config, m.registry);
  const authorize = buildAuthorizer(compile(m.config, m.registry, { workload: 'api', namespace: 'shop' }).authz);
  let checked = 0;
  for (const c of r.cells.filter((x) => x.to === 'api.shop:80' && x.from !== 'plaintext')) {
    const principal = r.sources.find((s) => s.id === c.from)!.identity!.slice('spiffe://'.length);
    for (const p of c.probes) {
      const d = authorize({ tcp: false, principal, sourceIp: '127.0.0.1', destinationPort: 9000, method: p.method, path: p.path });
      assert.equal(p.verdict === 'allowed', d.allowed, `${c.from} ${p.method} ${p.path}`);
      assert.equal(p.decision.policy, d.policy);
      checked++;
    }
  }
  assert.ok(checked >= 18, `${checked} probes checked`);
  assert.equal(cell(r, 'web.shop', 'api.shop:80').summary, 'DELETE, GET *.json, /a/{*}/b; everything else denied');
});
