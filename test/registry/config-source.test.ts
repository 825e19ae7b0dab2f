import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import { loadConfig, parseYaml } from '../../src/api/load.js';
import { hostMatches, hostsOverlap, resolveHost, shortNames } from '../../src/registry/host.js';
import { parseSpiffeId, spiffeId } from '../../src/registry/identity.js';
import { parseProtocol, protocolOf } from '../../src/registry/protocol.js';
import { createRegistry } from '../../src/registry/registry.js';
import { configSource } from '../../src/registry/sources/config-source.js';
import type { LiveInstances } from '../../src/registry/live.js';
import type { Registry } from '../../src/registry/types.js';
import { runRegistryContract, type RegistryFixture } from './contract.js';

/** A fixture as Kubernetes YAML: a Service per service, a Deployment per workload. */
function fixtureYaml(f: RegistryFixture): string {
  const docs: unknown[] = [];
  for (const s of f.services) {
    docs.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, namespace: s.namespace }, spec: { selector: s.selector, ports: s.ports } });
  }
  for (const w of f.workloads) {
    const topology = w.locality ? { 'topology.kubernetes.io/region': w.locality.region, 'topology.kubernetes.io/zone': w.locality.zone } : {};
    docs.push({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: w.name, namespace: w.namespace },
      spec: {
        replicas: w.replicas,
        selector: { matchLabels: w.labels },
        template: {
          metadata: { labels: { ...w.labels, ...topology } },
          spec: { serviceAccountName: w.serviceAccount, containers: [{ name: 'app', ports: Object.entries(w.ports).map(([name, containerPort]) => ({ name, containerPort })) }] },
        },
      },
    });
  }
  return docs.map((d) => JSON.stringify(d)).join('\n---\n');
}

/** Loads YAML text and builds a registry from it; fails the test on configuration errors. */
function registryOf(text: string, opts: { trustDomain?: string; instances?: LiveInstances; previous?: Registry } = {}): { registry: Registry; diagnostics: readonly { code: string; message: string }[] } {
  const loaded = parseYaml(text, 'test.yaml');
  assert.deepEqual(loaded.diagnostics.filter((d) => d.level === 'error'), []);
  const config = ConfigSet.of(loaded.resources, loaded.diagnostics);
  return createRegistry([configSource(config, opts)], opts);
}

runRegistryContract('config source', (fixture, opts) => registryOf(fixtureYaml(fixture), opts).registry);

test('host resolution follows Istio short names and the Kubernetes search path', () => {
  const namespaces = new Set(['default', 'prod']);
  const rows: [string, string, string][] = [
    ['reviews', 'default', 'reviews.default.svc.cluster.local'],
    ['Reviews', 'default', 'reviews.default.svc.cluster.local'],
    ['reviews.prod', 'default', 'reviews.prod.svc.cluster.local'],
    ['reviews.unknown', 'default', 'reviews.unknown'],
    ['reviews.prod.svc', 'default', 'reviews.prod.svc.cluster.local'],
    ['reviews.prod.svc.cluster.local', 'default', 'reviews.prod.svc.cluster.local'],
    ['api.example.com', 'default', 'api.example.com'],
    ['api.example.com.', 'default', 'api.example.com'],
    ['*.example.com', 'default', '*.example.com'],
    ['*', 'default', '*'],
  ];
  for (const [h, ns, want] of rows) assert.equal(resolveHost(h, ns, 'cluster.local', namespaces), want, h);
  assert.equal(resolveHost('reviews.prod', 'default'), 'reviews.prod', 'without known namespaces a two-label name stays');
  assert.equal(resolveHost('reviews.prod', 'default', 'cluster.local', (ns) => ns === 'prod'), 'reviews.prod.svc.cluster.local');
  assert.equal(resolveHost('reviews', 'bank', 'corp.internal'), 'reviews.bank.svc.corp.internal');
});

test('wildcard hosts match like Istio', () => {
  const rows: [string, string, boolean][] = [
    ['*', 'anything.example.com', true],
    ['*.example.com', 'a.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'a.example.org', false],
    ['*.EXAMPLE.com', 'A.example.COM', true],
    ['a.example.com', 'a.example.com', true],
    ['a.example.com', 'b.example.com', false],
    ['a.example.com', '*.example.com', false],
    ['*.example.com', '*.a.example.com', true],
    ['*.a.example.com', '*.example.com', false],
    ['*', '*', true],
  ];
  for (const [p, h, want] of rows) assert.equal(hostMatches(p, h), want, `${p} ~ ${h}`);
  assert.equal(hostsOverlap('*.a.example.com', '*.example.com'), true);
  assert.equal(hostsOverlap('a.example.com', '*.example.com'), true);
  assert.equal(hostsOverlap('a.example.com', 'b.example.com'), false);
});

test('short names a caller may use for a service', () => {
  assert.deepEqual(shortNames('reviews.default.svc.cluster.local'), ['reviews', 'reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local']);
  assert.deepEqual(shortNames('reviews.default.svc.cluster.local', 'default'), ['reviews', 'reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local']);
  assert.deepEqual(shortNames('reviews.default.svc.cluster.local', 'prod'), ['reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local']);
  assert.deepEqual(shortNames('api.example.com'), ['api.example.com']);
  assert.deepEqual(shortNames('*.example.com'), ['*.example.com']);
  assert.deepEqual(shortNames('reviews.bank.svc.corp', undefined, 'corp'), ['reviews', 'reviews.bank', 'reviews.bank.svc', 'reviews.bank.svc.corp']);
});

test('protocol detection: a row per Istio rule', () => {
  const rows: [string, string | undefined, Parameters<typeof protocolOf>[2], string][] = [
    ['http', undefined, {}, 'HTTP'],
    ['http-web', undefined, {}, 'HTTP'],
    ['HTTP-Web', undefined, {}, 'HTTP'],
    ['http2', undefined, {}, 'HTTP2'],
    ['h2c-api', undefined, {}, 'HTTP2'],
    ['https', undefined, {}, 'HTTPS'],
    ['grpc', undefined, {}, 'GRPC'],
    ['grpc-api', undefined, {}, 'GRPC'],
    ['grpc-web', undefined, {}, 'GRPC-Web'],
    ['grpc-web-ui', undefined, {}, 'GRPC-Web'],
    ['tls-passthrough', undefined, {}, 'TLS'],
    ['tcp-db', undefined, {}, 'TCP'],
    ['udp-dns', undefined, {}, 'UDP'],
    ['mongo', undefined, {}, 'Mongo'],
    ['mysql-primary', undefined, {}, 'MySQL'],
    ['redis', undefined, {}, 'Redis'],
    ['web', undefined, {}, 'UNSPECIFIED'],
    ['', undefined, {}, 'UNSPECIFIED'],
    ['httpx', undefined, {}, 'UNSPECIFIED'],
    ['web', 'http', {}, 'HTTP'],
    ['http', 'grpc', {}, 'GRPC'],
    ['http', 'custom.io/thing', {}, 'UNSPECIFIED'],
    ['web', 'kubernetes.io/h2c', {}, 'HTTP2'],
    ['web', 'kubernetes.io/ws', {}, 'HTTP'],
    ['web', 'kubernetes.io/wss', {}, 'HTTPS'],
    ['web', 'HTTP2', {}, 'HTTP2'],
    ['http', undefined, { transport: 'UDP' }, 'UDP'],
    ['', undefined, { port: 3306 }, 'TCP'],
    ['', undefined, { port: 27017 }, 'TCP'],
    ['', undefined, { port: 25 }, 'TCP'],
    ['', undefined, { port: 53 }, 'TCP'],
    ['http', undefined, { port: 3306 }, 'HTTP'],
    ['', undefined, { port: 8080 }, 'UNSPECIFIED'],
  ];
  for (const [name, app, opts, want] of rows) assert.equal(protocolOf(name, app, opts), want, `${name} / ${app} / ${JSON.stringify(opts)}`);
  assert.equal(parseProtocol('HTTPS'), 'HTTPS');
  assert.equal(parseProtocol('Mongo'), 'Mongo');
  assert.equal(parseProtocol('http_proxy'), 'HTTP');
  assert.equal(parseProtocol('http-web'), undefined, 'a ServiceEntry protocol is a whole name, not a prefix');
});

test('SPIFFE identities', () => {
  assert.equal(spiffeId('cluster.local', 'default', 'bookinfo-reviews'), 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
  assert.deepEqual(parseSpiffeId('spiffe://corp/ns/bank/sa/accounts'), { trustDomain: 'corp', namespace: 'bank', serviceAccount: 'accounts' });
  assert.equal(parseSpiffeId('spiffe://corp/workload/x'), undefined);
});

test('Bookinfo: four services in default, reviews served by three versions as bookinfo-reviews', () => {
  const config = loadConfig([join(process.env.TRELLIS_ROOT ?? join(new URL('.', import.meta.url).pathname, '..', '..', '..'), 'test/fixtures/istio-samples/bookinfo/platform/kube/bookinfo.yaml')]);
  assert.deepEqual(config.errors, []);
  const { registry, diagnostics } = createRegistry([configSource(config)]);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(registry.services().map((s) => `${s.name}.${s.namespace}`), ['details.default', 'productpage.default', 'ratings.default', 'reviews.default']);
  const reviews = registry.service('reviews.default.svc.cluster.local')!;
  assert.deepEqual(reviews.ports, [{ name: 'http', port: 9080, targetPort: 9080, protocol: 'HTTP' }]);
  const eps = registry.endpoints(reviews.hostname, 9080);
  assert.deepEqual(eps.map((e) => e.workload), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
  assert.deepEqual(eps.map((e) => e.labels.version), ['v1', 'v2', 'v3']);
  for (const e of eps) {
    assert.equal(e.identity, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.equal(e.port, 9080);
  }
  assert.ok(registry.services().every((s) => s.ports.every((p) => p.protocol === 'HTTP')));
  assert.equal(registry.workload('productpage-v1')!.kind, 'Deployment');
});

test('a named targetPort resolves per workload; a workload without that port gets no endpoint and a warning', () => {
  const { registry, diagnostics } = registryOf(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http-alt}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-a, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: c, ports: [{name: http-alt, containerPort: 8081}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: c, ports: [{name: other, containerPort: 9000}]}]
`);
  assert.deepEqual(registry.endpoints('web.shop.svc.cluster.local', 80).map((e) => [e.workload, e.port]), [['web-a', 8081]]);
  assert.equal(diagnostics.length, 1);
  assert.equal(diagnostics[0]!.code, 'TRL1102');
  assert.match(diagnostics[0]!.message, /"http-alt".*web-b\.shop/);
});

test('Pods: IP, readiness, default service account, topology labels', () => {
  const { registry } = registryOf(`
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {selector: {app: api}, ports: [{port: 8080}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: api-1
  labels: {app: api, topology.kubernetes.io/region: us-east1, topology.kubernetes.io/zone: us-east1-b, topology.istio.io/subzone: rack7}
spec: {containers: [{name: c}]}
status: {podIP: 10.0.0.7, phase: Running, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api-2, labels: {app: api}}
spec: {serviceAccount: legacy, containers: [{name: c}]}
status: {podIP: 10.0.0.8, phase: Pending}
`);
  const eps = registry.endpoints('api.default.svc.cluster.local', 8080);
  assert.deepEqual(eps.map((e) => [e.instance, e.address, e.health, e.serviceAccount]), [
    ['api-1.default', '10.0.0.7', 'HEALTHY', 'default'],
    ['api-2.default', '10.0.0.8', 'UNHEALTHY', 'legacy'],
  ]);
  assert.deepEqual(eps[0]!.locality, { region: 'us-east1', zone: 'us-east1-b', subzone: 'rack7' });
  assert.equal(registry.service('api.default.svc.cluster.local')!.ports[0]!.protocol, 'UNSPECIFIED');
});

test('Deployments: locality from the pod template labels, replicas 1 by default, no address yet', () => {
  const { registry } = registryOf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {topology.kubernetes.io/region: eu}}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api, topology.kubernetes.io/zone: eu-b}}
    spec: {containers: [{name: c}]}
`);
  const w = registry.workload('api')!;
  assert.deepEqual([w.kind, w.replicas, w.address, w.serviceAccount, w.locality], ['Deployment', 1, undefined, 'default', { region: 'eu', zone: 'eu-b', subzone: '' }]);
});

test('Kubernetes Services: exportTo annotation, headless, ExternalName, UDP and appProtocol', () => {
  const { registry } = registryOf(`
apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns1, annotations: {networking.istio.io/exportTo: ".,ns2"}}
spec:
  clusterIP: 10.96.0.10
  selector: {app: a}
  ports: [{name: dns, port: 53, protocol: UDP}, {name: web, port: 80, appProtocol: kubernetes.io/h2c}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: ns1}
spec: {clusterIP: None, selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: search, namespace: ns1}
spec: {type: ExternalName, externalName: search.example.com, ports: [{name: https, port: 443}]}
`);
  const a = registry.service('a.ns1.svc.cluster.local')!;
  assert.deepEqual(a.exportTo, ['ns1', 'ns2']);
  assert.deepEqual(a.addresses, ['10.96.0.10']);
  assert.deepEqual(a.ports.map((p) => p.protocol), ['UDP', 'HTTP2']);
  assert.equal(registry.service('db.ns1.svc.cluster.local')!.resolution, 'NONE');
  const search = registry.service('search.ns1.svc.cluster.local')!;
  assert.deepEqual([search.location, search.resolution, search.selector], ['MESH_EXTERNAL', 'DNS', undefined]);
  assert.deepEqual(registry.endpoints(search.hostname, 443).map((e) => [e.address, e.port, e.identity]), [['search.example.com', 443, '']]);
});

const SERVICE_ENTRIES = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: bank}
spec:
  hosts: [api.payments.example, API.Payments2.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{name: https, number: 443, protocol: HTTPS}, {name: http, number: 80, protocol: HTTP, targetPort: 8080}]
  endpoints:
  - {address: eu.payments.example, locality: eu/eu-1, weight: 3}
  - {address: us.payments.example, ports: {http: 9090}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: bank}
spec:
  hosts: [legacy.bank.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  exportTo: ["."]
  ports: [{name: tcp, number: 5000, protocol: TCP}]
  endpoints:
  - {address: 10.1.0.1, serviceAccount: legacy}
  - {address: 10.1.0.2}
`;

test('ServiceEntry endpoints become static endpoints of every host and port', () => {
  const { registry, diagnostics } = registryOf(SERVICE_ENTRIES);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(registry.services().map((s) => s.hostname), ['api.payments.example', 'api.payments2.example', 'legacy.bank.internal']);
  const svc = registry.service('api.payments2.example')!;
  assert.deepEqual([svc.name, svc.namespace, svc.resolution, svc.location, svc.exportTo, svc.source], ['api.payments2.example', 'bank', 'DNS', 'MESH_EXTERNAL', ['*'], 'ServiceEntry bank/payments']);
  assert.deepEqual(svc.ports.map((p) => [p.name, p.port, p.targetPort, p.protocol]), [['https', 443, 443, 'HTTPS'], ['http', 80, 8080, 'HTTP']]);
  const http = registry.endpoints('api.payments.example', 80);
  assert.deepEqual(http.map((e) => [e.instance, e.address, e.port, e.weight, e.locality.zone, e.identity]), [
    ['payments.bank#0', 'eu.payments.example', 8080, 3, 'eu-1', ''],
    ['payments.bank#1', 'us.payments.example', 9090, 1, '', ''],
  ]);
  assert.deepEqual(registry.endpoints('api.payments.example', 443).map((e) => e.port), [443, 443]);
  const legacy = registry.endpoints('legacy.bank.internal', 5000);
  assert.deepEqual(legacy.map((e) => [e.address, e.serviceAccount, e.identity]), [
    ['10.1.0.1', 'legacy', 'spiffe://cluster.local/ns/bank/sa/legacy'],
    ['10.1.0.2', 'default', 'spiffe://cluster.local/ns/bank/sa/default'],
  ]);
  assert.deepEqual(registry.service('legacy.bank.internal')!.exportTo, ['bank']);
});

test('a ServiceEntry selector picks WorkloadEntries and Pods; a WorkloadEntry port named like the service port wins', () => {
  const { registry } = registryOf(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mysql, namespace: db}
spec:
  hosts: [mysql.db.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: tcp-mysql, number: 3306, protocol: TCP, targetPort: 3307}]
  workloadSelector: {labels: {app: mysql}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: db}
spec: {address: 192.168.1.10, labels: {app: mysql}, serviceAccount: mysql, locality: eu/eu-a/r1, weight: 2, ports: {tcp-mysql: 13306}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: db}
spec: {address: 192.168.1.11, labels: {app: mysql}}
---
apiVersion: v1
kind: Pod
metadata: {name: mysql-pod, namespace: db, labels: {app: mysql}}
spec: {serviceAccountName: mysql, containers: [{name: c}]}
status: {podIP: 10.0.0.3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-3, namespace: other}
spec: {address: 192.168.1.12, labels: {app: mysql}}
`);
  const eps = registry.endpoints('mysql.db.internal', 3306);
  assert.deepEqual(eps.map((e) => [e.instance, e.address, e.port, e.weight, e.identity]), [
    ['mysql-pod.db', '10.0.0.3', 3307, 1, 'spiffe://cluster.local/ns/db/sa/mysql'],
    ['vm-1.db', '192.168.1.10', 13306, 2, 'spiffe://cluster.local/ns/db/sa/mysql'],
    ['vm-2.db', '192.168.1.11', 3307, 1, 'spiffe://cluster.local/ns/db/sa/default'],
  ]);
  assert.deepEqual(eps[1]!.locality, { region: 'eu', zone: 'eu-a', subzone: 'r1' });
  assert.equal(eps[1]!.health, 'HEALTHY');
  const vm = registry.workload('vm-1')!;
  assert.deepEqual([vm.kind, vm.address, vm.replicas, vm.ports], ['WorkloadEntry', '192.168.1.10', 1, { 'tcp-mysql': 13306 }]);
});

test('a Kubernetes Service selects WorkloadEntries too', () => {
  const { registry } = registryOf(`
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec: {selector: {app: ratings}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-vm}
spec: {address: 10.2.0.1, labels: {app: ratings}, serviceAccount: ratings}
`);
  assert.deepEqual(registry.endpoints('ratings.default.svc.cluster.local', 9080).map((e) => [e.instance, e.address, e.port]), [['ratings-vm.default', '10.2.0.1', 9080]]);
});

const BANK = `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: {name: bank}
spec:
  namespace: bank
  services:
  - name: accounts
    labels: {tier: backend}
    ports: [{name: http, port: 8080, targetPort: 9000}, {name: grpc-admin, port: 9090}]
    workloads:
    - name: accounts-v1
      labels: {version: v1}
      replicas: 2
      command: [node, services/accounts.js]
      placement: [{region: eu-west, zone: eu-west-a}, {region: eu-west, zone: eu-west-b}]
    - name: accounts-v2
      labels: {version: v2}
      command: [node, services/accounts.js]
      placement: [{region: eu-west, zone: eu-west-c}]
  - name: frontend
    namespace: web
    ports: [{port: 3000, appProtocol: http}]
    command: node services/frontend.js
    replicas: 0
`;

test('an App manifest: services, workloads, replicas placed per instance, identities', () => {
  const { registry, diagnostics } = registryOf(BANK, { trustDomain: 'bank.example' });
  assert.deepEqual(diagnostics, []);
  const accounts = registry.service('accounts.bank.svc.cluster.local')!;
  assert.deepEqual([accounts.selector, accounts.labels, accounts.source], [{ app: 'accounts' }, { tier: 'backend' }, 'App bank']);
  assert.deepEqual(accounts.ports.map((p) => [p.name, p.port, p.targetPort, p.protocol]), [['http', 8080, 9000, 'HTTP'], ['grpc-admin', 9090, 9090, 'GRPC']]);
  const eps = registry.endpoints(accounts.hostname, 8080);
  assert.deepEqual(eps.map((e) => [e.instance, e.port, e.locality.zone, e.labels.version, e.identity]), [
    ['accounts-v1.bank#0', 9000, 'eu-west-a', 'v1', 'spiffe://bank.example/ns/bank/sa/accounts'],
    ['accounts-v1.bank#1', 9000, 'eu-west-b', 'v1', 'spiffe://bank.example/ns/bank/sa/accounts'],
    ['accounts-v2.bank', 9000, 'eu-west-c', 'v2', 'spiffe://bank.example/ns/bank/sa/accounts'],
  ]);
  assert.deepEqual(registry.endpoints(accounts.hostname, 9090).map((e) => e.port), [9090, 9090, 9090]);
  const v1 = registry.workload('accounts-v1')!;
  assert.deepEqual([v1.kind, v1.replicas, v1.labels, v1.source, v1.address], ['App', 2, { version: 'v1', app: 'accounts' }, 'App bank', undefined]);
  const frontend = registry.workload('frontend', 'web')!;
  assert.deepEqual([frontend.replicas, frontend.serviceAccount, frontend.locality], [0, 'frontend', { region: '', zone: '', subzone: '' }]);
  assert.equal(registry.service('frontend.web.svc.cluster.local')!.ports[0]!.protocol, 'HTTP');
  assert.deepEqual(registry.endpoints('frontend.web.svc.cluster.local', 3000), []);
  assert.deepEqual(registry.namespaces(), ['bank', 'web']);
});

test('a hostname declared twice keeps the first and reports the second; endpoints are not merged', () => {
  const a = parseYaml(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: first, namespace: ns}
spec:
  hosts: [api.example.com]
  resolution: STATIC
  ports: [{name: http, number: 80, protocol: HTTP}]
  endpoints: [{address: 1.1.1.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: second, namespace: ns}
spec:
  hosts: [api.example.com]
  resolution: STATIC
  ports: [{name: http, number: 80, protocol: HTTP}]
  endpoints: [{address: 2.2.2.2}]
`, 'se.yaml');
  const { registry, diagnostics } = createRegistry([configSource(ConfigSet.of(a.resources))]);
  assert.equal(registry.service('api.example.com')!.source, 'ServiceEntry ns/first');
  assert.deepEqual(registry.endpoints('api.example.com', 80).map((e) => e.address), ['1.1.1.1']);
  assert.equal(diagnostics.length, 1);
  assert.deepEqual([diagnostics[0]!.code, diagnostics[0]!.resource, diagnostics[0]!.position?.line], ['TRL1101', 'ServiceEntry ns/second', 11]);

  const other = parseYaml(`
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {selector: {app: api}, ports: [{port: 80}]}
`, 'svc.yaml');
  const two = createRegistry([configSource(ConfigSet.of(other.resources), { name: 'one' }), configSource(ConfigSet.of(other.resources), { name: 'two' })]);
  assert.equal(two.registry.services().length, 1);
  assert.deepEqual(two.diagnostics.map((d) => d.code), ['TRL1101']);
});

test('a workload declared twice in a namespace is reported; the first is kept', () => {
  const { registry, diagnostics } = registryOf(`
apiVersion: v1
kind: Pod
metadata: {name: api, labels: {from: pod}}
spec: {containers: [{name: c}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api}
spec: {address: 10.0.0.1, labels: {from: we}}
`);
  assert.equal(registry.workloads().length, 1);
  assert.equal(registry.workload('api')!.labels.from, 'pod');
  assert.deepEqual(diagnostics.map((d) => [d.code, d.message.includes('WorkloadEntry default/api')]), [['TRL1103', true]]);
});

test('namespaces come from Namespace and ServiceAccount resources too', () => {
  const { registry } = registryOf(`
apiVersion: v1
kind: Namespace
metadata: {name: empty}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: robots}
`);
  assert.deepEqual(registry.namespaces(), ['empty', 'robots']);
});

test('a rebuild keeps the identity of what did not change', () => {
  const text = fixtureYaml({
    services: [{ name: 'a', namespace: 'default', ports: [{ name: 'http', port: 80, targetPort: 80 }], selector: { app: 'a' } }, { name: 'b', namespace: 'default', ports: [{ name: 'http', port: 80, targetPort: 80 }], selector: { app: 'b' } }],
    workloads: [{ name: 'a', namespace: 'default', labels: { app: 'a' }, replicas: 1, serviceAccount: 'a', ports: {} }, { name: 'b', namespace: 'default', labels: { app: 'b' }, replicas: 1, serviceAccount: 'b', ports: {} }],
  });
  const first = registryOf(text).registry;
  const changed = text.replace('"replicas":1,"selector":{"matchLabels":{"app":"b"}}', '"replicas":2,"selector":{"matchLabels":{"app":"b"}}');
  assert.notEqual(changed, text);
  const loaded = parseYaml(changed, 'x.yaml');
  const next = createRegistry([configSource(ConfigSet.of(loaded.resources))], { previous: first }).registry;
  assert.equal(next.endpoints('a.default.svc.cluster.local', 80), first.endpoints('a.default.svc.cluster.local', 80));
  assert.equal(next.service('a.default.svc.cluster.local'), first.service('a.default.svc.cluster.local'));
  assert.equal(next.workload('a'), first.workload('a'));
  assert.notEqual(next.endpoints('b.default.svc.cluster.local', 80), first.endpoints('b.default.svc.cluster.local', 80));
  assert.equal(next.endpoints('b.default.svc.cluster.local', 80).length, 2);
});
