/**
 * CORS (VirtualService corsPolicy) through two real data planes, with the
 * behaviour of Envoy's CORS filter: preflights from allowed origins answered
 * by the caller's proxy, other requests from allowed origins answered with
 * the CORS response headers, nothing for origins that are not allowed, and
 * unmatched preflights forwarded (FORWARD) or answered bare (IGNORE).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BOOKINFO, shopVirtualService, TWO_SERVICES } from '../helpers/mesh.js';
import { RunningMesh, type Reply } from '../helpers/proxy.js';

const VS = shopVirtualService('api', `
  - name: cors
    match: [{ uri: { prefix: /cors/ } }]
    corsPolicy:
      allowOrigins: [{ exact: "https://a.example" }, { prefix: "https://app." }, { regex: "https://[a-z]+\\\\.b\\\\.example" }]
      allowMethods: [GET, POST]
      allowHeaders: [x-custom, content-type]
      exposeHeaders: [x-served-by, x-request-id]
      maxAge: 24h
      allowCredentials: true
    route: [{ destination: { host: api, subset: v1 } }]
  - name: cors-ignore
    match: [{ uri: { prefix: /ignore/ } }]
    corsPolicy: { allowOrigins: [{ exact: "https://a.example" }], allowMethods: [GET], unmatchedPreflights: IGNORE }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: cors-any
    match: [{ uri: { prefix: /any/ } }]
    corsPolicy: { allowOrigins: [{ exact: "*" }], allowMethods: ["*"], allowHeaders: ["*"] }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: cors-direct
    match: [{ uri: { prefix: /direct/ } }]
    corsPolicy: { allowOrigins: [{ exact: "https://a.example" }] }
    directResponse: { status: 200, body: { string: "from the proxy" } }
  - name: plain
    route: [{ destination: { host: api, subset: v1 } }]
`);

let mesh: RunningMesh;
const hits = () => [...mesh.callees.values()].reduce((n, c) => n + c.app.hits, 0);
const CORS_HEADERS = ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age', 'access-control-expose-headers'];
const corsOf = (r: Reply) => Object.fromEntries(CORS_HEADERS.filter((h) => r.headers[h] !== undefined).map((h) => [h, r.headers[h]]));
const preflight = (path: string, origin: string, extra: Record<string, string> = {}) =>
  mesh.call(`http://api${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', ...extra } });

before(async () => {
  mesh = await RunningMesh.start({ yaml: TWO_SERVICES + VS, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v1.shop#0', 'api-v1.shop#1'] });
});
after(async () => {
  await mesh?.close();
});

test('cors: a preflight from an allowed origin (exact, prefix, regex) is answered by the proxy, never reaching the app', async () => {
  for (const origin of ['https://a.example', 'https://app.example.org', 'https://shop.b.example']) {
    const before = hits();
    const r = await preflight('/cors/items', origin, { 'access-control-request-headers': 'x-custom' });
    assert.equal(r.status, 200, origin);
    assert.deepEqual(corsOf(r), {
      'access-control-allow-origin': origin,
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET,POST',
      'access-control-allow-headers': 'x-custom,content-type',
      'access-control-max-age': '86400',
    }, origin);
    assert.equal(r.text, '');
    assert.equal(r.headers['x-served-by'], undefined, `${origin}: no app answered`);
    assert.equal(hits(), before, `${origin}: the app saw nothing`);
  }
});

test('cors: a request from an allowed origin gets allow-origin, credentials and expose-headers on the app\'s response', async () => {
  const r = await mesh.call('http://api/cors/items', { headers: { origin: 'https://a.example' } });
  assert.equal(r.status, 200);
  assert.match(String(r.headers['x-served-by']), /^api-v1/);
  assert.equal(r.json().headers.origin, 'https://a.example', 'the Origin header goes upstream');
  assert.deepEqual(corsOf(r), {
    'access-control-allow-origin': 'https://a.example',
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': 'x-served-by,x-request-id',
  });
  const post = await mesh.call('http://api/cors/items', { method: 'POST', body: '{}', headers: { origin: 'https://app.shop', 'content-type': 'application/json' } });
  assert.equal(post.headers['access-control-allow-origin'], 'https://app.shop');
});

test('cors (negative): an origin not allowed gets no CORS header, and its preflight goes to the app (FORWARD)', async () => {
  const r = await mesh.call('http://api/cors/items', { headers: { origin: 'https://evil.example' } });
  assert.equal(r.status, 200);
  assert.deepEqual(corsOf(r), {});
  for (const origin of ['https://evil.example', 'https://a.example.evil', 'http://a.example', 'https://x.y.b.example']) {
    const before = hits();
    const p = await preflight('/cors/items', origin);
    assert.equal(p.status, 200, origin);
    assert.equal(p.json().method, 'OPTIONS', `${origin}: the app answered the preflight`);
    assert.deepEqual(corsOf(p), {}, origin);
    assert.equal(hits(), before + 1, origin);
  }
});

test('cors (negative): no Origin, or a route without corsPolicy: nothing is added and preflights go upstream', async () => {
  assert.deepEqual(corsOf(await mesh.call('http://api/cors/items')), {});
  const p = await preflight('/plain/x', 'https://a.example');
  assert.equal(p.json().method, 'OPTIONS');
  assert.deepEqual(corsOf(p), {});
  assert.deepEqual(corsOf(await mesh.call('http://api/plain/x', { headers: { origin: 'https://a.example' } })), {});
});

test('cors: OPTIONS without access-control-request-method is not a preflight: it goes upstream with CORS headers', async () => {
  const r = await mesh.call('http://api/cors/x', { method: 'OPTIONS', headers: { origin: 'https://a.example' } });
  assert.equal(r.json().method, 'OPTIONS');
  assert.equal(r.headers['access-control-allow-origin'], 'https://a.example');
});

test('cors: unmatchedPreflights IGNORE answers an unmatched preflight without allow-origin and without the app', async () => {
  const before = hits();
  const r = await preflight('/ignore/x', 'https://evil.example');
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.headers['x-served-by'], undefined);
  assert.equal(hits(), before);
  const ok = await preflight('/ignore/x', 'https://a.example');
  assert.equal(ok.headers['access-control-allow-origin'], 'https://a.example');
  assert.equal(ok.headers['access-control-allow-methods'], 'GET');
});

test('cors: "*" allows every origin (echoed back) and "*" methods and headers echo what the preflight asks', async () => {
  const r = await preflight('/any/x', 'https://anyone.example', { 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'x-a, x-b' });
  assert.deepEqual(corsOf(r), {
    'access-control-allow-origin': 'https://anyone.example',
    'access-control-allow-methods': 'DELETE',
    'access-control-allow-headers': 'x-a, x-b',
  });
  assert.equal((await mesh.call('http://api/any/y', { headers: { origin: 'null' } })).headers['access-control-allow-origin'], 'null');
});

test('cors: the proxy\'s own answers (a direct response) carry the CORS headers too, for allowed origins only', async () => {
  const r = await mesh.call('http://api/direct/x', { headers: { origin: 'https://a.example' } });
  assert.equal(r.text, 'from the proxy');
  assert.equal(r.headers['access-control-allow-origin'], 'https://a.example');
  const no = await mesh.call('http://api/direct/x', { headers: { origin: 'https://b.example' } });
  assert.equal(no.headers['access-control-allow-origin'], undefined);
});

test('cors: curl\'s preflight through the outbound listener (a client nobody here wrote)', async () => {
  const { stdout } = await promisify(execFile)('curl', [
    '-s', '-i', '-X', 'OPTIONS', '--proxy', `http://${mesh.caller.addresses.outbound}`, 'http://api/cors/curl',
    '-H', 'Origin: https://a.example', '-H', 'Access-Control-Request-Method: POST',
  ], { timeout: 10_000 });
  assert.match(stdout, /^HTTP\/1\.1 200 /);
  assert.match(stdout, /\r\naccess-control-allow-origin: https:\/\/a\.example\r\n/i);
  assert.match(stdout, /\r\naccess-control-allow-methods: GET,POST\r\n/i);
});

test('cors at an ingress gateway: a browser\'s preflight is answered there, its request reaches the service with allow-origin', async () => {
  const gw = await RunningMesh.start({
    yaml: `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: shop-gateway, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 9000, name: http-shop, protocol: HTTP }, hosts: [shop.example.com] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [shop-gateway]
  http:
  - name: shop-details
    corsPolicy: { allowOrigins: [{ exact: "https://shop.example.com" }], allowMethods: [GET, PUT], maxAge: 10m }
    route: [{ destination: { host: details, port: { number: 9080 } } }]
`,
    files: [join(BOOKINFO, 'platform/kube/bookinfo.yaml'), join(BOOKINFO, '..', '..', 'ingress-gateway.yaml')],
    caller: { workload: 'istio-ingressgateway', namespace: 'istio-system' }, gatewayPorts: [9000], instances: ['details-v1.default'],
  });
  try {
    const details = gw.callees.get('details-v1.default')!.app;
    const before = details.hits;
    const p = await gw.client.call('/details/1', { method: 'OPTIONS', headers: { host: 'shop.example.com', origin: 'https://shop.example.com', 'access-control-request-method': 'PUT' } });
    assert.equal(p.status, 200);
    assert.deepEqual(corsOf(p), { 'access-control-allow-origin': 'https://shop.example.com', 'access-control-allow-methods': 'GET,PUT', 'access-control-max-age': '600' });
    assert.equal(details.hits, before, 'answered at the gateway');
    const r = await gw.client.call('/details/1', { headers: { host: 'shop.example.com', origin: 'https://shop.example.com' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://shop.example.com');
    assert.equal(details.hits, before + 1);
    const other = await gw.client.call('/details/1', { headers: { host: 'shop.example.com', origin: 'https://elsewhere.example' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  } finally {
    await gw.close();
  }
});
