import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, simulate } from '../../src/compile/index.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';

const EXTRA = `---
apiVersion: v1
kind: Service
metadata: { name: db, namespace: shop }
spec:
  selector: { app: db }
  ports: [{ name: tcp-postgres, port: 5432 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: db, namespace: shop }
spec:
  replicas: 1
  selector: { matchLabels: { app: db } }
  template: { metadata: { labels: { app: db } }, spec: { containers: [{ name: db, image: db }] } }
---
apiVersion: v1
kind: Service
metadata: { name: empty, namespace: shop }
spec:
  selector: { app: nothing-runs-this }
  ports: [{ name: http, port: 80 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - name: moved
    match: [{ uri: { prefix: /v0/ } }]
    redirect: { uri: /v1/, redirectCode: 308 }
  - name: maintenance
    match: [{ queryParams: { maintenance: { exact: "1" } } }]
    directResponse: { status: 503, body: { string: "down for maintenance" } }
  - name: beta
    match: [{ headers: { x-beta: {} } }]
    route: [{ destination: { host: api, subset: beta } }]
  - name: from-web-v2
    match: [{ sourceLabels: { app: web, version: v2 } }]
    route: [{ destination: { host: api, subset: v2 } }]
  - name: rest
    rewrite: { uri: /internal/ }
    route: [{ destination: { host: api, subset: v1 } }]
`;
const mesh = (extra = '') => meshFromYaml(TWO_SERVICES + EXTRA + extra);
const m = mesh();
const web = compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' });
const go = (url: string, headers: Record<string, string> = {}, snap = web) => simulate(snap, { url, headers });

test('simulate: a redirect answers with its status and target', () => {
  const s = go('http://api/v0/items');
  assert.equal(s.outcome, 'REDIRECT');
  assert.equal(s.status, 308);
  assert.equal(s.route?.name, 'moved');
});

test('simulate: a query parameter match gives a direct response', () => {
  const s = go('http://api/items?maintenance=1');
  assert.equal(s.outcome, 'DIRECT_RESPONSE');
  assert.equal(s.status, 503);
  assert.deepEqual(s.route?.action, { kind: 'direct', status: 503, body: 'down for maintenance' });
  assert.equal(go('http://api/items?maintenance=0').route?.name, 'rest');
});

test('simulate: a route to a subset the DestinationRule lacks fails with 503 NC', () => {
  const s = go('http://api/items', { 'x-beta': 'on' });
  assert.equal(s.route?.name, 'beta');
  assert.equal(s.status, 503);
  assert.equal(s.responseFlag, 'NC');
  assert.equal(s.clusters[0]?.found, false);
});

test('simulate: sourceLabels routes apply only to the proxies they name', () => {
  assert.equal(go('http://api/items').route?.name, 'rest');
  const v2 = mesh(`---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web-v2, namespace: shop }
spec:
  replicas: 1
  selector: { matchLabels: { app: web, version: v2 } }
  template: { metadata: { labels: { app: web, version: v2 } }, spec: { containers: [{ name: web, image: web }] } }
`);
  const s = simulate(compile(v2.config, v2.registry, { workload: 'web-v2' }), { url: 'http://api/items' });
  assert.equal(s.route?.name, 'from-web-v2');
  assert.deepEqual(s.clusters.map((c) => c.endpoints.length), [1]);
});

test('simulate: the route keeps its rewrite and names the endpoints of its subset', () => {
  const s = go('http://api.shop/items');
  assert.equal(s.route?.action.kind === 'forward' && s.route.action.rewrite?.uri, '/internal/');
  assert.deepEqual(s.clusters.map((c) => [c.name, c.percent, c.endpoints.length]), [['outbound|80|v1|api.shop.svc.cluster.local', 100, 2]]);
});

test('simulate: a service without endpoints fails with 503 UH', () => {
  const s = go('http://empty/');
  assert.equal(s.outcome, 'FORWARD');
  assert.equal(s.status, 503);
  assert.equal(s.responseFlag, 'UH');
});

test('simulate: a TCP service is proxied as bytes, without HTTP routing', () => {
  const s = go('http://db:5432/');
  assert.equal(s.outcome, 'TCP_PROXY');
  assert.equal(s.listener.protocol, 'TCP');
  assert.deepEqual(s.clusters.map((c) => c.name), ['outbound|5432||db.shop.svc.cluster.local']);
});

test('simulate: unknown hosts pass through with ALLOW_ANY and are refused with REGISTRY_ONLY', () => {
  assert.equal(go('http://example.com/').outcome, 'PASSTHROUGH');
  const strict = mesh(`---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec: { outboundTrafficPolicy: { mode: REGISTRY_ONLY } }
`);
  const s = simulate(compile(strict.config, strict.registry, { workload: 'web-v1' }), { url: 'http://example.com/' });
  assert.equal(s.outcome, 'BLACKHOLE');
  assert.equal(s.status, 502);
});

test('simulate: a known host on a port it does not serve is not routed', () => {
  const s = go('http://api:8080/');
  assert.notEqual(s.outcome, 'FORWARD');
  assert.equal(s.clusters.length, 0);
});

test('MeshConfig access-log settings reach the snapshot, and only when set', () => {
  assert.equal('accessLogFile' in web.mesh, false);
  const logged = mesh(`---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec: { accessLogFile: /dev/stdout, accessLogEncoding: TEXT }
`);
  const s = compile(logged.config, logged.registry, { workload: 'web-v1' });
  assert.equal(s.mesh.accessLogFile, '/dev/stdout');
  assert.equal(s.mesh.accessLogEncoding, 'TEXT');
});

test('simulate: TLS on a TLS port is routed by SNI as the proxy routes it (VirtualService tls), and falls back to the service itself', async () => {
  const { k8sService, k8sDeployment } = await import('../helpers/mesh.js');
  const m = meshFromYaml(`${TWO_SERVICES}---
${k8sService('secure', 'shop', { name: 'tls', port: 443, targetPort: 8443 })}---
${k8sDeployment('secure-v1', 'shop', 'secure', { labels: { version: 'v1' } })}---
${k8sDeployment('secure-v2', 'shop', 'secure', { labels: { version: 'v2' } })}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: secure, namespace: shop }
spec:
  host: secure
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: secure, namespace: shop }
spec:
  hosts: [secure]
  tls:
  - match: [{ port: 443, sniHosts: [secure.shop.svc.cluster.local] }]
    route: [{ destination: { host: secure, subset: v2 } }]
`);
  const snap = compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' });
  const s = simulate(snap, { url: 'https://secure.shop.svc.cluster.local:443/' });
  assert.equal(s.outcome, 'TCP_PROXY');
  assert.deepEqual(s.clusters.map((c) => c.name), ['outbound|443|v2|secure.shop.svc.cluster.local']);
  assert.match(s.reason, /routed by SNI/);
});
