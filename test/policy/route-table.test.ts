import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRouter, hostOnly } from '../../src/policy/route-table.js';
import { compileStringMatcher } from '../../src/policy/string-match.js';
import type { ProxyNode, Route, RouteMatch, Snapshot } from '../../src/protocol/snapshot.js';
import type { RouteRequest } from '../../src/policy/request.js';

const node: ProxyNode = {
  id: 'web-v1.shop', kind: 'sidecar', workload: 'web-v1', namespace: 'shop', labels: { app: 'web', version: 'v1' },
  serviceAccount: 'web', identity: 'spiffe://cluster.local/ns/shop/sa/web', locality: { region: '', zone: '', subzone: '' },
};
const mesh = { trustDomain: 'cluster.local', rootNamespace: 'istio-system', domainSuffix: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY', pathNormalization: 'DECODE_AND_MERGE_SLASHES', enableAutoMtls: true, connectTimeoutMs: 10000 } as const;
const m = (x: Partial<RouteMatch>): RouteMatch => ({ headers: [], withoutHeaders: [], queryParams: [], ...x });
const route = (name: string, match: RouteMatch[]): Route => ({ name, match, action: { kind: 'direct', status: 200, body: name } });

function router(routes: Route[], domains = ['api.shop.svc.cluster.local'], n: ProxyNode = node) {
  const snap = { node: n, mesh, outbound: { http: [{ port: 80, virtualHosts: [{ name: 'api:80', domains, routes }] }], tcp: [] } } as unknown as Snapshot;
  return buildRouter(snap);
}
const req = (x: Partial<RouteRequest>): RouteRequest => ({ port: 80, host: 'api', path: '/', method: 'GET', scheme: 'http', headers: {}, ...x });

test('string matchers: exact, prefix and RE2 regex anchored to the whole string', () => {
  const rows: [Parameters<typeof compileStringMatcher>[0], string, boolean][] = [
    [{ kind: 'exact', value: '/a' }, '/a', true],
    [{ kind: 'exact', value: '/a' }, '/a/', false],
    [{ kind: 'exact', value: '/A', ignoreCase: true }, '/a', true],
    [{ kind: 'prefix', value: '/api' }, '/api/v1', true],
    [{ kind: 'prefix', value: '/api' }, '/ap', false],
    [{ kind: 'prefix', value: '/API', ignoreCase: true }, '/api/x', true],
    [{ kind: 'regex', value: '/v[0-9]+' }, '/v12', true],
    [{ kind: 'regex', value: '/v[0-9]+' }, '/v12/x', false],
    [{ kind: 'regex', value: '/v[0-9]+' }, 'x/v12', false],
    [{ kind: 'regex', value: '(a+)+$' }, 'a'.repeat(5000) + 'b', false],
  ];
  for (const [mm, input, want] of rows) assert.equal(compileStringMatcher(mm)(input), want, `${mm.kind} ${mm.value} on ${input.slice(0, 20)}`);
});

test('routes are tried in order and the first match wins', () => {
  const r = router([
    route('exact', [m({ uri: { kind: 'exact', value: '/login' } })]),
    route('prefix', [m({ uri: { kind: 'prefix', value: '/api' } })]),
    route('catch-all', []),
  ]);
  const pick = (path: string) => { const d = r.route(req({ path })); return d.ok ? d.route.name : d.reason; };
  assert.equal(pick('/login'), 'exact');
  assert.equal(pick('/login?next=/x'), 'exact', 'the query string is not part of the path');
  assert.equal(pick('/api/v1'), 'prefix');
  assert.equal(pick('/other'), 'catch-all');
});

test('a match block needs all its conditions; alternatives need one', () => {
  const r = router([
    route('both', [m({ method: { kind: 'exact', value: 'POST' }, headers: [{ name: 'x-user', match: { kind: 'exact', value: 'jason' } }] })]),
    route('either', [m({ queryParams: [{ name: 'debug', match: { kind: 'exact', value: '1' } }] }), m({ headers: [{ name: 'x-debug' }] })]),
    route('without', [m({ withoutHeaders: [{ name: 'x-canary' }] })]),
  ]);
  const pick = (x: Partial<RouteRequest>) => { const d = r.route(req(x)); return d.ok ? `${d.route.name}#${d.matchIndex}` : d.reason; };
  assert.equal(pick({ method: 'POST', headers: { 'x-user': 'jason' } }), 'both#0');
  assert.equal(pick({ method: 'GET', headers: { 'x-user': 'jason' } }), 'without#0');
  assert.equal(pick({ path: '/x?debug=1' }), 'either#0');
  assert.equal(pick({ headers: { 'x-debug': '' } }), 'either#1');
  assert.equal(pick({ headers: { 'x-canary': 'yes' } }), 'NO_ROUTE');
});

test('sourceLabels and sourceNamespace are decided against the proxy itself', () => {
  const routes = [route('v2-callers', [m({ sourceLabels: { version: 'v2' } })]), route('ns', [m({ sourceNamespace: 'other' })]), route('rest', [])];
  assert.equal((router(routes).route(req({})) as { route: Route }).route.name, 'rest');
  const v2 = { ...node, labels: { app: 'web', version: 'v2' } };
  assert.equal((router(routes, undefined, v2).route(req({})) as { route: Route }).route.name, 'v2-callers');
  const other = { ...node, namespace: 'other' };
  assert.equal((router(routes, undefined, other).route(req({ host: 'api.shop' })) as { route: Route }).route.name, 'ns');
});

test('hosts: short names expand in the caller namespace, ports are stripped, case is ignored, wildcards match', () => {
  const r = router([route('ok', [])], ['api.shop.svc.cluster.local', '*.example.com']);
  for (const host of ['api', 'API:80', 'api.shop', 'api.shop.svc', 'api.shop.svc.cluster.local', 'api.shop.svc.cluster.local.', 'x.example.com', 'a.b.example.com']) {
    assert.equal(r.route(req({ host })).ok, true, host);
  }
  for (const host of ['api.other', 'example.com', 'apix']) {
    const d = r.route(req({ host }));
    assert.equal(d.ok, false, host);
    assert.equal(!d.ok && d.reason, 'NO_VIRTUAL_HOST');
  }
  assert.equal(r.route(req({ port: 8080 })).ok || (r.route(req({ port: 8080 })) as { reason: string }).reason, 'NO_ROUTE_TABLE');
  assert.equal(hostOnly('[::1]:80'), '[::1]');
});
