/**
 * Locality-aware balancing (src/proxy/locality.ts, priority-load.ts) on plain objects: the
 * priority levels Istio's settings give, Envoy's priority loads with the
 * 1.4 overprovisioning factor, and the selector over levels with ejected
 * hosts and panic mode.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Locality } from '../../src/protocol/snapshot.js';
import { createBalancer } from '../../src/proxy/load-balancer.js';
import { compile } from '../../src/compile/index.js';
import { lbPriority, localityMatch, priorityLevels, type LocalitySetting } from '../../src/proxy/locality.js';
import { levelHealth, priorityLoads, PrioritySelector } from '../../src/proxy/priority-load.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';

const loc = (s: string): Locality => { const [region = '', zone = '', subzone = ''] = s.split('/'); return { region, zone, subzone }; };
interface Ep { readonly name: string; readonly locality: Locality; readonly labels: Record<string, string>; readonly weight: number; readonly active: number }
const ep = (name: string, where: string, labels: Record<string, string> = {}): Ep => ({ name, locality: loc(where), labels, weight: 1, active: 0 });
const setting = (s: Partial<LocalitySetting> = {}): LocalitySetting => ({ enabled: true, failover: [], distribute: [], failoverPriority: [], ...s });
const names = (levels: readonly (readonly { members: readonly Ep[] }[])[]) => levels.map((l) => l.flatMap((g) => g.members.map((m) => m.name)));
const proxy = { locality: loc('r1/a/s1'), labels: { network: 'n1', version: 'v1' } };

const EPS = [ep('same', 'r1/a/s1'), ep('subzone', 'r1/a/s2'), ep('zone', 'r1/b/s1'), ep('r2', 'r2/x/s1'), ep('r3', 'r3/y/s1')];

test('locality match: Istio globs', () => {
  assert.ok(localityMatch(loc('r1/a/s1'), 'r1'));
  assert.ok(localityMatch(loc('r1/a/s1'), 'r1/*'));
  assert.ok(localityMatch(loc('r1/a/s1'), 'r1/a/*'));
  assert.ok(localityMatch(loc('r1/a/s1'), '*'));
  assert.ok(!localityMatch(loc('r1/a/s1'), 'r1/b/*'));
  assert.ok(!localityMatch(loc('r2/a/s1'), 'r1/*'));
  assert.deepEqual([lbPriority(loc('r/a/s'), loc('r/a/s')), lbPriority(loc('r/a/s'), loc('r/a/t')), lbPriority(loc('r/a/s'), loc('r/b/s')), lbPriority(loc('r/a/s'), loc('q/a/s'))], [0, 1, 2, 3]);
});

test('locality levels: same subzone, same zone, same region, then the rest (the default failover); off: one level', () => {
  assert.deepEqual(names(priorityLevels(EPS, proxy, setting())), [['same'], ['subzone'], ['zone'], ['r2', 'r3']]);
  assert.deepEqual(names(priorityLevels(EPS, proxy, setting({ enabled: false }))), [['same', 'subzone', 'zone', 'r2', 'r3']]);
});

test('locality levels: a failover rule puts its region before the other regions', () => {
  assert.deepEqual(names(priorityLevels(EPS, proxy, setting({ failover: [{ from: 'r1', to: 'r3' }] }))), [['same'], ['subzone'], ['zone'], ['r3'], ['r2']]);
  assert.deepEqual(names(priorityLevels(EPS, proxy, setting({ failover: [{ from: 'r9', to: 'r3' }] }))), [['same'], ['subzone'], ['zone'], ['r2', 'r3']], 'a rule for another region changes nothing');
});

test('locality levels: failoverPriority ranks by the leading labels shared with the proxy; with failover, locality ranks within', () => {
  const eps = [ep('both', 'r2/x', { network: 'n1', version: 'v1' }), ep('net', 'r1/a/s1', { network: 'n1', version: 'v2' }), ep('none', 'r1/a/s1', { network: 'n2', version: 'v1' }), ep('net2', 'r3/y', { network: 'n1' })];
  assert.deepEqual(names(priorityLevels(eps, proxy, setting({ failoverPriority: ['network', 'version'] }))), [['both'], ['net', 'net2'], ['none']]);
  assert.deepEqual(names(priorityLevels(eps, proxy, setting({ failoverPriority: ['network'], failover: [{ from: 'r1', to: 'r3' }] }))), [['net'], ['net2'], ['both'], ['none']]);
  assert.deepEqual(names(priorityLevels(eps, proxy, setting({ failoverPriority: ['version=v2'] }))), [['net'], ['both', 'none', 'net2']], 'key=value compares with the value');
  assert.deepEqual(names(priorityLevels([ep('a', 'r1/a'), ep('b', 'r1/b'), ep('c', 'r2/a')], proxy, setting({ failoverPriority: ['topology.kubernetes.io/region'] }))), [['a', 'b'], ['c']], 'topology labels come from the locality');
});

test('locality levels: distribute weights localities in one level; a glob shares its weight; unnamed localities get nothing', () => {
  const eps = [ep('a1', 'r1/a/s1'), ep('a2', 'r1/a/s1'), ep('b', 'r1/b/s1'), ep('c', 'r1/c/s1'), ep('far', 'r2/x/s1')];
  const levels = priorityLevels(eps, proxy, setting({ distribute: [{ from: 'r1/a/*', to: { 'r1/a/*': 80, 'r1/b/*': 10, 'r1/c/*': 10 } }] }));
  assert.equal(levels.length, 1);
  assert.deepEqual(levels[0]!.map((g) => [g.locality, g.members.length, g.weight]), [['r1/a/s1', 2, 80], ['r1/b/s1', 1, 10], ['r1/c/s1', 1, 10]]);
  const shared = priorityLevels(eps, proxy, setting({ distribute: [{ from: 'r1/*', to: { 'r1/a/*': 50, 'r1/*': 50 } }] }));
  assert.deepEqual(shared[0]!.map((g) => [g.locality, g.weight]), [['r1/a/s1', 50], ['r1/b/s1', 25], ['r1/c/s1', 25]]);
  assert.deepEqual(names(priorityLevels(eps, proxy, setting({ distribute: [{ from: 'r9/*', to: { 'r9/*': 100 } }] }))), [['a1', 'a2', 'b', 'c', 'far']], 'no rule for this proxy: one level');
});

test('priority loads: a level takes min(100, 1.4 × healthy %) of what is left; under 100 in all, scaled up', () => {
  assert.equal(levelHealth(1, 2), 70);
  assert.equal(levelHealth(3, 4), 100);
  assert.deepEqual(priorityLoads([100, 100]), [100, 0]);
  assert.deepEqual(priorityLoads([70, 100]), [70, 30]);
  assert.deepEqual(priorityLoads([0, 100, 100]), [0, 100, 0]);
  assert.deepEqual(priorityLoads([35, 35]), [50, 50], '70 % in all: scaled to 100');
  assert.deepEqual(priorityLoads([0, 0]), [0, 0]);
});

const rr = (hs: readonly Ep[]) => createBalancer('ROUND_ROBIN', hs, (h) => h.name);
function seq(n: number): () => number {
  let i = 0;
  return () => ((i++ % n) + 0.5) / n; // evenly spread "random" numbers, so counts are exact
}
const count = (pick: () => Ep | undefined, n: number) => {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) { const h = pick(); const k = h?.name ?? 'none'; out[k] = (out[k] ?? 0) + 1; }
  return out;
};

test('selector: all traffic to the best level while it is healthy; an ejection there spills 1.4 × what is left down', () => {
  const a = [ep('a1', 'r1/a'), ep('a2', 'r1/a')];
  const b = [ep('b1', 'r1/b'), ep('b2', 'r1/b')];
  const levels = [[{ hosts: a, total: 2, weight: 1 }], [{ hosts: b, total: 2, weight: 1 }]];
  const out = new Set<Ep>();
  const mk = () => new PrioritySelector(levels, (h) => out.has(h), 0, rr, seq(100));
  const healthy = mk();
  assert.deepEqual(healthy.loads, [100, 0]);
  assert.deepEqual(count(() => healthy.pick(undefined, undefined), 100), { a1: 50, a2: 50 });
  out.add(a[0]!);
  const half = mk();
  assert.deepEqual(half.loads, [70, 30]);
  assert.deepEqual(count(() => half.pick(undefined, undefined), 100), { a2: 70, b1: 15, b2: 15 });
  out.add(a[1]!);
  const zoneB = mk();
  assert.deepEqual(count(() => zoneB.pick(undefined, undefined), 10), { b1: 5, b2: 5 }, 'zone a out: all to zone b');
  out.add(b[0]!); out.add(b[1]!);
  assert.equal(mk().pick(undefined, undefined), undefined, 'nothing healthy, no panic threshold: no host');
});

test('selector: minHealthPercent: a level under it balances over all its hosts, only while the levels together are under 100 %', () => {
  const hs = Array.from({ length: 10 }, (_, i) => ep(`h${i}`, 'r1/a'));
  const levels = [[{ hosts: hs, total: 10, weight: 1 }]];
  const out = new Set(hs.slice(0, 7));
  const panic = new PrioritySelector(levels, (h) => out.has(h), 50, rr, seq(10));
  assert.deepEqual(panic.panic, [true]);
  assert.equal(Object.keys(count(() => panic.pick(undefined, undefined), 10)).length, 10, '30 % healthy < 50 %: every host, ejected or not');
  const calm = new PrioritySelector(levels, (h) => out.has(h), 0, rr, seq(10));
  assert.deepEqual(Object.keys(count(() => calm.pick(undefined, undefined), 30)).sort(), ['h7', 'h8', 'h9'], 'no threshold: only the healthy');
  const fewer = new Set(hs.slice(0, 4));
  const ok = new PrioritySelector(levels, (h) => fewer.has(h), 50, rr, seq(10));
  assert.deepEqual(ok.panic, [false], '60 % healthy ≥ 50 %');
  const all = new Set(hs);
  const dead = new PrioritySelector(levels, (h) => all.has(h), 50, rr, seq(10));
  assert.ok(dead.pick(undefined, undefined), 'all ejected with a threshold: panic, some host');
});

test('selector: distribute weights localities, scaled by their health', () => {
  const a = [ep('a1', 'r1/a'), ep('a2', 'r1/a')];
  const b = [ep('b1', 'r1/b')];
  const levels = [[{ hosts: a, total: 2, weight: 80 }, { hosts: b, total: 1, weight: 20 }]];
  const s = new PrioritySelector(levels, () => false, 0, rr, seq(100));
  assert.deepEqual(count(() => s.pick(undefined, undefined), 100), { a1: 40, a2: 40, b1: 20 });
  const out = new Set([a[0]!]);
  const half = new PrioritySelector(levels, (h) => out.has(h), 0, rr, seq(100));
  // zone a: 80 × min(1, 1.4 × ½) = 56 against 20.
  const c = count(() => half.pick(undefined, undefined), 76);
  assert.deepEqual(c, { a2: 56, b1: 20 });
});

test('selector: a retry takes a host it has not tried, in a lower level when the best one has none left', () => {
  const a = [ep('a1', 'r1/a'), ep('a2', 'r1/a')];
  const b = [ep('b1', 'r1/b')];
  const s = new PrioritySelector([[{ hosts: a, total: 2, weight: 1 }], [{ hosts: b, total: 1, weight: 1 }]], () => false, 0, rr, seq(7));
  const first = s.pick(undefined, [])!;
  const second = s.pick(undefined, [first])!;
  assert.ok(a.includes(second) && second !== first);
  assert.equal(s.pick(undefined, [first, second]), b[0]);
  assert.ok(s.pick(undefined, [...a, ...b]), 'all tried: still a host');
});


function apiLb(trafficPolicy: string) {
  const m = meshFromYaml([
    k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }), k8sDeployment('web', 'shop', 'web'),
    k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }), k8sDeployment('api', 'shop', 'api'),
  ].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec: { host: api, trafficPolicy: ${trafficPolicy} }
`);
  return compile(m.config, m.registry, { workload: 'web', namespace: 'shop' }).clusters.find((c) => c.service === 'api.shop.svc.cluster.local')!.lb.locality;
}

test('compile: locality balancing is on with outlier detection or a distribute rule, off without either or when disabled', () => {
  assert.equal(apiLb('{ connectionPool: { tcp: { maxConnections: 10 } } }').enabled, false);
  assert.equal(apiLb('{ outlierDetection: {} }').enabled, true);
  assert.equal(apiLb('{ loadBalancer: { localityLbSetting: { failover: [{ from: r1, to: r2 }] } } }').enabled, false, 'failover needs outlier detection');
  assert.equal(apiLb('{ loadBalancer: { localityLbSetting: { distribute: [{ from: "r1/*", to: { "r1/*": 100 } }] } } }').enabled, true, 'weights do not');
  assert.equal(apiLb('{ outlierDetection: {}, loadBalancer: { localityLbSetting: { enabled: false } } }').enabled, false);
});

test('selector: retryRemoteLocalities: true sends a retry to a level no attempt used; false keeps it in the normal selection', () => {
  const a = [ep('a1', 'r1/a'), ep('a2', 'r1/a')];
  const b = [ep('b1', 'r1/b')];
  const s = new PrioritySelector([[{ hosts: a, total: 2, weight: 1 }], [{ hosts: b, total: 1, weight: 1 }]], () => false, 0, rr, seq(7));
  assert.equal(s.pick(undefined, [a[0]!], true), b[0], 'to zone b although a2 is untried');
  assert.ok(a.includes(s.pick(undefined, [...b], true)!), 'a retry after zone b goes back to zone a');
  assert.equal(s.pick(undefined, [a[0]!], false), a[1]);
  assert.ok(a.includes(s.pick(undefined, [...a], false)!), 'zone a all tried: a tried host of zone a rather than zone b');
});
