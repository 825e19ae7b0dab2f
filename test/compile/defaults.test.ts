import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, DEFAULT_ROWS } from '../../src/compile/index.js';
import type { Cluster, ForwardAction, Snapshot } from '../../src/protocol/snapshot.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';

// A mesh where the YAML is silent about everything the table covers, plus
// one VirtualService that names fields without values for them.
const base = meshFromYaml(`${TWO_SERVICES}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web]
  http:
  - match: [{ uri: { prefix: /old } }]
    redirect: { uri: /new }
  - match: [{ uri: { prefix: /faulty } }]
    fault: { abort: { httpStatus: 503 }, delay: { fixedDelay: 1s } }
    route: [{ destination: { host: web } }]
  - route: [{ destination: { host: web } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web-outlier, namespace: shop }
spec:
  host: web
  trafficPolicy: { outlierDetection: {} }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external, namespace: shop }
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ name: http, number: 80, protocol: HTTP }]
`);
const snap = compile(base.config, base.registry, { workload: 'web-v1', namespace: 'shop' });
const cluster = (name: string): Cluster => {
  const c = snap.clusters.find((x) => x.name === name);
  assert.ok(c, `cluster ${name} in ${snap.clusters.map((x) => x.name).join(', ')}`);
  return c;
};
const api = () => cluster('outbound|80||api.shop.svc.cluster.local');
const webRoutes = () => snap.outbound.http.find((t) => t.port === 80)!.virtualHosts.find((v) => v.name === 'web.shop.svc.cluster.local:80')!.routes;
const apiForward = () => snap.outbound.http.find((t) => t.port === 80)!.virtualHosts.find((v) => v.name === 'api.shop.svc.cluster.local:80')!.routes[0]!.action as ForwardAction;

const checks: Record<string, (s: Snapshot) => void> = {
  'MeshConfig.trustDomain': (s) => assert.equal(s.mesh.trustDomain, 'cluster.local'),
  'MeshConfig.rootNamespace': (s) => assert.equal(s.mesh.rootNamespace, 'istio-system'),
  'MeshConfig.outboundTrafficPolicy.mode': (s) => assert.equal(s.mesh.outboundTrafficPolicy, 'ALLOW_ANY'),
  'MeshConfig.pathNormalization.normalization': (s) => assert.equal(s.mesh.pathNormalization, 'DECODE_AND_MERGE_SLASHES'),
  'MeshConfig.enableAutoMtls': (s) => assert.equal(s.mesh.enableAutoMtls, true),
  'MeshConfig.connectTimeout': (s) => assert.equal(s.mesh.connectTimeoutMs, 10_000),
  'VirtualService http[].timeout': () => assert.equal(apiForward().timeoutMs, 0),
  'VirtualService http[].retries.attempts': () => assert.equal(apiForward().retry.attempts, 2),
  'VirtualService http[].retries.retryOn': () => {
    assert.deepEqual(apiForward().retry.retryOn, ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']);
    assert.deepEqual(apiForward().retry.retriableStatusCodes, [503]);
  },
  'VirtualService http[].retries.perTryTimeout': () => assert.equal(apiForward().retry.perTryTimeoutMs, 0),
  'VirtualService http[].route[].weight': () => assert.deepEqual((webRoutes()[2]!.action as ForwardAction).clusters.map((c) => c.weight), [100]),
  'VirtualService http[].fault.*.percentage': () => {
    const f = (webRoutes()[1]!.action as ForwardAction).fault!;
    assert.equal(f.abort!.percentage, 100);
    assert.equal(f.delay!.percentage, 100);
  },
  'VirtualService http[].redirect.redirectCode': () => {
    const a = webRoutes()[0]!.action;
    assert.equal(a.kind === 'redirect' ? a.status : a.kind, 301);
  },
  'DestinationRule trafficPolicy.loadBalancer.simple': () => assert.equal(api().lb.policy, 'LEAST_REQUEST'),
  'DestinationRule trafficPolicy.loadBalancer.localityLbSetting': () => {
    assert.equal(api().lb.locality.enabled, false, 'no outlier detection on api: locality LB is off');
    assert.equal(cluster('outbound|80||web.shop.svc.cluster.local').lb.locality.enabled, true, 'outlier detection on web: locality LB is on');
  },
  'DestinationRule trafficPolicy.connectionPool.tcp.maxConnections': () => assert.equal(api().connectionPool.maxConnections, 4294967295),
  'DestinationRule trafficPolicy.connectionPool.tcp.connectTimeout': () => assert.equal(api().connectionPool.connectTimeoutMs, 10_000),
  'DestinationRule trafficPolicy.connectionPool.http.http1MaxPendingRequests': () => assert.equal(api().connectionPool.maxPendingRequests, 4294967295),
  'DestinationRule trafficPolicy.connectionPool.http.http2MaxRequests': () => assert.equal(api().connectionPool.maxRequests, 4294967295),
  'DestinationRule trafficPolicy.connectionPool.http.maxRequestsPerConnection': () => assert.equal(api().connectionPool.maxRequestsPerConnection, 0),
  'DestinationRule trafficPolicy.connectionPool.http.maxRetries': () => assert.equal(api().connectionPool.maxRetries, 4294967295),
  'DestinationRule trafficPolicy.connectionPool.http.idleTimeout': () => assert.equal(api().connectionPool.idleTimeoutMs, 3_600_000),
  'DestinationRule trafficPolicy.outlierDetection': () => {
    assert.equal(api().outlierDetection, undefined);
    assert.deepEqual(cluster('outbound|80||web.shop.svc.cluster.local').outlierDetection, {
      consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, minHealthPercent: 0,
    });
  },
  'DestinationRule trafficPolicy.tls.mode': () => {
    assert.equal(api().tls.mode, 'ISTIO_MUTUAL');
    assert.deepEqual(api().tls.subjectAltNames, ['spiffe://cluster.local/ns/shop/sa/api']);
    assert.equal(cluster('outbound|80||api.example.com').tls.mode, 'DISABLE');
  },
  'exportTo (Service, VirtualService, DestinationRule)': () => {
    const other = meshFromYaml(TWO_SERVICES + `---
apiVersion: apps/v1
kind: Deployment
metadata: { name: client, namespace: elsewhere }
spec:
  replicas: 1
  selector: { matchLabels: { app: client } }
  template: { metadata: { labels: { app: client } }, spec: { containers: [{ name: c, image: c }] } }
`);
    const s = compile(other.config, other.registry, { workload: 'client', namespace: 'elsewhere' });
    assert.ok(s.clusters.some((c) => c.name === 'outbound|80|v2|api.shop.svc.cluster.local'), 'a DR in shop is visible from elsewhere');
  },
};

for (const row of DEFAULT_ROWS) {
  test(`default: ${row.setting} = ${row.value}`, () => {
    const check = checks[row.setting];
    assert.ok(check, `the defaults table has a row "${row.setting}" without a test`);
    check(snap);
  });
}
