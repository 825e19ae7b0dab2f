/**
 * Slow start (Istio's warmup / warmupDurationSecs, Envoy's slow_start_config):
 * the factor, the balancers that honour it (ROUND_ROBIN, LEAST_REQUEST) and
 * those that do not (RANDOM, CONSISTENT_HASH), with a clock the test moves;
 * and the per-data-plane memory of when each host joined, which must outlive
 * snapshots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balancerFactory, createBalancer, hostsFirstSeen, type LbHost } from '../../src/proxy/load-balancer.js';
import { hostAges, warmupFactor, type Warmup } from '../../src/proxy/lb/slow-start.js';
import type { LbPolicy } from '../../src/protocol/snapshot.js';
import { tally } from '../helpers/proxy.js';

interface H extends LbHost { id: string; address: string; weight: number; active: number }
const hosts = (n: number): H[] => Array.from({ length: n }, (_, i) => ({ id: `h${i}`, address: `10.0.0.${i}:80`, weight: 1, active: 0 }));
const W: Warmup = { durationMs: 10_000, aggression: 1, minimumPercent: 10 };

test('warmupFactor: linear with aggression 1, a floor of minimumPercent, all of the weight after the window', () => {
  assert.equal(warmupFactor(W, 5_000), 0.5);
  assert.equal(warmupFactor(W, 500), 0.1, '5 % of the window: the 10 % floor');
  assert.equal(warmupFactor({ ...W, minimumPercent: 1 }, 500), 0.05);
  assert.equal(warmupFactor(W, 10_000), 1);
  assert.equal(warmupFactor(W, 99_000), 1);
  assert.equal(warmupFactor({ ...W, aggression: 2 }, 2_500), 0.5, '(1/4) ^ (1/2): more aggression ramps up sooner');
  assert.ok(Math.abs(warmupFactor({ ...W, aggression: 4, minimumPercent: 0 }, 100) - Math.pow(0.01, 0.25)) < 1e-12);
});

/** A balancer where h2 joined at t=0 and the others long before, on a clock the test sets. */
function warmingBalancer(policy: LbPolicy, warmup: Warmup = W) {
  const clock = { t: 0 };
  const hs = hosts(3);
  const joined = new Map([['h0', -1e6], ['h1', -1e6], ['h2', 0]]);
  const b = createBalancer<H>({ policy, warmup }, hs, (h) => h.id, { firstSeen: (h) => joined.get(h.id)!, now: () => clock.t });
  const share = (picks: number) => (tally(Array.from({ length: picks }, () => b.pick(undefined, undefined)!.id)).h2 ?? 0) / picks;
  return { clock, share, b, hs };
}

for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST'] as const) {
  test(`slow start (${policy}): a new host gets a small share first, more as it ages, its full share after the window`, () => {
    const { clock, share, b } = warmingBalancer(policy);
    clock.t = 500;
    const early = share(2100);
    assert.ok(early > 0.02 && early < 0.08, `factor 0.1: 0.1 / 2.1 ≈ 5 % (${early})`);
    clock.t = 5_000;
    share(300); // the host's next turn was scheduled with its old weight; let the schedule catch up
    const middle = share(2500);
    assert.ok(middle > 0.14 && middle < 0.25, `factor 0.5: 0.5 / 2.5 = 20 % (${middle})`);
    clock.t = 10_001;
    share(300);
    const t = tally(Array.from({ length: 3000 }, () => b.pick(undefined, undefined)!.id));
    // ROUND_ROBIN takes turns again (exact); LEAST_REQUEST's two choices among idle hosts are random.
    const slack = policy === 'ROUND_ROBIN' ? 2 : 120;
    for (const id of ['h0', 'h1', 'h2']) assert.ok(Math.abs(t[id]! - 1000) <= slack, `after the window: even (${JSON.stringify(t)})`);
  });

  test(`slow start (${policy}): without warmup, or once every host is old, a new host gets its share at once (negative)`, () => {
    const hs = hosts(3);
    const b = createBalancer<H>(policy, hs, (h) => h.id, { firstSeen: (h) => (h.id === 'h2' ? 0 : -1e6), now: () => 1 });
    const t = tally(Array.from({ length: 3000 }, () => b.pick(undefined, undefined)!.id));
    assert.ok(t.h2! > 850, `no warmup configured: a third (${JSON.stringify(t)})`);
    const old = createBalancer<H>({ policy, warmup: W }, hs, (h) => h.id, { firstSeen: () => -1e6, now: () => 1 });
    const t2 = tally(Array.from({ length: 3000 }, () => old.pick(undefined, undefined)!.id));
    assert.ok(t2.h2! > 850, `all out of their window: a third (${JSON.stringify(t2)})`);
  });
}

test('slow start: the minimum percent is the floor of a brand-new host\'s share', () => {
  const { clock, share } = warmingBalancer('ROUND_ROBIN', { ...W, minimumPercent: 50 });
  clock.t = 10;
  const s = share(2500);
  assert.ok(Math.abs(s - 0.5 / 2.5) < 0.04, `half its weight from the start (${s})`);
});

for (const policy of ['RANDOM', 'CONSISTENT_HASH'] as const) {
  test(`slow start does not apply to ${policy}, as in Envoy`, () => {
    const hs = hosts(3);
    const b = createBalancer<H>({ policy, warmup: W }, hs, (h) => h.id, { firstSeen: (h) => (h.id === 'h2' ? 0 : -1e6), now: () => 100 });
    const t = tally(Array.from({ length: 3000 }, (_, i) => b.pick(`k${i}`, undefined)!.id));
    assert.ok(t.h2! > 800, `a third at once (${JSON.stringify(t)})`);
  });
}

test('hostAges: first-seen times outlive snapshots; a host that left is new when it comes back; one map per data plane', () => {
  const planeA = {};
  const planeB = {};
  const cluster = { name: 'outbound|80||api', lb: { policy: 'ROUND_ROBIN' as const, warmup: W, locality: { enabled: false, failover: [], distribute: [], failoverPriority: [] } } };
  let t = 1000;
  const now = () => t;
  const first = hostsFirstSeen(cluster, ['a:1', 'b:1'], planeA, now)!;
  assert.equal(first('a:1'), 1000);
  t = 2000;
  const second = hostsFirstSeen(cluster, ['a:1', 'b:1', 'c:1'], planeA, now)!;
  assert.deepEqual([second('a:1'), second('b:1'), second('c:1')], [1000, 1000, 2000], 'a and b keep their time; c is new');
  t = 3000;
  hostsFirstSeen(cluster, ['a:1', 'c:1'], planeA, now);
  t = 4000;
  const fourth = hostsFirstSeen(cluster, ['a:1', 'b:1', 'c:1'], planeA, now)!;
  assert.deepEqual([fourth('a:1'), fourth('b:1'), fourth('c:1')], [1000, 4000, 2000], 'b left and came back: new again');
  assert.equal(hostsFirstSeen(cluster, ['a:1'], planeB, now)!('a:1'), 4000, 'another data plane has its own memory');
  assert.equal(hostsFirstSeen({ ...cluster, lb: { ...cluster.lb, policy: 'RANDOM' } }, ['a:1'], planeA, now), undefined, 'no slow start for RANDOM');
  t = 5000;
  assert.equal(hostsFirstSeen(cluster, ['a:1'], planeA, now)!('a:1'), 5000, 'a cluster that lost slow start is forgotten');
  assert.notEqual(hostAges(planeA), hostAges(planeB));
});

test('balancerFactory: subsets (a locality\'s hosts) share the cluster\'s first-seen times', () => {
  const owner = {};
  const cluster = { name: 'outbound|80||svc', lb: { policy: 'ROUND_ROBIN' as const, warmup: { ...W, durationMs: 1_000_000 }, locality: { enabled: false, failover: [], distribute: [], failoverPriority: [] } } };
  let t0 = 0;
  const now = () => t0;
  const old = hosts(2);
  balancerFactory(cluster, old, owner, now);
  t0 = 1_800_000;
  const all = [...old, ...hosts(3).slice(2)];
  const make = balancerFactory(cluster, all, owner, now);
  const sub = make([all[0]!, all[2]!]);
  const t = tally(Array.from({ length: 2000 }, () => sub.pick(undefined, undefined)!.id));
  assert.ok(t.h2! < 200, `the new host warms in the subset too (${JSON.stringify(t)})`);
  const wb = make(all);
  const whole = tally(Array.from({ length: 2000 }, () => wb.pick(undefined, undefined)!.id));
  assert.ok(whole.h0! > 800 && whole.h1! > 800, `old hosts are old in any subset (${JSON.stringify(whole)})`);
});
