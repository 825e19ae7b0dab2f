/**
 * Routing through two real data planes (the caller's outbound, the callee's
 * inbound) to real app servers: forward-proxy and Host routing, matches,
 * weighted splits, redirects, direct responses, rewrites, and the answers
 * for what cannot be routed — each as simulate() says.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect } from 'node:net';
import { simulate } from '../../src/compile/index.js';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { Client, RunningMesh, startApp, startProxy, tally, withEndpoints, withMesh, type App } from '../helpers/proxy.js';

const VS = `
---
apiVersion: v1
kind: Service
metadata: { name: idle, namespace: shop }
spec:
  selector: { app: idle }
  ports: [{ name: http, port: 80, targetPort: 7000 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: idle, namespace: shop }
spec:
  replicas: 1
  selector: { matchLabels: { app: idle } }
  template: { metadata: { labels: { app: idle } }, spec: { containers: [{ name: idle, image: idle }] } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web]
  http:
  - name: only
    match: [{ uri: { prefix: /only } }]
    route: [{ destination: { host: web } }]
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
  - name: missing-subset
    match: [{ headers: { x-beta: { exact: "on" } } }]
    route: [{ destination: { host: api, subset: beta } }]
  - name: v2-by-header
    match: [{ headers: { x-version: { exact: v2 } } }]
    route: [{ destination: { host: api, subset: v2 } }]
  - name: rewritten
    match: [{ uri: { prefix: /old/ } }]
    rewrite: { uri: /new/, authority: api-internal.shop }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: regex-rewritten
    match: [{ uri: { prefix: /svc/ } }]
    rewrite: { uriRegexRewrite: { match: "^/svc/([^/]+)/(.*)$", rewrite: "/\\\\2/of/\\\\1" } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: split
    match: [{ uri: { prefix: /split } }]
    route:
    - { destination: { host: api, subset: v1 }, weight: 90 }
    - { destination: { host: api, subset: v2 }, weight: 10 }
  - name: rest
    route: [{ destination: { host: api, subset: v1 } }]
`;

let mesh: RunningMesh;
let outside: App;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);
const lastOutbound = () => records.filter((r) => r.direction === 'outbound' && r.proxy === 'web-v1.shop').at(-1);
const calls = (path: string, init = {}) => mesh.call(`http://api${path}`, init);

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await RunningMesh.start({ yaml: TWO_SERVICES + VS, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v1.shop#0', 'api-v1.shop#1', 'api-v2.shop'] });
  outside = await startApp('outside');
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
  await outside?.close();
});

test('routing: a forward-proxy request (absolute-form) reaches the app through both proxies, Host kept', async () => {
  const r = await mesh.call('http://api:80/items?x=1');
  assert.equal(r.status, 200);
  const e = r.json();
  assert.match(e.app, /^api-v1\.shop#[01]$/);
  assert.equal(e.url, '/items?x=1', 'the app gets origin-form');
  assert.equal(e.headers.host, 'api:80');
});

test('routing: an origin-form request is routed by its Host header (short and qualified names)', async () => {
  for (const host of ['api', 'api.shop', 'api.shop.svc.cluster.local:80']) {
    const r = await mesh.client.call('/items', { headers: { host, 'x-version': 'v2' } });
    assert.equal(r.status, 200, host);
    assert.equal(r.json().app, 'api-v2.shop', host);
    assert.equal(r.json().headers.host, host);
  }
});

test('routing: a header match picks its route; others fall through to the next', async () => {
  assert.equal((await calls('/x', { headers: { 'x-version': 'v2' } })).json().app, 'api-v2.shop');
  assert.match((await calls('/x', { headers: { 'x-version': 'v3' } })).json().app, /^api-v1/);
});

test('routing: a 90/10 split sends 5–15% of 1000 requests to v2', async () => {
  const apps: string[] = [];
  for (let batch = 0; batch < 20; batch++) {
    const rs = await Promise.all(Array.from({ length: 50 }, () => calls('/split')));
    for (const r of rs) { assert.equal(r.status, 200); apps.push(r.json().app); }
  }
  const v2 = tally(apps)['api-v2.shop'] ?? 0;
  assert.ok(v2 >= 50 && v2 <= 150, `v2 got ${v2} of 1000`);
});

test('routing: redirect and direct response are answered by the proxy', async () => {
  const r = await calls('/v0/thing?y=2');
  assert.equal(r.status, 308);
  assert.equal(r.headers.location, 'http://api/v1/?y=2');
  const d = await calls('/anything?maintenance=1');
  assert.equal(d.status, 503);
  assert.equal(d.text, 'down for maintenance');
});

test('routing: rewrites change the path (prefix and regex) and the authority', async () => {
  const p = (await calls('/old/a/b?q=1')).json();
  assert.equal(p.url, '/new/a/b?q=1');
  assert.equal(p.headers.host, 'api-internal.shop');
  assert.equal((await calls('/svc/orders/list?z=1')).json().url, '/list/of/orders?z=1');
});

test('routing: NR 404, NC 503 and UH 503 with a body that says why', async () => {
  const nr = await mesh.call('http://web/elsewhere');
  assert.equal(nr.status, 404);
  assert.match(nr.text, /^no route: no route of web\.shop\.svc\.cluster\.local:80 matches GET \/elsewhere/);
  assert.deepEqual(lastOutbound()?.responseFlags, ['NR']);
  const nc = await calls('/x', { headers: { 'x-beta': 'on' } });
  assert.equal(nc.status, 503);
  assert.deepEqual(lastOutbound()?.responseFlags, ['NC']);
  assert.match(nc.text, /^no cluster: route "missing-subset" sends to outbound\|80\|beta\|api\.shop\.svc\.cluster\.local, which is not in the snapshot/);
  const uh = await mesh.call('http://idle/');
  assert.equal(uh.status, 503);
  assert.deepEqual(lastOutbound()?.responseFlags, ['UH']);
  assert.match(uh.text, /^no healthy upstream: outbound\|80\|\|idle\.shop\.svc\.cluster\.local has no healthy endpoint/);
  const uhWeb = await mesh.call('http://web/only');
  assert.equal(uhWeb.status, 503, 'an endpoint without an address is not in rotation');
});

test('routing: an unknown host passes through under ALLOW_ANY, and gets 502 under REGISTRY_ONLY', async () => {
  const r = await mesh.call(`http://127.0.0.1:${outside.port}/out`);
  assert.equal(r.status, 200);
  assert.equal(r.json().app, 'outside');
  const strict = await startProxy({ mode: 'sidecar' }, withMesh(mesh.snapshot, { outboundTrafficPolicy: 'REGISTRY_ONLY' }));
  const client = new Client(strict.addresses.outbound!);
  try {
    const b = await client.call(`http://127.0.0.1:${outside.port}/out`);
    assert.equal(b.status, 502);
    assert.match(b.text, /REGISTRY_ONLY/);
    assert.equal(outside.hits, 1);
  } finally {
    await client.close();
    await strict.close(100);
  }
});

test('routing: a passthrough request for the proxy\'s own listener is refused (508), not sent round in a loop', async () => {
  const own = mesh.caller.addresses.outbound!;
  const port = own.split(':')[1]!;
  for (const host of [own, `localhost:${port}`, `[::1]:${port}`]) {
    const r = await mesh.call(`http://${host}/loop`);
    assert.equal(r.status, 508, `${host}: ${r.status} ${r.text}`);
    assert.match(r.text, /request loop: .* is this proxy's own listener/);
  }
  // Its admin port too (any listener of its own).
  const admin = mesh.caller.addresses.admin;
  const a = await mesh.call(`http://${admin}/ready`);
  assert.equal(a.status, 508, a.text);
});

test('routing: the proxy does what simulate() says, request by request', async () => {
  const cases: [string, Record<string, string>][] = [
    ['http://api/x', {}], ['http://api/x', { 'x-version': 'v2' }], ['http://api/v0/a', {}], ['http://api/a?maintenance=1', {}],
    ['http://api/a', { 'x-beta': 'on' }], ['http://web/elsewhere', {}], ['http://idle/', {}], ['http://api/old/x', {}],
    [`http://127.0.0.1:${outside.port}/p`, {}],
  ];
  // simulate() counts an endpoint without an address as healthy; the proxy cannot send to it. Say so explicitly.
  const asRunning = withEndpoints(mesh.snapshot, { 'idle.shop': { health: 'UNHEALTHY' }, 'web-v1.shop': { health: 'UNHEALTHY' } });
  for (const [url, headers] of cases) {
    const sim = simulate(asRunning, { url, headers });
    const before = records.length;
    const r = await mesh.call(url, { headers });
    const rec = records.slice(before).find((x) => x.direction === 'outbound' && x.proxy === 'web-v1.shop')!;
    const want = sim.status ?? 200;
    assert.equal(r.status, want, `${url} ${JSON.stringify(headers)}: ${sim.reason}`);
    if (sim.responseFlag) assert.deepEqual(rec.responseFlags, [sim.responseFlag], url);
    else assert.deepEqual(rec.responseFlags, [], url);
    assert.equal(rec.route, sim.route?.name, url);
    assert.equal(rec.virtualHost, sim.virtualHost, url);
    if (sim.outcome === 'FORWARD' && !sim.status) assert.ok(sim.clusters.some((c) => c.name === rec.cluster), url);
    if (sim.outcome === 'PASSTHROUGH') assert.equal(rec.cluster, 'PassthroughCluster');
  }
});

test('routing: CONNECT (HTTPS through HTTP_PROXY) is refused with 501 and a reason, not a hang-up', async () => {
  const [host, port] = mesh.caller.addresses.outbound!.split(':');
  const text = await new Promise<string>((resolve, reject) => {
    const sock = connect(Number(port), host!, () => sock.write('CONNECT api.example.com:443 HTTP/1.1\r\nhost: api.example.com:443\r\n\r\n'));
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => { got += c; });
    sock.on('end', () => resolve(got));
    sock.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 501 Not Implemented\r\n/);
  assert.match(text, /CONNECT tunnels are not supported/);
});
