/**
 * RateLimitPolicy: the schema (good and bad documents, each error at its
 * field with a position), the compiler (which workloads get which limits,
 * caller groups resolved to identities, defaults), unknown targets reported
 * with file and line, and `simulateRateLimits` naming the limits that apply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import { rateLimitIssues } from '../../src/compile/rate-limits.js';
import { simulateRateLimits } from '../../src/compile/simulate.js';
import { runTable, type Row } from './kind-table.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';

const V = 'trellis.dev/v1alpha1';
const target = { kind: 'Service', name: 'ledger' };
const rate = { requests: 20, per: '1s' };

const rows: Row[] = [
  { name: 'a per-caller token bucket', spec: { targetRef: target, limits: [{ name: 'per-caller', rate }] } },
  { name: 'a global quota by header with a store', spec: { targetRef: target, store: { redis: '127.0.0.1:6379', timeout: '20ms', failureMode: 'Closed' }, limits: [{ name: 'q', by: 'Header', header: 'x-tenant', scope: 'Global', quota: { requests: 1000, per: '1d' } }] } },
  { name: 'a caller group narrowed to a route', spec: { targetRef: target, limits: [{ name: 'g', by: 'All', callers: { labels: { tier: 'front' } }, match: [{ methods: ['POST'], paths: ['/transfer*'] }], rate: { requests: 5, burst: 10 } }] } },
  { name: 'zero requests', spec: { targetRef: target, limits: [{ name: 'z', rate: { requests: 0 } }] }, code: 'TRL0106', field: 'spec.limits[0].rate.requests' },
  { name: 'negative requests', spec: { targetRef: target, limits: [{ name: 'n', rate: { requests: -5 } }] }, code: 'TRL0106', field: 'spec.limits[0].rate.requests' },
  { name: 'a fractional burst', spec: { targetRef: target, limits: [{ name: 'b', rate: { requests: 5, burst: 1.5 } }] }, code: 'TRL0106', field: 'spec.limits[0].rate.burst' },
  { name: 'a zero period', spec: { targetRef: target, limits: [{ name: 'p', rate: { requests: 5, per: '0s' } }] }, code: 'TRL0106', field: 'spec.limits[0].rate.per' },
  { name: 'both rate and quota', spec: { targetRef: target, limits: [{ name: 'x', rate, quota: { requests: 5, per: '1m' } }] }, code: 'TRL0106', field: 'spec.limits[0].quota' },
  { name: 'neither rate nor quota', spec: { targetRef: target, limits: [{ name: 'x' }] }, code: 'TRL0106', field: 'spec.limits[0]' },
  { name: 'a Global limit without a store', spec: { targetRef: target, limits: [{ name: 'g', scope: 'Global', rate }] }, code: 'TRL0106', field: 'spec.limits[0].scope' },
  { name: 'by Header without a header', spec: { targetRef: target, limits: [{ name: 'h', by: 'Header', rate }] }, code: 'TRL0106', field: 'spec.limits[0].header' },
  { name: 'a target that is not a Service', spec: { targetRef: { kind: 'Deployment', name: 'ledger' }, limits: [{ name: 'a', rate }] }, code: 'TRL0106', field: 'spec.targetRef.kind' },
  { name: 'no limits', spec: { targetRef: target, limits: [] }, code: 'TRL0106', field: 'spec.limits' },
  { name: 'a limit named twice', spec: { targetRef: target, limits: [{ name: 'a', rate }, { name: 'a', rate }] }, code: 'TRL0106', field: 'spec.limits[1].name' },
  { name: 'a store that is not host:port', spec: { targetRef: target, store: { redis: 'redis' }, limits: [{ name: 'a', scope: 'Global', rate }] }, code: 'TRL0106', field: 'spec.store.redis' },
  { name: 'an unknown field', spec: { targetRef: target, limits: [{ name: 'a', rate, burst: 4 }] }, code: 'TRL1002', field: 'spec.limits[0].burst' },
];
runTable(V, 'RateLimitPolicy', rows);

const MESH = [
  k8sService('ledger', 'bank', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('ledger', 'bank', 'ledger', { replicas: 2 }),
  k8sService('audit', 'bank', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('audit', 'bank', 'audit'),
  k8sDeployment('web', 'bank', 'web', { labels: { tier: 'front' } }),
  k8sDeployment('mobile', 'bank', 'mobile', { labels: { tier: 'front' } }),
  k8sDeployment('batch', 'bank', 'batch'),
].join('---\n');

const POLICY = `apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ledger-limits, namespace: bank }
spec:
  targetRef: { kind: Service, name: ledger }
  store: { redis: 127.0.0.1:6379 }
  limits:
  - name: per-caller
    rate: { requests: 20 }
  - name: front
    by: All
    scope: Global
    callers: { labels: { tier: front } }
    match: [{ methods: [post], paths: [/transfer*] }]
    quota: { requests: 100, per: 1m }
  - name: tenant
    by: Header
    header: x-tenant
    rate: { requests: 2, per: 1s, burst: 4 }
`;

test('the compiler gives the target service\'s workloads their limits, caller groups resolved to identities, defaults filled in', () => {
  const m = meshFromYaml(`${MESH}---\n${POLICY}`);
  const s = compile(m.config, m.registry, { workload: 'ledger', namespace: 'bank' });
  const p = s.rateLimits?.policies[0];
  assert.ok(p, 'ledger has the policy');
  assert.equal(p.name, 'bank/ledger-limits');
  assert.equal(p.service, 'ledger.bank.svc.cluster.local');
  assert.deepEqual(p.store, { redis: '127.0.0.1:6379', timeoutMs: 50, failureMode: 'open' });
  assert.deepEqual(p.limits[0], { name: 'per-caller', by: 'caller', scope: 'local', algorithm: { kind: 'token-bucket', requests: 20, periodMs: 1000, burst: 20 } });
  assert.deepEqual(p.limits[1]!.callers, { principals: ['cluster.local/ns/bank/sa/mobile', 'cluster.local/ns/bank/sa/web'], namespaces: [] });
  assert.deepEqual(p.limits[1]!.match, [{ methods: ['POST'], paths: ['/transfer*'] }]);
  assert.deepEqual(p.limits[1]!.algorithm, { kind: 'window', requests: 100, windowMs: 60_000 });
  assert.ok(Object.isFrozen(p.limits[1]!.callers!.principals), 'deeply frozen');
  // Negative: a workload the target does not select, and a caller, get nothing.
  assert.equal(compile(m.config, m.registry, { workload: 'audit', namespace: 'bank' }).rateLimits, undefined);
  assert.equal(compile(m.config, m.registry, { workload: 'web', namespace: 'bank' }).rateLimits, undefined);
  // A changed limit changes the snapshot's version.
  const m2 = meshFromYaml(`${MESH}---\n${POLICY.replace('requests: 20 }', 'requests: 30 }')}`);
  assert.notEqual(compile(m2.config, m2.registry, { workload: 'ledger', namespace: 'bank' }).version, s.version);
});

test('a policy whose target Service does not exist is reported with its file, line and field', () => {
  const m = meshFromYaml(`${MESH}---\n${POLICY.replace('name: ledger }', 'name: ledgr }')}`, );
  const issues = rateLimitIssues(m.config.ofKind('RateLimitPolicy'), m.registry);
  assert.equal(issues.length, 1);
  const d = issues[0]!;
  assert.equal(d.level, 'error');
  assert.equal(d.field, 'spec.targetRef.name');
  assert.equal(d.resource, 'RateLimitPolicy bank/ledger-limits');
  assert.match(d.message, /"ledgr"/);
  assert.ok(d.position && d.position.file === 'inline.yaml' && d.position.line > 1, `position: ${JSON.stringify(d.position)}`);
  assert.deepEqual(rateLimitIssues(meshFromYaml(`${MESH}---\n${POLICY}`).config.ofKind('RateLimitPolicy'), m.registry), []);
});

test('simulate names the limits that apply to a request and their buckets', () => {
  const m = meshFromYaml(`${MESH}---\n${POLICY}`);
  const s = compile(m.config, m.registry, { workload: 'ledger', namespace: 'bank' });
  const web = 'cluster.local/ns/bank/sa/web';
  const post = simulateRateLimits(s, { method: 'POST', path: '/transfer/7?x=1', principal: web, headers: { 'x-tenant': 'acme' } });
  assert.deepEqual(post.map((l) => [l.limit, l.scope, l.key]), [['per-caller', 'local', web], ['front', 'global', ''], ['tenant', 'local', 'acme']]);
  assert.match(post[1]!.description, /quota of 100 per 60000ms window, global, one bucket for all callers/);
  // Outside the group, off the route, without the header: only the per-caller limit.
  const batch = simulateRateLimits(s, { method: 'POST', path: '/transfer', principal: 'cluster.local/ns/bank/sa/batch' });
  assert.deepEqual(batch.map((l) => l.limit), ['per-caller']);
  assert.deepEqual(simulateRateLimits(s, { method: 'GET', path: '/transfer', principal: web }).map((l) => l.limit), ['per-caller']);
  assert.deepEqual(simulateRateLimits(s, { service: 'audit.bank.svc.cluster.local', path: '/' }), []);
});

test('enforce: InboundAndOutbound and Inbound are accepted without a warning (the caller side is built)', async () => {
  const { loadSpec } = await import('./kind-table.js');
  const spec = { targetRef: target, limits: [{ name: 'a', rate }] };
  for (const enforce of ['InboundAndOutbound', 'Inbound']) {
    const r = loadSpec(V, 'RateLimitPolicy', { ...spec, enforce });
    assert.equal(r.resources.length, 1);
    assert.deepEqual(r.diagnostics, [], enforce);
  }
  assert.equal(loadSpec(V, 'RateLimitPolicy', { ...spec, enforce: 'Outbound' }).diagnostics[0]?.field, 'spec.enforce', 'an unknown mode is an error at its field');
});

const OUTBOUND = POLICY.replace('  store:', '  enforce: InboundAndOutbound\n  store:');

test('the compiler gives each caller the limits of InboundAndOutbound policies that include it; Inbound-only policies give callers nothing', () => {
  const m = meshFromYaml(`${MESH}---\n${OUTBOUND}`);
  const web = compile(m.config, m.registry, { workload: 'web', namespace: 'bank' }).outboundRateLimits;
  assert.ok(web, 'web, in the front group, gets caller-side limits');
  assert.equal(web.policies.length, 1);
  const p = web.policies[0]!;
  assert.equal(p.service, 'ledger.bank.svc.cluster.local');
  assert.deepEqual(p.limits.map((l) => l.name), ['per-caller', 'front', 'tenant']);
  assert.equal(p.limits[1]!.callers, undefined, 'callers are resolved away');
  assert.deepEqual(p.store, { redis: '127.0.0.1:6379', timeoutMs: 50, failureMode: 'open' }, 'the global limit keeps the store');
  assert.ok(Object.isFrozen(p.limits));
  // batch is not in the group: no `front` limit, and no store (nothing global left).
  const batch = compile(m.config, m.registry, { workload: 'batch', namespace: 'bank' }).outboundRateLimits!.policies[0]!;
  assert.deepEqual(batch.limits.map((l) => l.name), ['per-caller', 'tenant']);
  assert.equal(batch.store, undefined);
  // The destination's own inbound limits are unchanged by enforce.
  assert.deepEqual(compile(m.config, m.registry, { workload: 'ledger', namespace: 'bank' }).rateLimits?.policies[0]!.limits.map((l) => l.name), ['per-caller', 'front', 'tenant']);
  // Negative: the same policy enforced Inbound only gives no caller anything.
  const inboundOnly = meshFromYaml(`${MESH}---\n${POLICY}`);
  assert.equal(compile(inboundOnly.config, inboundOnly.registry, { workload: 'web', namespace: 'bank' }).outboundRateLimits, undefined);
  // Negative: a policy whose every limit is for a group the caller is not in.
  const groupOnly = meshFromYaml(`${MESH}---\n${OUTBOUND.replace(/  - name: per-caller\n    rate: \{ requests: 20 \}\n/, '').replace(/  - name: tenant[\s\S]*$/, '')}`);
  assert.equal(compile(groupOnly.config, groupOnly.registry, { workload: 'batch', namespace: 'bank' }).outboundRateLimits, undefined);
  assert.equal(compile(groupOnly.config, groupOnly.registry, { workload: 'web', namespace: 'bank' }).outboundRateLimits?.policies[0]!.limits.length, 1);
  // The caller's snapshot version moves with the limits.
  const m2 = meshFromYaml(`${MESH}---\n${OUTBOUND.replace('requests: 20 }', 'requests: 30 }')}`);
  assert.notEqual(compile(m2.config, m2.registry, { workload: 'web', namespace: 'bank' }).version, compile(m.config, m.registry, { workload: 'web', namespace: 'bank' }).version);
});

test('a caller that cannot reach the target service gets none of its limits', () => {
  // ledger exported to its own namespace only: a workload of another namespace has no cluster for it.
  const outsider = k8sDeployment('outsider', 'shop', 'outsider');
  const open = meshFromYaml(`${MESH}---\n${outsider}---\n${OUTBOUND}`);
  assert.equal(compile(open.config, open.registry, { workload: 'outsider', namespace: 'shop' }).outboundRateLimits?.policies[0]!.name, 'bank/ledger-limits', 'reachable: limited');
  const scoped = MESH.replace(/metadata: \{ name: ledger, namespace: bank \}\nspec:\n  selector/, `metadata: { name: ledger, namespace: bank, annotations: { networking.istio.io/exportTo: "." } }\nspec:\n  selector`);
  assert.notEqual(scoped, MESH);
  const m = meshFromYaml(`${scoped}---\n${outsider}---\n${OUTBOUND}`);
  const s = compile(m.config, m.registry, { workload: 'outsider', namespace: 'shop' });
  assert.ok(!s.clusters.some((c) => c.service === 'ledger.bank.svc.cluster.local'), 'ledger is out of reach');
  assert.equal(s.outboundRateLimits, undefined);
});
