/**
 * Traffic mirroring through real data planes: web's sidecar sends each call
 * to api (through api's sidecar) and a copy to a shadow service (through its
 * sidecar), as Envoy shadows: Host suffixed `-shadow`, the request as it went
 * upstream (rewritten path, edited headers, body), fire and forget. Negative
 * cases: a slow shadow, a dead shadow, 0 %, a streamed body.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { TWO_SERVICES, k8sDeployment, k8sService } from '../helpers/mesh.js';
import { eventually, RunningMesh, withEndpoints, type Handler } from '../helpers/proxy.js';

const services = (name: string) => k8sService(name, 'shop', { name: 'http', port: 80, targetPort: 7100 }) + '---\n' + k8sDeployment(`${name}-v1`, 'shop', name);

const YAML = TWO_SERVICES + '---\n' + ['shadow', 'slowshadow', 'deadshadow'].map(services).join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - name: mirrored
    match: [{ uri: { prefix: /m/ } }]
    rewrite: { uri: /rewritten/ }
    headers: { request: { set: { x-route: mirrored } } }
    route: [{ destination: { host: api, subset: v1 } }]
    mirror: { host: shadow }
  - name: no-retries
    match: [{ uri: { prefix: /once/ } }]
    retries: { attempts: 0 }
    route: [{ destination: { host: api, subset: v1 } }]
    mirrors: [{ destination: { host: shadow } }]
  - name: half
    match: [{ uri: { prefix: /half/ } }]
    route: [{ destination: { host: api, subset: v1 } }]
    mirrors: [{ destination: { host: shadow }, percentage: { value: 50 } }]
  - name: none
    match: [{ uri: { prefix: /none/ } }]
    route: [{ destination: { host: api, subset: v1 } }]
    mirror: { host: shadow }
    mirrorPercentage: { value: 0 }
  - name: slow
    match: [{ uri: { prefix: /slow/ } }]
    route: [{ destination: { host: api, subset: v1 } }]
    mirror: { host: slowshadow }
  - name: dead-then-live
    match: [{ uri: { prefix: /dead/ } }]
    route: [{ destination: { host: api, subset: v1 } }]
    mirrors: [{ destination: { host: deadshadow } }, { destination: { host: shadow } }]
  - name: plain
    route: [{ destination: { host: api, subset: v1 } }]
`;

interface Copy { readonly url: string; readonly headers: Record<string, string | string[] | undefined>; readonly body: string }

const copies: Copy[] = [];
const held: ServerResponse[] = [];
let slowSeen = 0;
const shadow: Handler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    copies.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('from the shadow');
  });
};
/** Holds every response until the test lets go: a shadow slower than any caller would wait for. */
const slow: Handler = (req, res) => {
  slowSeen++;
  req.resume();
  held.push(res);
};

let mesh: RunningMesh;
let deadPort = 0;
const copiesOf = (prefix: string) => copies.filter((c) => c.url.startsWith(prefix));

before(async () => {
  mesh = await RunningMesh.start({
    yaml: YAML, caller: { workload: 'web-v1', namespace: 'shop' },
    instances: ['api-v1.shop#0', 'api-v1.shop#1', 'shadow-v1.shop', 'slowshadow-v1.shop'],
    handlers: { 'shadow-v1.shop': shadow, 'slowshadow-v1.shop': slow },
  });
  // deadshadow's only endpoint is a port where nothing listens: connections are refused.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  deadPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const s = withEndpoints(mesh.snapshot, { 'deadshadow-v1.shop': { address: '127.0.0.1', port: deadPort, health: 'HEALTHY' } });
  const applied = mesh.caller.apply(s);
  assert.ok(applied.ok, JSON.stringify(applied));
  mesh.snapshot = s;
});
after(async () => {
  for (const res of held) res.end('late');
  await mesh?.close();
});

/** Waits until the copy of a barrier request has reached the shadow: copies sent before it have had their time. */
async function barrier(tag: string): Promise<void> {
  const r = await mesh.call(`http://api/m/barrier-${tag}`);
  assert.equal(r.status, 200);
  await eventually(() => (copies.some((c) => c.url === `/rewritten/barrier-${tag}`) ? true : undefined), 10_000, () => `no copy of barrier ${tag}`);
}

test('mirror: the shadow gets a copy with Host "<host>-shadow", the rewritten path and edited headers; the caller gets the real answer', async () => {
  const r = await mesh.call('http://api:80/m/items?x=1', { headers: { 'x-test': 'copy-me' } });
  assert.equal(r.status, 200);
  const main = r.json();
  assert.match(main.app, /^api-v1\.shop#[01]$/, 'the caller is answered by api, not by the shadow');
  assert.equal(main.headers.host, 'api:80', 'the real request keeps its Host');
  assert.equal(main.url, '/rewritten/items?x=1');
  const copy = await eventually(() => copiesOf('/rewritten/items').at(0), 10_000, () => `copies: ${JSON.stringify(copies.map((c) => c.url))}`);
  assert.equal(copy.url, '/rewritten/items?x=1');
  assert.equal(copy.headers.host, 'api-shadow:80', 'Envoy puts -shadow before the port');
  assert.equal(copy.headers['x-test'], 'copy-me');
  assert.equal(copy.headers['x-route'], 'mirrored', 'route header edits are in the copy');
  assert.equal(copy.headers['x-request-id'], main.headers['x-request-id'], 'the same request id');
});

test('mirror: a POST body is copied, also on a route without retries', async () => {
  for (const path of ['/m/post', '/once/post']) {
    const body = `payload for ${path} `.repeat(100);
    const r = await mesh.call(`http://api${path}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
    assert.equal(r.json().bodyBytes, body.length, 'the upstream got the whole body');
    const want = path === '/m/post' ? '/rewritten/post' : '/once/post';
    const copy = await eventually(() => copiesOf(want).at(0), 10_000, () => `no copy of ${path}`);
    assert.equal(copy.body, body, `${path}: the shadow got the same body`);
    assert.equal(copy.headers.host, 'api-shadow');
  }
});

test('mirror (negative): a streamed (chunked) body goes upstream but is not mirrored', async () => {
  const body = Readable.from([Buffer.from('chunk one,'), Buffer.from('chunk two')]);
  const r = await mesh.client.pool.request({ path: 'http://api/m/streamed', method: 'POST', headers: { host: 'api' }, body });
  const main = JSON.parse(await r.body.text()) as { bodyBytes: number; headers: Record<string, string> };
  assert.equal(r.statusCode, 200);
  assert.equal(main.bodyBytes, 19);
  await barrier('streamed');
  assert.deepEqual(copiesOf('/rewritten/streamed'), []);
});

test('mirror (negative): a shadow that never answers does not hold up the caller', { timeout: 30_000 }, async () => {
  const before = slowSeen;
  const rs = await Promise.all(Array.from({ length: 5 }, (_, i) => mesh.call(`http://api/slow/${i}`)));
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
  assert.ok(rs.every((r) => /^api-v1/.test(r.json().app)));
  // Every copy reached the slow shadow, and none of them has been answered: the callers did not wait for them.
  await eventually(() => (slowSeen - before >= 5 ? true : undefined), 10_000, () => `the slow shadow saw ${slowSeen - before} copies`);
  assert.ok(held.every((res) => !res.headersSent), 'the shadow has answered nothing');
});

test('mirror (negative): a dead shadow (connection refused) never fails the caller; the next mirror still gets its copy', async () => {
  const rs: number[] = [];
  for (let i = 0; i < 20; i++) rs.push((await mesh.call(`http://api/dead/${i}`)).status);
  assert.deepEqual(rs, Array(20).fill(200));
  await eventually(() => (copiesOf('/dead/').length === 20 ? true : undefined), 10_000, () => `${copiesOf('/dead/').length} of 20 copies at the live shadow`);
});

test('mirror (negative): percentage 0 sends no copy; 50 % sends about half of 400', async () => {
  for (let i = 0; i < 50; i++) assert.equal((await mesh.call(`http://api/none/${i}`)).status, 200);
  for (let batch = 0; batch < 8; batch++) {
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => mesh.call(`http://api/half/${batch * 50 + i}`)));
    assert.ok(rs.every((r) => r.status === 200));
  }
  await barrier('percent');
  assert.equal(copiesOf('/none/').length, 0, 'mirrorPercentage 0: nothing mirrored');
  const half = copiesOf('/half/').length;
  console.log(`# mirror 50 %: ${half} of 400 requests copied`);
  // Binomial(400, 0.5): mean 200, sd 10; ±6 sd.
  assert.ok(half >= 140 && half <= 260, `50 % mirrored ${half} of 400`);
});

test('mirror: a route without mirrors sends no copy', async () => {
  for (let i = 0; i < 10; i++) assert.equal((await mesh.call(`http://api/plain/${i}`)).status, 200);
  await barrier('plain');
  assert.deepEqual(copiesOf('/plain/'), []);
});
