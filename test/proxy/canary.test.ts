/**
 * Canary and blue-green splits through real data planes: 10 000 requests per
 * split from web's sidecar through each version's sidecar to its app, every
 * weight honoured within 2 percentage points; then a blue-green switch
 * (all traffic from one subset to the other) applied to the running caller.
 * (Weights moved under load without a failed request: test/integration/mesh-resilience.test.ts.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { k8sDeployment, k8sService } from '../helpers/mesh.js';
import { RunningMesh, tally } from '../helpers/proxy.js';

const BASE = [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'shop', 'web'),
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api-v1', 'shop', 'api', { labels: { version: 'v1' } }),
  k8sDeployment('api-v2', 'shop', 'api', { labels: { version: 'v2' } }),
  k8sDeployment('api-v3', 'shop', 'api', { labels: { version: 'v3' } }),
].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }, { name: v3, labels: { version: v3 } }]
`;

const vs = (blueGreen: 'v1' | 'v2') => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - name: canary
    match: [{ uri: { prefix: /canary/ } }]
    route:
    - { destination: { host: api, subset: v1 }, weight: 80 }
    - { destination: { host: api, subset: v2 }, weight: 20 }
  - name: three-way
    match: [{ uri: { prefix: /three/ } }]
    route:
    - { destination: { host: api, subset: v1 }, weight: 50 }
    - { destination: { host: api, subset: v2 }, weight: 30 }
    - { destination: { host: api, subset: v3 }, weight: 20 }
  - name: blue-green
    route:
    - { destination: { host: api, subset: v1 }, weight: ${blueGreen === 'v1' ? 100 : 0} }
    - { destination: { host: api, subset: v2 }, weight: ${blueGreen === 'v2' ? 100 : 0} }
`;

let mesh: RunningMesh;

before(async () => {
  mesh = await RunningMesh.start({ yaml: BASE + vs('v1'), caller: { workload: 'web-v1', namespace: 'shop' } });
});
after(async () => {
  await mesh?.close();
});

/** `count` requests, `width` at a time, bounded by `maxMs`; returns who answered each. */
async function traffic(path: string, count: number, width = 100, maxMs = 60_000): Promise<string[]> {
  const served: string[] = [];
  const end = Date.now() + maxMs;
  for (let sent = 0; sent < count && Date.now() < end; sent += width) {
    const rs = await Promise.all(Array.from({ length: Math.min(width, count - sent) }, (_, i) => mesh.call(`http://api${path}${sent + i}`)));
    for (const r of rs) served.push(r.status === 200 ? r.json().app : `status ${r.status}`);
  }
  assert.equal(served.length, count, `all ${count} requests sent within ${maxMs} ms`);
  return served;
}

function shares(served: readonly string[]): Record<string, number> {
  const t = tally(served);
  return Object.fromEntries(Object.entries(t).sort().map(([k, n]) => [k, Math.round((n / served.length) * 10000) / 100]));
}

function assertSplit(name: string, served: readonly string[], want: Readonly<Record<string, number>>): void {
  const got = shares(served);
  console.log(`# ${name} over ${served.length} requests: ${Object.entries(got).map(([k, p]) => `${k} ${p} %`).join(', ')}`);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `only the weighted subsets answer: ${JSON.stringify(got)}`);
  for (const [k, p] of Object.entries(want)) assert.ok(Math.abs(got[k]! - p) <= 2, `${k}: ${got[k]} % where ${p} % was configured`);
}

test('canary 80/20: over 10 000 requests each subset gets its weight within 2 points', { timeout: 120_000 }, async () => {
  assertSplit('80/20', await traffic('/canary/', 10_000), { 'api-v1.shop': 80, 'api-v2.shop': 20 });
});

test('three versions 50/30/20: over 10 000 requests each subset gets its weight within 2 points', { timeout: 120_000 }, async () => {
  assertSplit('50/30/20', await traffic('/three/', 10_000), { 'api-v1.shop': 50, 'api-v2.shop': 30, 'api-v3.shop': 20 });
});

test('blue-green: 100/0 sends nothing to green; switched to 0/100 on the running proxy, nothing goes to blue', { timeout: 60_000 }, async () => {
  assert.deepEqual(tally(await traffic('/bg/', 500)), { 'api-v1.shop': 500 });
  mesh.reconfigure(BASE + vs('v2'));
  assert.deepEqual(tally(await traffic('/bg/', 500)), { 'api-v2.shop': 500 });
});
