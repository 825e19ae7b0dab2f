/**
 * Telemetry access log filters evaluated on request records: each attribute
 * read from the record as Istio means it, the operators, and the rule that
 * what CEL would call an error (a missing value, mismatched types) makes the
 * filter false rather than true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterHeaders, parseLogFilter } from '../../src/api/log-filter.js';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import { compileLogFilter } from '../../src/telemetry/log-filter.js';

const BASE: RequestRecord = {
  direction: 'inbound', proxy: 'api-v1.shop', requestId: 'req-42', method: 'GET', authority: 'api.shop:8080', path: '/api/orders?id=7', protocol: 'HTTP/1.1',
  status: 200, responseFlags: [], cluster: 'inbound|8080||', route: 'default', upstream: '127.0.0.1:8080',
  startTime: 0, durationMs: 5, bytesReceived: 12, bytesSent: 340,
  sourceIdentity: 'spiffe://cluster.local/ns/shop/sa/web', destinationIdentity: 'spiffe://cluster.local/ns/shop/sa/api', mtls: true,
  requestHeaders: { 'user-agent': 'curl/8.5.0', 'x-canary': 'yes', referer: 'https://shop.example/' },
};
const rec = (over: Partial<RequestRecord> = {}): RequestRecord => ({ ...BASE, ...over });

const filter = (text: string): ((r: RequestRecord) => boolean) => {
  const p = parseLogFilter(text);
  if ('error' in p) throw new Error(`${text}: ${p.error}`);
  return compileLogFilter(p.expr);
};
const holds = (text: string, r: RequestRecord = BASE): boolean => filter(text)(r);

test('response.code >= 400 is true for errors and false for successes, the same filter reused', () => {
  const f = filter('response.code >= 400');
  assert.equal(f(rec({ status: 503 })), true);
  assert.equal(f(rec({ status: 400 })), true);
  assert.equal(f(rec({ status: 399 })), false);
  assert.equal(f(rec({ status: 200 })), false);
  assert.equal(holds('response.code < 300'), true);
  assert.equal(holds('response.code <= 200 && response.code > 199'), true);
  assert.equal(holds('response.code != 200'), false);
});

test('|| and && combine, with CEL precedence, and short-circuit', () => {
  const f = filter("response.code >= 500 || request.url_path.startsWith('/api') && request.method == 'POST'");
  assert.equal(f(rec({ status: 502, path: '/web' })), true);
  assert.equal(f(rec({ status: 200, path: '/api/x', method: 'POST' })), true);
  assert.equal(f(rec({ status: 200, path: '/api/x', method: 'GET' })), false);
  assert.equal(f(rec({ status: 200, path: '/web', method: 'POST' })), false);
  // The right side is not looked at once the left decides: the record's missing headers would not matter either way, but the getter must not run.
  let read = 0;
  const spy = new Proxy(rec({ status: 200 }), { get: (t, k) => { if (k === 'requestHeaders') read++; return Reflect.get(t, k); } });
  assert.equal(filter("response.code == 200 || request.headers['x'] == 'y'")(spy), true);
  assert.equal(filter("response.code == 500 && request.headers['x'] == 'y'")(spy), false);
  assert.equal(read, 0);
});

test('! negates a boolean; the healthz example from Istio', () => {
  const f = filter("!(request.url_path == '/healthz') && connection.mtls");
  assert.equal(f(rec({ path: '/healthz?full=1' })), false);
  assert.equal(f(rec({ path: '/orders' })), true);
  assert.equal(f(rec({ path: '/orders', mtls: false })), false);
  assert.equal(holds('!connection.mtls', rec({ mtls: false })), true);
  assert.equal(holds('!!connection.mtls'), true);
});

test('request.path keeps the query, request.url_path drops it', () => {
  assert.equal(holds("request.path == '/api/orders?id=7'"), true);
  assert.equal(holds("request.url_path == '/api/orders'"), true);
  assert.equal(holds("request.url_path == '/api/orders?id=7'"), false);
  assert.equal(holds("request.url_path.endsWith('orders')"), true);
  assert.equal(holds("request.path.endsWith('orders')"), false);
  assert.equal(holds("request.url_path == '/plain'", rec({ path: '/plain' })), true);
});

test('request headers by index, user agent and referer read from the copied headers; absent when not copied', () => {
  assert.equal(holds("request.headers['x-canary'] == 'yes'"), true);
  assert.equal(holds("request.headers['X-Canary'] == 'yes'"), true);
  assert.equal(holds("request.headers['x-canary'] == 'no'"), false);
  assert.equal(holds("request.useragent.startsWith('curl/')"), true);
  assert.equal(holds("request.referer.contains('shop.example')"), true);
  const bare = rec({ requestHeaders: undefined });
  assert.equal(holds("request.useragent.startsWith('curl/')", bare), false);
  assert.equal(holds("request.headers['x-canary'] == 'yes'", bare), false);
  assert.equal(holds("request.headers['x-canary'] != 'yes'", bare), true, '!= is the negation of ==');
});

test('connection.mtls: the record says, or else an inbound source identity means mTLS', () => {
  assert.equal(holds('connection.mtls', rec({ mtls: true })), true);
  assert.equal(holds('connection.mtls', rec({ mtls: false })), false);
  assert.equal(holds('connection.mtls', rec({ mtls: undefined })), true);
  assert.equal(holds('connection.mtls', rec({ mtls: undefined, sourceIdentity: undefined })), false);
  assert.equal(holds('connection.mtls', rec({ mtls: undefined, direction: 'outbound' })), false);
  assert.equal(holds('connection.mtls == true'), true);
});

test('"in" is true when the value equals one of the list elements', () => {
  assert.equal(holds('response.code in [500, 503]', rec({ status: 503 })), true);
  assert.equal(holds('response.code in [500, 503u]', rec({ status: 503 })), true);
  assert.equal(holds('response.code in [500, 503]', rec({ status: 504 })), false);
  assert.equal(holds("request.method in ['GET', 'HEAD']"), true);
  assert.equal(holds("request.method in ['get']"), false);
  assert.equal(holds('response.code in []'), false);
  assert.equal(holds("response.code in ['200']"), false);
  assert.equal(holds("request.host in [request.headers['x-canary'], 'api.shop:8080']"), true);
});

test('mismatched types and missing values make comparisons false, and != true', () => {
  assert.equal(holds("response.code == '200'"), false);
  assert.equal(holds("response.code != '200'"), true);
  assert.equal(holds("response.code > '100'"), false);
  assert.equal(holds("response.code < '300'"), false);
  assert.equal(holds('connection.mtls > false'), false);
  assert.equal(holds('request.method == null'), false);
  assert.equal(holds('null == null'), true);
  assert.equal(holds('source.principal == null', rec({ sourceIdentity: undefined })), false, 'a missing value is not null');
  assert.equal(holds('request.useragent == request.referer', rec({ requestHeaders: {} })), false, 'two missing values are not equal');
  assert.equal(holds("'b' > 'a' && 'abc' < 'abd'"), true);
  assert.equal(holds('1.5 < 2 && 400u == 400 && -1 < 0'), true);
});

test('non-boolean operands of && || ! and a non-boolean result are false; methods on non-strings are false', () => {
  assert.equal(holds('response.code'), false);
  assert.equal(holds("request.method || true"), true);
  assert.equal(holds("request.method && true"), false);
  assert.equal(holds('!response.code'), false);
  assert.equal(holds('!request.useragent', rec({ requestHeaders: undefined })), false);
  assert.equal(holds("response.code.startsWith('2')"), false);
  assert.equal(holds('request.path.startsWith(200)'), false);
  assert.equal(holds("connection.mtls.contains('t')"), false);
  assert.equal(holds("response.code.matches('2')"), false);
});

test('matches: an unanchored JavaScript regular expression, compiled once', () => {
  const f = filter("request.url_path.matches('^/api/v[0-9]+/')");
  assert.equal(f(rec({ path: '/api/v2/orders?x=1' })), true);
  assert.equal(f(rec({ path: '/api/vx/orders' })), false);
  assert.equal(f(rec({ path: '/api/v2/a' })), true, 'the same compiled pattern again (no g-flag state carried over)');
  assert.equal(holds("request.useragent.matches('curl')"), true);
  assert.equal(holds("request.useragent.matches('^curl$')"), false);
  assert.equal(compileLogFilter({ kind: 'call', fn: 'matches', target: { kind: 'attr', name: 'request.path' }, arg: { kind: 'literal', value: '(' } })(BASE), false, 'a bad pattern in a hand-made tree matches nothing');
});

test('every attribute reads its field of the record', () => {
  const r = rec({ status: 404, bytesSent: 340, bytesReceived: 12, grpcStatus: '14', responseFlags: ['UH', 'URX'] });
  const expectations: readonly string[] = [
    'response.code == 404',
    "response.flags == 'UH,URX'",
    'response.grpc_status == 14',
    'response.size == 340 && response.total_size == 340',
    'request.size == 12 && request.total_size == 12',
    "request.method == 'GET'",
    "request.host == 'api.shop:8080'",
    "request.scheme == 'http'",
    "request.protocol == 'HTTP/1.1'",
    "request.id == 'req-42'",
    "source.principal == 'spiffe://cluster.local/ns/shop/sa/web'",
    "destination.principal.endsWith('/sa/api')",
    "upstream.address == '127.0.0.1:8080'",
    "xds.cluster_name == 'inbound|8080||'",
    "xds.route_name == 'default'",
    "xds.node == 'api-v1.shop'",
    "response.code_details == ''",
  ];
  for (const e of expectations) assert.equal(holds(e, r), true, e);
  assert.equal(holds("response.flags == '-'"), true);
  assert.equal(holds("response.code_details == 'via_upstream'"), true);
  assert.equal(holds("response.code_details == 'via_upstream'", rec({ upstream: undefined })), false);
  assert.equal(holds("response.code_details == 'via_upstream'", rec({ status: 0 })), false);
  assert.equal(holds('response.grpc_status == 0', rec({ grpcStatus: 'x' })), false);
  assert.equal(holds('response.grpc_status != 0', rec({ grpcStatus: undefined })), true);
  assert.equal(holds('xds.route_name == null', rec({ route: undefined })), false);
});

test('an attribute this build does not know, in a hand-made tree, is a missing value', () => {
  const f = compileLogFilter({ kind: 'cmp', op: '!=', left: { kind: 'attr', name: 'request.duration' }, right: { kind: 'literal', value: 1 } });
  assert.equal(f(BASE), true);
  assert.equal(compileLogFilter({ kind: 'cmp', op: '==', left: { kind: 'attr', name: 'request.duration' }, right: { kind: 'literal', value: 1 } })(BASE), false);
});

test('filterHeaders tells the proxy which headers to copy for a filter to read them', () => {
  const p = parseLogFilter("request.useragent.contains('bot') || request.headers['X-Debug'] == '1' && request.referer != ''");
  assert.ok('expr' in p);
  const names = filterHeaders(p.expr);
  assert.deepEqual(names, ['referer', 'user-agent', 'x-debug']);
  // With exactly those headers copied, the filter sees what it needs.
  const copied = Object.fromEntries(names.map((n) => [n, n === 'x-debug' ? '1' : 'Mozilla']));
  assert.equal(compileLogFilter(p.expr)(rec({ requestHeaders: copied })), true);
  assert.equal(compileLogFilter(p.expr)(rec({ requestHeaders: {} })), false);
});
