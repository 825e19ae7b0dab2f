/**
 * An audit of VirtualService `http` against Istio's documentation, through
 * two real data planes per call (web's sidecar, then api's) to real apps:
 * every match field, first match wins, rewrites, redirects, direct
 * responses, header operations at route and destination level, weighted
 * destinations with subsets and ports. Which route took a request is read
 * from the caller's request record, found by the request id the test sends.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { randomUUID } from 'node:crypto';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { k8sDeployment } from '../helpers/mesh.js';
import { eventually, RunningMesh, tally, type CallInit, type Reply } from '../helpers/proxy.js';

const YAML = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
${k8sDeployment('web-v1', 'shop', 'web', { labels: { version: 'v1' } })}---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: shop }
spec:
  selector: { app: api }
  ports: [{ name: http, port: 80, targetPort: 9000 }, { name: http-alt, port: 8080, targetPort: 9001 }]
---
${k8sDeployment('api-v1', 'shop', 'api', { labels: { version: 'v1' } })}---
${k8sDeployment('api-v2', 'shop', 'api', { labels: { version: 'v2' } })}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - { name: first-a, match: [{ uri: { prefix: /first/ } }], route: [{ destination: { host: api, subset: v1 } }] }
  - { name: first-b, match: [{ uri: { prefix: /first/ } }], route: [{ destination: { host: api, subset: v2 } }] }
  - { name: exact, match: [{ uri: { exact: /exact } }], route: [{ destination: { host: api } }] }
  - { name: prefix-ci, match: [{ uri: { prefix: /CaseIns/ }, ignoreUriCase: true }], route: [{ destination: { host: api } }] }
  - { name: exact-ci, match: [{ uri: { exact: /Exact-CI }, ignoreUriCase: true }], route: [{ destination: { host: api } }] }
  - { name: regex, match: [{ uri: { regex: "/re/[0-9]+" } }], route: [{ destination: { host: api } }] }
  - { name: regex-ci, match: [{ uri: { regex: "/RX/[a-z]+" }, ignoreUriCase: true }], route: [{ destination: { host: api } }] }
  - { name: method, match: [{ method: { exact: DELETE }, uri: { prefix: /method/ } }], route: [{ destination: { host: api } }] }
  - { name: method-re, match: [{ method: { regex: "P(UT|ATCH)" }, uri: { prefix: /method/ } }], route: [{ destination: { host: api } }] }
  - { name: scheme-https, match: [{ scheme: { exact: https }, uri: { prefix: /scheme/ } }], route: [{ destination: { host: api } }] }
  - { name: scheme-http, match: [{ scheme: { exact: http }, uri: { prefix: /scheme/ } }], route: [{ destination: { host: api } }] }
  - { name: authority, match: [{ authority: { prefix: api.shop }, uri: { prefix: /authority/ } }], route: [{ destination: { host: api } }] }
  - name: headers
    match: [{ uri: { prefix: /headers/ }, headers: { x-exact: { exact: a }, x-prefix: { prefix: pre }, x-regex: { regex: "v[0-9]+" }, x-present: {} } }]
    route: [{ destination: { host: api } }]
  - { name: without, match: [{ uri: { prefix: /without/ }, withoutHeaders: { x-block: {}, x-mode: { exact: test } } }], route: [{ destination: { host: api } }] }
  - { name: query, match: [{ uri: { prefix: /query/ }, queryParams: { q: { exact: "1" }, r: { regex: "[a-z]+" }, s: {} } }], route: [{ destination: { host: api } }] }
  - { name: port-8080, match: [{ port: 8080, uri: { prefix: /port/ } }], route: [{ destination: { host: api, subset: v2 } }] }
  - { name: labels-other, match: [{ sourceLabels: { version: v9 }, uri: { prefix: /labels/ } }], route: [{ destination: { host: api } }] }
  - { name: labels-web, match: [{ sourceLabels: { app: web, version: v1 }, uri: { prefix: /labels/ } }], route: [{ destination: { host: api } }] }
  - { name: ns-other, match: [{ sourceNamespace: bank, uri: { prefix: /ns/ } }], route: [{ destination: { host: api } }] }
  - { name: ns-shop, match: [{ sourceNamespace: shop, uri: { prefix: /ns/ } }], route: [{ destination: { host: api } }] }
  - { name: any-of, match: [{ uri: { exact: /or/a } }, { uri: { prefix: /or/ }, headers: { x-or: { exact: "yes" } } }], route: [{ destination: { host: api } }] }
  - { name: rw-exact, match: [{ uri: { exact: /rw/exact } }], rewrite: { uri: /new/whole }, route: [{ destination: { host: api } }] }
  - { name: rw-prefix, match: [{ uri: { prefix: /rw/prefix/ } }], rewrite: { uri: /p/ }, route: [{ destination: { host: api } }] }
  - { name: rw-regex-match, match: [{ uri: { regex: "/rw/rx/[a-z]+" } }], rewrite: { uri: /whole }, route: [{ destination: { host: api } }] }
  - { name: rw-no-uri, match: [{ headers: { x-rw-root: {} } }], rewrite: { uri: /root/ }, route: [{ destination: { host: api } }] }
  - name: rw-regex
    match: [{ uri: { prefix: /rw/regex/ } }]
    rewrite: { uriRegexRewrite: { match: "^/rw/regex/([^/]+)/([^/]+)$", rewrite: "/\\\\2/\\\\1" } }
    route: [{ destination: { host: api } }]
  - { name: rw-authority, match: [{ uri: { prefix: /rw/authority/ } }], rewrite: { authority: internal.api }, route: [{ destination: { host: api } }] }
  - { name: rd-uri, match: [{ uri: { prefix: /rd/uri/ } }], redirect: { uri: /moved, redirectCode: 302 } }
  - { name: rd-authority, match: [{ uri: { prefix: /rd/authority/ } }], redirect: { authority: other.example } }
  - { name: rd-port, match: [{ uri: { prefix: /rd/port/ } }], redirect: { port: 9443 } }
  - { name: rd-req-port, match: [{ uri: { prefix: /rd/req-port/ } }], redirect: { authority: new.example, derivePort: FROM_REQUEST_PORT } }
  - { name: rd-default-port, match: [{ uri: { prefix: /rd/default-port/ } }], redirect: { derivePort: FROM_PROTOCOL_DEFAULT } }
  - { name: rd-scheme, match: [{ uri: { prefix: /rd/scheme/ } }], redirect: { scheme: https, redirectCode: 307 } }
  - { name: rd-scheme-default, match: [{ uri: { prefix: /rd/scheme-default/ } }], redirect: { scheme: https, derivePort: FROM_PROTOCOL_DEFAULT, redirectCode: 308 } }
  - { name: dr-string, match: [{ uri: { exact: /dr/string } }], directResponse: { status: 418, body: { string: "short and stout" } } }
  - { name: dr-text-bytes, match: [{ uri: { exact: /dr/text-bytes } }], directResponse: { status: 200, body: { bytes: "${Buffer.from('héllo wörld').toString('base64')}" } } }
  - { name: dr-binary, match: [{ uri: { exact: /dr/binary } }], directResponse: { status: 200, body: { bytes: "${Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41]).toString('base64')}" } } }
  - { name: dr-empty, match: [{ uri: { exact: /dr/empty } }], directResponse: { status: 503 } }
  - name: hd
    match: [{ uri: { prefix: /hd/ } }]
    headers:
      request: { set: { x-set: route }, add: { x-add: route }, remove: [x-remove] }
      response: { set: { x-resp-set: route }, add: { x-resp-add: route }, remove: [x-served-by] }
    route:
    - destination: { host: api, subset: v1 }
      headers:
        request: { set: { x-set: dest, x-dest: d } }
        response: { set: { x-resp-set: dest, x-resp-dest: d } }
  - name: weighted
    match: [{ uri: { prefix: /wt/ } }]
    route:
    - { destination: { host: api, subset: v1, port: { number: 80 } }, weight: 70, headers: { response: { set: { x-dest: v1-80 } } } }
    - { destination: { host: api, subset: v2, port: { number: 8080 } }, weight: 30, headers: { response: { set: { x-dest: v2-8080 } } } }
  - { name: no-such-port, match: [{ uri: { prefix: /badport/ } }], route: [{ destination: { host: api, port: { number: 9999 } } }] }
  - { name: fallback, route: [{ destination: { host: api, subset: v1 } }] }
`;

let mesh: RunningMesh;
const records = new Map<string, RequestRecord>();
const onRecord = (r: unknown) => {
  const rec = r as RequestRecord;
  if (rec.direction === 'outbound' && rec.proxy === 'web-v1.shop') records.set(rec.requestId, rec);
};

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await RunningMesh.start({ yaml: YAML, caller: { workload: 'web-v1', namespace: 'shop' } });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

/** A call, and the caller proxy's record of it. */
async function call(url: string, init: CallInit = {}): Promise<{ r: Reply; rec: RequestRecord }> {
  const id = randomUUID();
  const r = await mesh.call(url, { ...init, headers: { ...init.headers, 'x-request-id': id } });
  const rec = await eventually(() => records.get(id), 5000, () => `no record of ${url}`);
  return { r, rec };
}
const routeOf = async (url: string, init?: CallInit) => (await call(url, init)).rec.route;

test('matches: uri exact, prefix, regex (anchored, path only); ignoreUriCase for exact and prefix but not regex', async () => {
  assert.equal(await routeOf('http://api/exact'), 'exact');
  assert.equal(await routeOf('http://api/exact?x=1'), 'exact', 'the query is not part of the path');
  assert.equal(await routeOf('http://api/exact/more'), 'fallback');
  assert.equal(await routeOf('http://api/caseins/a'), 'prefix-ci');
  assert.equal(await routeOf('http://api/CASEINS/a'), 'prefix-ci');
  assert.equal(await routeOf('http://api/exact-ci'), 'exact-ci');
  assert.equal(await routeOf('http://api/re/123'), 'regex');
  assert.equal(await routeOf('http://api/re/123x'), 'fallback', 'a regex matches the whole path');
  assert.equal(await routeOf('http://api/x/re/1'), 'fallback');
  assert.equal(await routeOf('http://api/RX/abc'), 'regex-ci');
  assert.equal(await routeOf('http://api/rx/abc'), 'fallback', 'ignoreUriCase does not apply to regex matches');
});

test('matches: method, scheme, authority, each ANDed with the uri', async () => {
  assert.equal(await routeOf('http://api/method/x', { method: 'DELETE' }), 'method');
  assert.equal(await routeOf('http://api/method/x', { method: 'PATCH' }), 'method-re');
  assert.equal(await routeOf('http://api/method/x', { method: 'PUT' }), 'method-re');
  assert.equal(await routeOf('http://api/method/x', { method: 'GET' }), 'fallback');
  assert.equal(await routeOf('http://api/scheme/x'), 'scheme-http');
  assert.equal(await routeOf('http://api.shop/authority/x'), 'authority');
  assert.equal(await routeOf('http://api.shop.svc.cluster.local/authority/x'), 'authority');
  assert.equal(await routeOf('http://api/authority/x'), 'fallback');
});

test('matches: headers (exact, prefix, regex, present) all required; withoutHeaders excludes', async () => {
  const all = { 'x-exact': 'a', 'x-prefix': 'prefix!', 'x-regex': 'v12', 'x-present': '' };
  assert.equal(await routeOf('http://api/headers/x', { headers: all }), 'headers');
  for (const [k, bad] of [['x-exact', 'ab'], ['x-prefix', 'xpre'], ['x-regex', 'v12b'], ['x-present', undefined]] as const) {
    const h: Record<string, string> = { ...all };
    if (bad === undefined) delete h[k]; else h[k] = bad;
    assert.equal(await routeOf('http://api/headers/x', { headers: h }), 'fallback', `${k}=${bad}`);
  }
  assert.equal(await routeOf('http://api/without/x'), 'without');
  assert.equal(await routeOf('http://api/without/x', { headers: { 'x-mode': 'prod' } }), 'without');
  assert.equal(await routeOf('http://api/without/x', { headers: { 'x-mode': 'test' } }), 'fallback');
  assert.equal(await routeOf('http://api/without/x', { headers: { 'x-block': '' } }), 'fallback');
});

test('matches: queryParams (exact, regex, present); port; sourceLabels; sourceNamespace; alternatives are ORed', async () => {
  assert.equal(await routeOf('http://api/query/x?q=1&r=abc&s'), 'query');
  assert.equal(await routeOf('http://api/query/x?q=1&r=abc&s=anything'), 'query');
  assert.equal(await routeOf('http://api/query/x?q=12&r=abc&s'), 'fallback');
  assert.equal(await routeOf('http://api/query/x?q=1&r=ab1&s'), 'fallback');
  assert.equal(await routeOf('http://api/query/x?q=1&r=abc'), 'fallback');
  const p = await call('http://api:8080/port/x');
  assert.equal(p.rec.route, 'port-8080');
  assert.equal(p.r.json().app, 'api-v2.shop');
  assert.equal(p.rec.cluster, 'outbound|8080|v2|api.shop.svc.cluster.local', 'no destination port: the listener\'s');
  assert.equal(await routeOf('http://api:80/port/x'), 'fallback');
  assert.equal(await routeOf('http://api/labels/x'), 'labels-web', 'sourceLabels that the caller lacks never apply');
  assert.equal(await routeOf('http://api/ns/x'), 'ns-shop');
  assert.equal(await routeOf('http://api/or/a'), 'any-of');
  assert.equal(await routeOf('http://api/or/b', { headers: { 'x-or': 'yes' } }), 'any-of');
  assert.equal(await routeOf('http://api/or/b'), 'fallback');
});

test('matches: the first route that matches wins', async () => {
  for (let i = 0; i < 5; i++) {
    const { r, rec } = await call('http://api/first/x');
    assert.equal(rec.route, 'first-a');
    assert.equal(r.json().app, 'api-v1.shop');
  }
});

test('rewrite: uri replaces what matched (exact: all, prefix: the prefix, regex: all, none: "/"); uriRegexRewrite; authority', async () => {
  const url = async (u: string, init?: CallInit) => (await call(u, init)).r.json().url;
  assert.equal(await url('http://api/rw/exact?k=v'), '/new/whole?k=v');
  assert.equal(await url('http://api/rw/prefix/a/b?k=v'), '/p/a/b?k=v');
  assert.equal(await url('http://api/rw/rx/abc?k=v'), '/whole?k=v');
  assert.equal(await url('http://api/anything/here', { headers: { 'x-rw-root': '1' } }), '/root/anything/here');
  assert.equal(await url('http://api/rw/regex/orders/list?z=1'), '/list/orders?z=1');
  const a = (await call('http://api/rw/authority/x')).r.json();
  assert.equal(a.headers.host, 'internal.api');
  assert.equal(a.url, '/rw/authority/x');
});

test('redirect: uri (query kept), authority (port and all), port, derivePort, scheme, status', async () => {
  const loc = async (u: string) => {
    const { r, rec } = await call(u);
    assert.deepEqual(rec.responseFlags, []);
    return [r.status, r.headers.location];
  };
  assert.deepEqual(await loc('http://api/rd/uri/x?q=1'), [302, 'http://api/moved?q=1']);
  assert.deepEqual(await loc('http://api:8080/rd/authority/x'), [301, 'http://other.example/rd/authority/x'], 'authority replaces host and port');
  assert.deepEqual(await loc('http://api:8080/rd/port/x'), [301, 'http://api:9443/rd/port/x']);
  assert.deepEqual(await loc('http://api:8080/rd/req-port/x'), [301, 'http://new.example:8080/rd/req-port/x']);
  assert.deepEqual(await loc('http://api/rd/req-port/x'), [301, 'http://new.example/rd/req-port/x'], 'port 80 is http\'s default');
  assert.deepEqual(await loc('http://api:8080/rd/default-port/x'), [301, 'http://api/rd/default-port/x']);
  assert.deepEqual(await loc('http://api:8080/rd/scheme/x'), [307, 'https://api:8080/rd/scheme/x'], 'a new scheme keeps a port that is not the old default');
  assert.deepEqual(await loc('http://api:80/rd/scheme/x'), [307, 'https://api/rd/scheme/x'], 'and drops the old default');
  assert.deepEqual(await loc('http://api:8080/rd/scheme-default/x'), [308, 'https://api/rd/scheme-default/x']);
});

test('directResponse: status with a string body, bytes as text and as binary, no body', async () => {
  const s = await call('http://api/dr/string');
  assert.deepEqual([s.r.status, s.r.text], [418, 'short and stout']);
  assert.equal((await call('http://api/dr/text-bytes')).r.text, 'héllo wörld');
  const raw = await mesh.client.pool.request({ path: 'http://api/dr/binary', method: 'GET', headers: { host: 'api' } });
  assert.equal(raw.statusCode, 200);
  assert.deepEqual([...Buffer.from(await raw.body.arrayBuffer())], [0xff, 0x00, 0xfe, 0x80, 0x41], 'the bytes as configured');
  assert.equal(raw.headers['content-length'], '5');
  const e = await call('http://api/dr/empty');
  assert.deepEqual([e.r.status, e.r.text], [503, '']);
  assert.deepEqual(e.rec.responseFlags, [], 'a configured answer is not a failure');
});

test('headers: request and response set/add/remove at route and destination level; the route\'s win on the same header', async () => {
  const { r } = await call('http://api/hd/x', { headers: { 'x-remove': 'gone', 'x-add': 'caller', 'x-set': 'caller' } });
  const seen = r.json().headers;
  assert.equal(seen['x-set'], 'route', 'route-level set wins over the destination\'s (Envoy\'s order)');
  assert.equal(seen['x-dest'], 'd');
  assert.equal(seen['x-add'], 'caller, route', 'add appends to what the caller sent');
  assert.equal(seen['x-remove'], undefined);
  assert.equal(r.headers['x-resp-set'], 'route');
  assert.equal(r.headers['x-resp-dest'], 'd');
  assert.equal(r.headers['x-resp-add'], 'route');
  assert.equal(r.headers['x-served-by'], undefined, 'response remove');
  const plain = await call('http://api/other', { headers: { 'x-remove': 'kept' } });
  assert.equal(plain.r.json().headers['x-remove'], 'kept', 'other routes edit nothing');
  assert.match(String(plain.r.headers['x-served-by']), /^api-v1/);
});

test('weighted destinations with subsets and ports: 70/30 over 1000 requests, each to its subset and port; an unknown port is 503 NC', async () => {
  const got: string[] = [];
  const clusters: string[] = [];
  for (let batch = 0; batch < 20; batch++) {
    const rs = await Promise.all(Array.from({ length: 50 }, () => call('http://api/wt/x')));
    for (const { r, rec } of rs) {
      assert.equal(r.status, 200);
      const dest = String(r.headers['x-dest']);
      assert.equal(r.json().app, dest === 'v1-80' ? 'api-v1.shop' : 'api-v2.shop', 'the destination\'s subset served');
      got.push(dest);
      clusters.push(rec.cluster!);
    }
  }
  const t = tally(got);
  console.log(`# 70/30 split over 1000: ${JSON.stringify(t)}`);
  assert.ok(t['v1-80']! >= 640 && t['v1-80']! <= 760, JSON.stringify(t));
  assert.deepEqual(Object.keys(tally(clusters)).sort(), ['outbound|80|v1|api.shop.svc.cluster.local', 'outbound|8080|v2|api.shop.svc.cluster.local'].sort());
  const bad = await call('http://api/badport/x');
  assert.equal(bad.r.status, 503);
  assert.deepEqual(bad.rec.responseFlags, ['NC']);
});
