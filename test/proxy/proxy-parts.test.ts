/** The data plane's pure parts, without sockets: headers, targets, rewrites, redirects, retry conditions, chains. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Route, RouteMatch } from '../../src/protocol/snapshot.js';
import { composeChain, runChain, type Stage, type StageContext } from '../../src/proxy/filter-chain.js';
import { compileHeaderOps, downstreamResponseHeaders, ensureRequestId, setForwarded, upstreamRequestHeaders } from '../../src/proxy/headers.js';
import { compileRedirect } from '../../src/proxy/redirect.js';
import { requestTarget } from '../../src/proxy/request-target.js';
import { compileRetry, retriableFailure, retriableResponse } from '../../src/proxy/retry-policy.js';
import { compileRewrites, envoySubstitution } from '../../src/proxy/rewrite.js';
import { buildRoutePlan } from '../../src/proxy/route-plan.js';

const fakeReq = (url: string, host?: string) => ({ url, headers: host !== undefined ? { host } : {} }) as unknown as IncomingMessage;

test('request target: absolute-form names scheme, authority, port and path; origin-form uses Host', () => {
  assert.deepEqual(requestTarget(fakeReq('http://accounts:8080/x?y=1', 'accounts:8080')), { scheme: 'http', authority: 'accounts:8080', port: 8080, path: '/x?y=1' });
  assert.deepEqual(requestTarget(fakeReq('http://accounts', 'accounts')), { scheme: 'http', authority: 'accounts', port: 80, path: '/' });
  assert.deepEqual(requestTarget(fakeReq('http://accounts?q', 'x:9')), { scheme: 'http', authority: 'accounts', port: 9, path: '/?q' }, 'no URI port: the Host port');
  assert.deepEqual(requestTarget(fakeReq('/a', 'api.shop:81')), { scheme: 'http', authority: 'api.shop:81', port: 81, path: '/a' });
  assert.deepEqual(requestTarget(fakeReq('/a', '[::1]:82')), { scheme: 'http', authority: '[::1]:82', port: 82, path: '/a' });
  assert.match(requestTarget(fakeReq('/a')) as string, /no Host header/);
  assert.match(requestTarget(fakeReq('/a', 'api:99999')) as string, /invalid port/);
  assert.match(requestTarget(fakeReq('*', 'api')) as string, /neither a path nor an absolute URI/);
});

test('headers: hop-by-hop fields and those Connection names are not forwarded, in either direction', () => {
  const h = upstreamRequestHeaders({
    host: 'api', connection: 'keep-alive, x-secret-hop', 'keep-alive': 'timeout=5', te: 'trailers', 'transfer-encoding': 'chunked',
    upgrade: 'h2c', 'proxy-connection': 'keep-alive', 'proxy-authorization': 'Basic x', expect: '100-continue', 'x-secret-hop': '1', 'x-app': 'kept',
  });
  assert.deepEqual(h, { host: 'api', 'x-app': 'kept' });
  assert.deepEqual(downstreamResponseHeaders({ connection: 'close', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' }),
    { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
});

test('headers: x-request-id is kept or created; x-forwarded-for is appended to', () => {
  const h: Record<string, string | string[] | undefined> = { 'x-request-id': 'abc' };
  assert.equal(ensureRequestId(h), 'abc');
  const fresh: Record<string, string | string[] | undefined> = {};
  assert.match(ensureRequestId(fresh), /^[0-9a-f-]{36}$/);
  setForwarded(h, '10.0.0.2', 'http');
  setForwarded(h, '10.0.0.3', 'https');
  assert.equal(h['x-forwarded-for'], '10.0.0.2, 10.0.0.3');
  assert.equal(h['x-forwarded-proto'], 'http');
});

test('header operations: each level removes, sets, then appends; the destination level comes last', () => {
  const edit = compileHeaderOps([
    { set: [['x-a', 'route']], add: [['x-list', 'r']], remove: ['x-gone'] },
    { set: [['x-a', 'dest']], add: [['x-list', 'd']], remove: [] },
  ])!;
  const h: Record<string, string | string[] | undefined> = { 'x-gone': '1', 'x-list': 'orig' };
  edit(h);
  assert.deepEqual(h, { 'x-a': 'dest', 'x-list': ['orig', 'r', 'd'] });
  assert.equal(compileHeaderOps([undefined, { set: [], add: [], remove: [] }]), undefined);
  assert.throws(() => compileHeaderOps([{ set: [['bad header', 'v']], add: [], remove: [] }]), /invalid header/);
  assert.throws(() => compileHeaderOps([{ set: [['x-v', 'a\r\nb']], add: [], remove: [] }]), /CR, LF or NUL/);
});

const m = (uri?: RouteMatch['uri']): RouteMatch => ({ headers: [], withoutHeaders: [], queryParams: [], ...(uri ? { uri } : {}) });

test('rewrite: uri replaces what the route matched; regex rewrites use Envoy groups; the query stays', () => {
  const rw = compileRewrites([m({ kind: 'prefix', value: '/v1/' }), m({ kind: 'exact', value: '/old' }), m()], { uri: '/internal/' })!;
  assert.equal(rw[1]!('/v1/items?x=1'), '/internal/items?x=1');
  assert.equal(rw[2]!('/old?x=1'), '/internal/?x=1');
  assert.equal(rw[3]!('/items'), '/internal/items');
  assert.equal(rw[0]!('/items'), '/internal/items', 'no match list: the leading slash is the prefix');
  const rx = compileRewrites([], { uriRegex: { match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1' } })!;
  assert.equal(rx[0]!('/service/foo/v1/api?q=$1'), '/v1/api/instance/foo?q=$1');
  assert.equal(envoySubstitution('a$b\\1\\\\'), 'a$$b$1\\');
  assert.throws(() => compileRewrites([], { uriRegex: { match: '(', rewrite: '' } }), /does not compile/);
  assert.equal(compileRewrites([], { authority: 'x' }), undefined);
});

test('redirect: Location from the action and the request, as Envoy builds it', () => {
  const r = { scheme: 'http', authority: 'api:8080', port: 8080, path: '/old/x?y=1' };
  assert.equal(compileRedirect({ kind: 'redirect', uri: '/new', status: 301 })(r), 'http://api:8080/new?y=1');
  assert.equal(compileRedirect({ kind: 'redirect', authority: 'other', status: 302 })(r), 'http://other/old/x?y=1');
  assert.equal(compileRedirect({ kind: 'redirect', authority: 'other', port: 9000, status: 302 })(r), 'http://other:9000/old/x?y=1');
  assert.equal(compileRedirect({ kind: 'redirect', scheme: 'https', status: 301 })(r), 'https://api:8080/old/x?y=1');
  assert.equal(compileRedirect({ kind: 'redirect', derivePort: 'FROM_PROTOCOL_DEFAULT', status: 301 })(r), 'http://api/old/x?y=1');
  assert.equal(compileRedirect({ kind: 'redirect', uri: '/n?z=2', status: 301 })(r), 'http://api:8080/n?z=2');
});

test('retry conditions have Envoy\'s meaning', () => {
  const policy = (retryOn: string[], codes: number[] = []) => compileRetry({ attempts: 2, perTryTimeoutMs: 0, retryOn, retriableStatusCodes: codes, retryRemoteLocalities: false, backoffBaseMs: 25 });
  const fivexx = policy(['5xx']);
  assert.ok(retriableResponse(fivexx, 500, undefined) && retriableFailure(fivexx, 'connect-failure') && retriableFailure(fivexx, 'per-try-timeout'));
  const gw = policy(['gateway-error']);
  assert.ok(retriableResponse(gw, 503, undefined) && !retriableResponse(gw, 500, undefined));
  const cf = policy(['connect-failure']);
  assert.ok(retriableFailure(cf, 'connect-failure') && !retriableFailure(cf, 'reset') && !retriableResponse(cf, 503, undefined));
  const codes = policy(['retriable-status-codes'], [503, 429]);
  assert.ok(retriableResponse(codes, 429, undefined) && !retriableResponse(codes, 500, undefined));
  const grpc = policy(['unavailable']);
  assert.ok(retriableResponse(grpc, 200, '14') && !retriableResponse(grpc, 200, '0'));
  assert.ok(retriableResponse(policy(['retriable-4xx']), 409, undefined));
});

test('filter chain: phases in order, checked when composed; a stage may answer and stop; async stages are awaited', async () => {
  const calls: string[] = [];
  const stage = (phase: Stage['phase'], name: string, reply?: number, wait = false): Stage => ({
    phase, name,
    run: () => {
      calls.push(name);
      const v = reply ? { status: reply, body: '' } : undefined;
      return wait ? new Promise((r) => setTimeout(() => r(v), 5)) : v;
    },
  });
  assert.throws(() => composeChain(stage('fault', 'f'), stage('authz', 'a')), /out of order: a \(authz\) after f \(fault\)/);
  const ctx = { closed: false } as StageContext;
  const chain = composeChain(stage('sanitize', 's'), stage('authz', 'a', undefined, true), stage('ratelimit', 'r', 429), stage('fault', 'f'));
  const verdict = await new Promise((resolve, reject) => runChain(chain, ctx, resolve, reject));
  assert.deepEqual(verdict, { status: 429, body: '' });
  assert.deepEqual(calls, ['s', 'a', 'r']);
});

test('route plans reject what would fail per request: bad statuses, bad fault statuses', () => {
  const route = (action: Route['action']): Route => ({ name: 'r', match: [], action });
  assert.throws(() => buildRoutePlan(route({ kind: 'direct', status: 1000 }), 'vh', new Map()), /vh route "r": directResponse: status 1000/);
  const retry = { attempts: 0, perTryTimeoutMs: 0, retryOn: [], retriableStatusCodes: [], retryRemoteLocalities: false, backoffBaseMs: 25 };
  assert.throws(() => buildRoutePlan(route({ kind: 'forward', clusters: [], timeoutMs: 0, retry, fault: { abort: { httpStatus: 42, percentage: 100 } } }), 'vh', new Map()), /httpStatus 42/);
  assert.throws(() => buildRoutePlan(route({ kind: 'forward', clusters: [], timeoutMs: 0, retry, fault: { abort: { grpcStatus: 'NOPE', percentage: 100 } } }), 'vh', new Map()), /unknown gRPC status "NOPE"/);
});
