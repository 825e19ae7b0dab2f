import { test } from 'node:test';
import assert from 'node:assert/strict';
import { affectsProxy, compile, createCompiler, dumpSnapshot } from '../../src/compile/index.js';
import { meshFromYaml, resources, TWO_SERVICES } from '../helpers/mesh.js';

const vs = (weightV1: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - route:
    - { destination: { host: api, subset: v1 }, weight: ${weightV1} }
    - { destination: { host: api, subset: v2 }, weight: ${100 - weightV1} }
`;
const PRIVATE = `---
apiVersion: v1
kind: Service
metadata: { name: vault, namespace: secret, annotations: { networking.istio.io/exportTo: "." } }
spec:
  selector: { app: vault }
  ports: [{ name: http, port: 80 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vault, namespace: secret }
spec:
  hosts: [vault]
  exportTo: ["."]
  http: [{ route: [{ destination: { host: vault } }] }]
`;

test('compile is deterministic: fresh compilers give equal snapshots, versions and dumps', () => {
  const m = meshFromYaml(TWO_SERVICES + '---\n' + vs(90));
  const a = compile(m.config, m.registry, { workload: 'web-v1' });
  const b = compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' });
  assert.equal(a.version, b.version);
  assert.deepEqual(a, b);
  assert.equal(dumpSnapshot(a), dumpSnapshot(b));
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.clusters) && Object.isFrozen(a.outbound.http[0]!.virtualHosts[0]));
});

test('after one VirtualService changes, unchanged parts are the same objects and only the changed one is new', () => {
  const m = meshFromYaml(TWO_SERVICES + '---\n' + vs(90));
  const c = createCompiler();
  const before = c.compile(m.config, m.registry, { workload: 'web-v1' });
  const next = m.config.with(resources(vs(70))[0]!);
  const after = c.compile(next, m.registry, { workload: 'web-v1' });
  assert.notEqual(after.version, before.version);
  const vh = (s: typeof before, name: string) => s.outbound.http[0]!.virtualHosts.find((v) => v.name === name)!;
  assert.equal(vh(after, 'web.shop.svc.cluster.local:80'), vh(before, 'web.shop.svc.cluster.local:80'), 'web virtual host is shared');
  assert.notEqual(vh(after, 'api.shop.svc.cluster.local:80'), vh(before, 'api.shop.svc.cluster.local:80'), 'api virtual host is rebuilt');
  for (let i = 0; i < before.clusters.length; i++) assert.equal(after.clusters[i], before.clusters[i], `cluster ${before.clusters[i]!.name} is shared`);
  for (let i = 0; i < before.endpoints.length; i++) assert.equal(after.endpoints[i], before.endpoints[i]);
  assert.equal(after.node, before.node);
  assert.equal(after.inbound, before.inbound);

  // Back to the first configuration: the very same snapshot parts and version.
  const again = c.compile(m.config, m.registry, { workload: 'web-v1' });
  assert.equal(again.version, before.version);
  assert.equal(again.outbound, before.outbound);
});

test('proxies that see the mesh the same way share one outbound view', () => {
  const m = meshFromYaml(TWO_SERVICES + '---\n' + vs(90));
  const c = createCompiler();
  const a = c.compile(m.config, m.registry, { workload: 'web-v1' });
  const b = c.compile(m.config, m.registry, { workload: 'api-v2' });
  assert.equal(a.outbound, b.outbound);
  assert.equal(a.clusters, b.clusters);
  assert.notEqual(a.version, b.version, 'different nodes, different versions');
});

test('the affects predicate: a change reaches the proxies that can see its host, and no others', () => {
  const m = meshFromYaml(TWO_SERVICES + '---\n' + vs(90) + PRIVATE);
  const web = compile(m.config, m.registry, { workload: 'web-v1' });
  const changedApi = resources(vs(70));
  assert.equal(affectsProxy(web, changedApi), true);
  const vault = resources(PRIVATE.replace('---\n', '').split('---\n')[1]!);
  assert.equal(vault[0]!.kind, 'VirtualService');
  assert.equal(affectsProxy(web, vault), false, 'web cannot see the vault service (exported to its own namespace only)');
  // The predicate agrees with recompiling: the vault change leaves web's version alone.
  const c = createCompiler();
  const before = c.compile(m.config, m.registry, { workload: 'web-v1' });
  const edited = resources(PRIVATE.split('---\n')[2]!.replace('route: [{ destination: { host: vault } }]', 'route: [{ destination: { host: vault } }], timeout: 5s'))[0]!;
  const after = c.compile(m.config.with(edited), m.registry, { workload: 'web-v1' });
  assert.equal(after.version, before.version);
});
