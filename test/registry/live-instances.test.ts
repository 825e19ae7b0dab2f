/** Live instances over App, WorkloadEntry and ServiceEntry endpoints (src/registry/live.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import { parseYaml } from '../../src/api/load.js';
import { parseHostPort, type LiveInstances } from '../../src/registry/live.js';
import { createRegistry } from '../../src/registry/registry.js';
import { configSource } from '../../src/registry/sources/config-source.js';
import type { Registry } from '../../src/registry/types.js';

const YAML = `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: bank }
spec:
  namespace: bank
  services:
  - name: accounts
    ports: [{ name: http, port: 8080 }]
    workloads:
    - { name: accounts-v1, labels: { version: v1 }, replicas: 2, command: [node, a.js] }
  - name: frontend
    ports: [{ name: http, port: 3000 }]
    command: [node, f.js]
---
apiVersion: v1
kind: Service
metadata: { name: ledger, namespace: bank }
spec:
  selector: { app: ledger }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ledger-vm, namespace: bank }
spec: { address: 10.0.0.7, labels: { app: ledger }, serviceAccount: ledger }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments, namespace: bank }
spec:
  hosts: [payments.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ name: http, number: 80, protocol: HTTP }]
  endpoints: [{ address: 192.0.2.1 }]
`;

function build(instances?: LiveInstances, previous?: Registry): Registry {
  const loaded = parseYaml(YAML, 'live.yaml');
  assert.deepEqual(loaded.diagnostics.filter((d) => d.level === 'error'), []);
  const config = ConfigSet.of(loaded.resources);
  return createRegistry([configSource(config)], { ...(instances ? { instances } : {}), ...(previous ? { previous } : {}) }).registry;
}

const ACCOUNTS = 'accounts.bank.svc.cluster.local';

test('App instances have no address until they register; a registration gives address, port and health', () => {
  const plain = build();
  assert.deepEqual(plain.endpoints(ACCOUNTS, 8080).map((e) => [e.instance, e.address, e.health]), [
    ['accounts-v1.bank#0', undefined, 'UNKNOWN'],
    ['accounts-v1.bank#1', undefined, 'UNKNOWN'],
  ]);
  const r = build(new Map([['accounts-v1.bank#1', { address: '127.0.0.1', port: 41001, healthy: true }], ['frontend.bank', { address: '127.0.0.1', port: 41002, healthy: false }]]));
  assert.deepEqual(r.endpoints(ACCOUNTS, 8080).map((e) => [e.instance, e.address, e.port, e.health]), [
    ['accounts-v1.bank#0', undefined, 8080, 'UNKNOWN'],
    ['accounts-v1.bank#1', '127.0.0.1', 41001, 'HEALTHY'],
  ]);
  assert.deepEqual(r.endpoints('frontend.bank.svc.cluster.local', 3000).map((e) => [e.instance, e.address, e.port, e.health]), [['frontend.bank', '127.0.0.1', 41002, 'UNHEALTHY']]);
});

test('a WorkloadEntry proxy that listens on a wildcard keeps the configured address; ServiceEntry endpoints are never overlaid', () => {
  const r = build(new Map([['ledger-vm.bank', { address: '0.0.0.0', port: 15006, healthy: true }], ['payments.example.com', { address: '127.0.0.1', port: 1, healthy: false }]]));
  assert.deepEqual(r.endpoints('ledger.bank.svc.cluster.local', 80).map((e) => [e.address, e.port, e.health]), [['10.0.0.7', 15006, 'HEALTHY']]);
  const se = r.endpoints('payments.example.com', 80);
  assert.deepEqual(se.map((e) => [e.address, e.port]), [['192.0.2.1', 80]]);
  assert.equal(r.endpointsHash('payments.example.com', 80), build().endpointsHash('payments.example.com', 80));
});

test('an instance that leaves the registrations goes back to what the configuration says', () => {
  const joined = build(new Map([['frontend.bank', { address: '127.0.0.1', port: 41002, healthy: true }]]));
  const left = build(new Map(), joined);
  const plain = build();
  assert.equal(left.endpointsHash('frontend.bank.svc.cluster.local', 3000), plain.endpointsHash('frontend.bank.svc.cluster.local', 3000));
  assert.equal(left.endpoints('frontend.bank.svc.cluster.local', 3000)[0]!.address, undefined);
  assert.equal(left.endpoints(ACCOUNTS, 8080), joined.endpoints(ACCOUNTS, 8080), 'untouched lists keep their identity');
});

test('parseHostPort reads host:port, [v6]:port, and rejects the rest', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:15006'), { address: '127.0.0.1', port: 15006 });
  assert.deepEqual(parseHostPort('[::1]:80'), { address: '::1', port: 80 });
  assert.deepEqual(parseHostPort(':80'), { address: '', port: 80 });
  for (const bad of [undefined, '', '127.0.0.1', '127.0.0.1:0', 'h:70000', 'h:x']) assert.equal(parseHostPort(bad), undefined, String(bad));
});
