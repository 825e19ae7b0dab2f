/**
 * The Gateway and Sidecar analyzers, one YAML mesh per case: what each
 * reports (code, resource, field path, line, advice) and what it leaves
 * alone. Lines are found by `# @marker` comments in the YAML, so a test
 * names the line it expects rather than counting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Diagnostic } from '../../src/api/diagnostic.js';
import { analyzerNamed } from '../../src/analyze/registry.js';
import { runOne } from './helpers.js';

/** Runs one registered analyzer over the YAML; the YAML itself must load without errors. */
function analyze(yaml: string, analyzer: string): Diagnostic[] {
  const a = analyzerNamed(analyzer);
  assert.ok(a, `${analyzer} is registered`);
  return runOne(a, yaml);
}

/** The line (from 1) of the one line holding `# @marker`. */
function lineOf(yaml: string, marker: string): number {
  const lines = yaml.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(`# @${marker}`) ? [i + 1] : []));
  assert.equal(hits.length, 1, `marker @${marker} appears once`);
  return hits[0]!;
}

/** code, resource, field and line of each message, for exact comparison. */
function summary(ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.code} ${d.resource} ${d.field ?? '-'} :${d.position?.line}`).sort();
}

const ingressPod = (name: string, ns: string, labels: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: ${labels} }
spec: { containers: [{ name: proxy }] }
---`;

const gateway = (name: string, ns: string, selector: string, servers: string) => `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: ${name}, namespace: ${ns} }
spec:
  selector: ${selector}
  servers:
${servers}
---`;

const http = (port: number, hosts: string, marker = '') => `  - port: { number: ${port}, name: p${port}, protocol: HTTP }${marker ? ` # @${marker}` : ''}
    hosts: ${hosts}`;

// ---- gateway.selector -------------------------------------------------------

test('gateway.selector: a selector that picks no workload is TRL0101 at spec.selector, with what to fix', () => {
  const yaml = `${ingressPod('gw', 'edge', '{ istio: ingressgateway }')}
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: typo, namespace: web }
spec:
  selector:
    istio: ingresstypo # @typo
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*"]
`;
  const ds = analyze(yaml, 'gateway.selector');
  assert.deepEqual(summary(ds), [`TRL0101 Gateway web/typo spec.selector :${lineOf(yaml, 'typo')}`]);
  assert.match(ds[0]!.message, /labels istio=ingresstypo does not exist in any namespace/);
  assert.match(ds[0]!.message, /correct spec\.selector or declare the gateway workload/);
});

test('gateway.selector: a Gateway without a selector is TRL1430 (Trellis applies it to no workload)', () => {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bare, namespace: web }
spec: # @spec
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: empty, namespace: web }
spec:
  selector: {} # @empty
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*"]
`;
  const ds = analyze(yaml, 'gateway.selector');
  assert.deepEqual(summary(ds), [
    `TRL1430 Gateway web/bare spec :${lineOf(yaml, 'spec') + 1}`,
    `TRL1430 Gateway web/empty spec.selector :${lineOf(yaml, 'empty')}`,
  ]);
  assert.equal(ds[0]!.level, 'warning');
  assert.match(ds[0]!.message, /add spec\.selector/);
});

test('gateway.selector: a selector picking a workload of another namespace (a WorkloadEntry) is fine', () => {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ingress, namespace: istio-system }
spec: { address: 127.0.0.1, labels: { istio: ingressgateway } }
---${gateway('web', 'shop', '{ istio: ingressgateway }', http(80, '["*"]'))}`;
  assert.deepEqual(analyze(yaml, 'gateway.selector'), []);
});

// ---- gateway.conflicts ------------------------------------------------------

test('gateway.conflicts: same selector, same port, overlapping hosts: both Gateways get TRL0145 on the server', () => {
  const yaml = `${ingressPod('gw', 'edge', '{ istio: ingressgateway }')}
${gateway('a', 'edge', '{ istio: ingressgateway }', `${http(443, '["b.example.com"]')}\n${http(80, '["*.example.com"]', 'a80')}`)}
${gateway('b', 'web', '{ istio: ingressgateway }', http(80, '["web/shop.example.com"]', 'b80'))}`;
  const ds = analyze(yaml, 'gateway.conflicts');
  assert.deepEqual(summary(ds), [
    `TRL0145 Gateway edge/a spec.servers[1] :${lineOf(yaml, 'a80')}`,
    `TRL0145 Gateway web/b spec.servers[0] :${lineOf(yaml, 'b80')}`,
  ]);
  const onA = ds.find((d) => d.resource === 'Gateway edge/a')!;
  assert.match(onA.message, /port 80 for hosts \*\.example\.com on the workloads istio=ingressgateway is also served by Gateway web\/b/);
  assert.match(onA.message, /serve these hosts from one Gateway or use distinct ports/);
});

test('gateway.conflicts: different selectors that pick a common workload conflict; disjoint ones do not', () => {
  const yaml = `${ingressPod('both', 'edge', '{ istio: ingressgateway, tier: public }')}
${ingressPod('internal', 'edge', '{ istio: internal }')}
${gateway('wide', 'edge', '{ istio: ingressgateway }', http(80, '["shop.example.com"]', 'wide'))}
${gateway('narrow', 'edge', '{ istio: ingressgateway, tier: public }', http(80, '["shop.example.com"]', 'narrow'))}
${gateway('other', 'edge', '{ istio: internal }', http(80, '["shop.example.com"]'))}`;
  assert.deepEqual(summary(analyze(yaml, 'gateway.conflicts')), [
    `TRL0145 Gateway edge/narrow spec.servers[0] :${lineOf(yaml, 'narrow')}`,
    `TRL0145 Gateway edge/wide spec.servers[0] :${lineOf(yaml, 'wide')}`,
  ]);
});

test('gateway.conflicts: other ports, disjoint hosts, and Gateways that select nothing are no conflict', () => {
  const yaml = `${ingressPod('gw', 'edge', '{ istio: ingressgateway }')}
${gateway('a', 'edge', '{ istio: ingressgateway }', http(80, '["a.example.com"]'))}
${gateway('b', 'edge', '{ istio: ingressgateway }', http(80, '["b.example.com", "*.b.example.com"]'))}
${gateway('c', 'edge', '{ istio: ingressgateway }', http(8080, '["a.example.com"]'))}
${gateway('ghost-1', 'edge', '{ istio: nothing }', http(80, '["a.example.com"]'))}
${gateway('ghost-2', 'edge', '{ istio: nothing }', http(80, '["a.example.com"]'))}`;
  assert.deepEqual(analyze(yaml, 'gateway.conflicts'), []);
});

// ---- gateway.ports ----------------------------------------------------------

const ingressService = (ports: string) => `
apiVersion: v1
kind: Service
metadata: { name: ingress, namespace: edge }
spec:
  selector: { istio: ingressgateway }
  ports: ${ports}
---`;

test('gateway.ports: a server port that the fronting Service exposes neither as port nor targetPort is TRL0162', () => {
  const yaml = `${ingressPod('gw', 'edge', '{ istio: ingressgateway }')}
${ingressService('[{ name: http, port: 80, targetPort: 8080 }, { name: udp-dns, port: 53, protocol: UDP }]')}
${gateway('web', 'edge', '{ istio: ingressgateway }', `${http(80, '["*"]')}\n${http(8080, '["*"]')}\n${http(9090, '["*"]', 'p9090')}\n${http(53, '["*"]', 'p53')}`)}`;
  const ds = analyze(yaml, 'gateway.ports');
  assert.deepEqual(summary(ds), [
    `TRL0162 Gateway edge/web spec.servers[2].port.number :${lineOf(yaml, 'p9090')}`,
    `TRL0162 Gateway edge/web spec.servers[3].port.number :${lineOf(yaml, 'p53')}`,
  ]);
  const d = ds.find((x) => x.field === 'spec.servers[2].port.number')!;
  assert.equal(d.level, 'warning');
  assert.match(d.message, /port 9090 is not exposed by the services in front of the workloads istio=ingressgateway \(Service edge\/ingress\)/);
  assert.match(d.message, /add the port to a Service/);
});

test('gateway.ports: a Service of another namespace, or one selecting other labels, does not front the gateway', () => {
  const yaml = `${ingressPod('gw', 'edge', '{ istio: ingressgateway }')}
apiVersion: v1
kind: Service
metadata: { name: elsewhere, namespace: web }
spec: { selector: { istio: ingressgateway }, ports: [{ name: http, port: 80 }] }
---
apiVersion: v1
kind: Service
metadata: { name: others, namespace: edge }
spec: { selector: { app: shop }, ports: [{ name: http, port: 80 }] }
---${gateway('web', 'edge', '{ istio: ingressgateway }', http(80, '["*"]', 'p80'))}`;
  const ds = analyze(yaml, 'gateway.ports');
  assert.deepEqual(summary(ds), [`TRL0162 Gateway edge/web spec.servers[0].port.number :${lineOf(yaml, 'p80')}`]);
  assert.match(ds[0]!.message, /\(no Service selects them\)/);
});

test('gateway.ports: a gateway WorkloadEntry without a Service is reached directly, and a selector picking nothing is left to gateway.selector', () => {
  const yaml = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ingress, namespace: istio-system }
spec: { address: 127.0.0.1, labels: { istio: ingressgateway } }
---${gateway('web', 'shop', '{ istio: ingressgateway }', http(8443, '["*"]'))}
${gateway('typo', 'shop', '{ istio: ingresstypo }', http(8443, '["*"]'))}`;
  assert.deepEqual(analyze(yaml, 'gateway.ports'), []);
});

// ---- gateway.duplicate-certificates -----------------------------------------

const https = (port: number, host: string, tls: string, marker = '') => `  - port: { number: ${port}, name: https-${host.split('.')[0]}, protocol: HTTPS }
    hosts: ["${host}"]
    tls: ${tls}${marker ? ` # @${marker}` : ''}`;

test('gateway.duplicate-certificates: the same credentialName on the same workloads is TRL0138, on the narrower selector only', () => {
  const yaml = `${gateway('one', 'edge', '{ istio: ingressgateway }', https(443, 'one.example.com', '{ mode: SIMPLE, credentialName: shared }', 'one'))}
${gateway('two', 'edge', '{ istio: ingressgateway }', https(443, 'two.example.com', '{ mode: SIMPLE, credentialName: shared }', 'two'))}
${gateway('internal', 'web', '{ istio: ingressgateway, type: internal }', https(443, 'in.example.com', '{ mode: SIMPLE, credentialName: shared }'))}`;
  const ds = analyze(yaml, 'gateway.duplicate-certificates');
  assert.deepEqual(summary(ds), [
    `TRL0138 Gateway edge/one spec.servers[0].tls.credentialName :${lineOf(yaml, 'one')}`,
    `TRL0138 Gateway edge/two spec.servers[0].tls.credentialName :${lineOf(yaml, 'two')}`,
  ]);
  const one = ds.find((d) => d.resource === 'Gateway edge/one')!;
  assert.match(one.message, /uses the same certificate as Gateway edge\/two, Gateway web\/internal on the same gateway workloads/);
  assert.match(one.message, /use distinct certificates/);
});

test('gateway.duplicate-certificates: the same certificate and key files are a duplicate; another key or another credential is not', () => {
  const files = (key: string) => `{ mode: SIMPLE, serverCertificate: /etc/certs/cert.pem, privateKey: ${key} }`;
  const yaml = `${gateway('a', 'edge', '{ istio: ingressgateway }', https(443, 'a.example.com', files('/etc/certs/key.pem'), 'a'))}
${gateway('b', 'edge', '{ istio: ingressgateway }', https(443, 'b.example.com', files('/etc/certs/key.pem'), 'b'))}
${gateway('c', 'edge', '{ istio: ingressgateway }', https(443, 'c.example.com', files('/etc/certs/other-key.pem')))}
${gateway('d', 'edge', '{ istio: ingressgateway }', https(443, 'd.example.com', '{ mode: SIMPLE, credentialName: d-cert }'))}`;
  assert.deepEqual(summary(analyze(yaml, 'gateway.duplicate-certificates')), [
    `TRL0138 Gateway edge/a spec.servers[0].tls.serverCertificate :${lineOf(yaml, 'a')}`,
    `TRL0138 Gateway edge/b spec.servers[0].tls.serverCertificate :${lineOf(yaml, 'b')}`,
  ]);
});

test('gateway.duplicate-certificates: one Gateway reusing its certificate on two servers, or Gateways on unrelated selectors, are fine', () => {
  const yaml = `${gateway('a', 'edge', '{ istio: ingressgateway }', `${https(443, 'a.example.com', '{ mode: SIMPLE, credentialName: wild }')}\n${https(8443, 'b.example.com', '{ mode: SIMPLE, credentialName: wild }')}`)}
${gateway('other', 'edge', '{ istio: egressgateway }', https(443, 'c.example.com', '{ mode: SIMPLE, credentialName: wild }'))}`;
  assert.deepEqual(analyze(yaml, 'gateway.duplicate-certificates'), []);
});

// ---- sidecar.selector -------------------------------------------------------

const sidecar = (name: string, ns: string, selector: string, marker = '') => `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: ${name} # @${marker || `${ns}-${name}`}
  namespace: ${ns}
spec:${selector ? `\n  workloadSelector:\n    labels: ${selector} # @sel-${ns}-${name}` : ''}
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
---`;

test('sidecar.selector: two Sidecars without workloadSelector in one namespace are TRL0111 on each; one per namespace is fine', () => {
  const yaml = `${sidecar('first', 'shop', '')}${sidecar('second', 'shop', '')}${sidecar('only', 'web', '')}${ingressPod('app', 'shop', '{ app: shop }')}${sidecar('scoped', 'shop', '{ app: shop }')}`;
  const ds = analyze(yaml, 'sidecar.selector');
  assert.deepEqual(summary(ds), [
    `TRL0111 Sidecar shop/first metadata.name :${lineOf(yaml, 'shop-first')}`,
    `TRL0111 Sidecar shop/second metadata.name :${lineOf(yaml, 'shop-second')}`,
  ]);
  assert.match(ds.find((d) => d.resource === 'Sidecar shop/first')!.message, /namespace shop has more than one Sidecar without a workloadSelector \(Sidecar second\).*merge them/);
});

test('sidecar.selector: two selector Sidecars picking the same workload are TRL0110 on each, naming the workload', () => {
  const yaml = `${ingressPod('ratings', 'shop', '{ app: ratings, tier: back }')}${ingressPod('front', 'shop', '{ app: front }')}
${sidecar('by-app', 'shop', '{ app: ratings }')}${sidecar('by-tier', 'shop', '{ tier: back }')}${sidecar('front', 'shop', '{ app: front }')}`;
  const ds = analyze(yaml, 'sidecar.selector');
  assert.deepEqual(summary(ds), [
    `TRL0110 Sidecar shop/by-app spec.workloadSelector.labels :${lineOf(yaml, 'sel-shop-by-app')}`,
    `TRL0110 Sidecar shop/by-tier spec.workloadSelector.labels :${lineOf(yaml, 'sel-shop-by-tier')}`,
  ]);
  assert.match(ds[0]!.message, /selects workload Pod shop\/ratings, which Sidecar by-(app|tier) selects too; .*make the selectors disjoint/);
});

test('sidecar.selector: a selector that picks workloads only in another namespace is TRL0101', () => {
  const yaml = `${ingressPod('reviews', 'default', '{ app: reviews }')}${sidecar('reviews', 'other', '{ app: reviews }')}${sidecar('reviews', 'default', '{ app: reviews }')}`;
  const ds = analyze(yaml, 'sidecar.selector');
  assert.deepEqual(summary(ds), [`TRL0101 Sidecar other/reviews spec.workloadSelector.labels :${lineOf(yaml, 'sel-other-reviews')}`]);
  assert.match(ds[0]!.message, /labels app=reviews does not exist in namespace other: .*correct spec\.workloadSelector\.labels/);
});

test('the Gateway and Sidecar analyzers never throw on a mesh without Gateways, Sidecars or workloads', () => {
  for (const name of ['gateway.selector', 'gateway.conflicts', 'gateway.ports', 'gateway.duplicate-certificates', 'sidecar.selector']) {
    assert.deepEqual(analyze('', name), [], name);
  }
});
