/** DestinationRule subsets → each subset cluster's endpoints: endpoint labels, and the topology labels of the endpoint's locality as Istio's registry adds them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import { selectsEndpoint } from '../../src/registry/endpoints.js';
import { meshFromYaml } from '../helpers/mesh.js';

const entry = (name: string, address: string, locality: string, labels: string) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${name}, namespace: shop }
spec: { address: ${address}, locality: ${locality}, labels: { app: api, ${labels} }, serviceAccount: api }
`;

const YAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.shop.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: 9000 }]
  workloadSelector: { labels: { app: api } }
${entry('api-a', '10.0.0.1', 'eu/z1', 'version: v1')}${entry('api-b', '10.0.0.2', 'eu/z2', 'version: v1')}${entry('api-c', '10.0.0.3', 'us/z1', 'version: v2, topology.kubernetes.io/zone: pinned')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api.shop.internal
  subsets:
  - { name: z1, labels: { topology.kubernetes.io/zone: z1 } }
  - { name: eu-v1, labels: { topology.kubernetes.io/region: eu, version: v1 } }
  - { name: pinned, labels: { topology.kubernetes.io/zone: pinned } }
  - { name: empty-zone, labels: { topology.kubernetes.io/zone: "" } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web, namespace: shop }
spec: { address: 10.0.1.1, labels: { app: web }, serviceAccount: web }
`;

test('a subset on topology labels picks the endpoints of that locality; a label the endpoint carries itself wins; an empty value picks none', () => {
  const m = meshFromYaml(YAML);
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  const s = compile(m.config, m.registry, { workload: 'web', namespace: 'shop' });
  const of = (subset: string) => {
    const i = s.clusters.findIndex((c) => c.service === 'api.shop.internal' && c.subset === subset);
    assert.ok(i >= 0, `cluster of subset ${subset}`);
    return s.endpoints[i]!.endpoints.map((e) => e.address).sort();
  };
  // api-c is in us/z1 by locality but carries zone=pinned itself: its own label wins.
  assert.deepEqual(of('z1'), ['10.0.0.1']);
  assert.deepEqual(of('eu-v1'), ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(of('pinned'), ['10.0.0.3']);
  assert.deepEqual(of('empty-zone'), []);
});

test('selectsEndpoint: an unknown locality never satisfies a topology label; other labels must be carried', () => {
  const unknown = { labels: { app: 'api' }, locality: { region: '', zone: '', subzone: '' } };
  assert.equal(selectsEndpoint({ 'topology.kubernetes.io/zone': 'z1' }, unknown), false);
  assert.equal(selectsEndpoint({ app: 'api' }, unknown), true);
  assert.equal(selectsEndpoint({ 'kubernetes.io/hostname': 'n1' }, unknown), false);
  assert.equal(selectsEndpoint({}, unknown), true);
});
