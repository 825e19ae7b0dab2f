/**
 * The contract every load balancer keeps (one shared suite, as every hono
 * router runs the same cases), then what makes each policy itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer, type LbHost } from '../../src/proxy/load-balancer.js';
import { hash32 } from '../../src/proxy/lb/consistent-hash.js';
import { tally } from '../helpers/proxy.js';

interface H extends LbHost { id: string; weight: number; active: number }
const hosts = (n: number, weight = (_i: number) => 1): H[] => Array.from({ length: n }, (_, i) => ({ id: `h${i}`, weight: weight(i), active: 0 }));
const POLICIES = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'CONSISTENT_HASH', 'PASSTHROUGH'] as const;
const make = (policy: string, hs: H[]) => createBalancer<H>(policy, hs, (h) => h.id);

for (const policy of POLICIES) {
  test(`lb contract (${policy}): no hosts, no pick`, () => {
    assert.equal(make(policy, []).pick('k', undefined), undefined);
    assert.equal(make(policy, []).pick(undefined, []), undefined);
  });

  test(`lb contract (${policy}): picks only given hosts, and a single host always`, () => {
    const hs = hosts(4);
    const b = make(policy, hs);
    for (let i = 0; i < 200; i++) assert.ok(hs.includes(b.pick(`key${i}`, undefined)!));
    const one = hosts(1);
    const b1 = make(policy, one);
    for (let i = 0; i < 20; i++) assert.equal(b1.pick(`k${i}`, undefined), one[0]);
    assert.equal(b1.pick('k', one), one[0], 'the only host, even when tried before');
  });

  test(`lb contract (${policy}): avoids hosts tried before while others remain`, () => {
    const hs = hosts(3);
    const b = make(policy, hs);
    for (let i = 0; i < 100; i++) {
      const tried = [hs[i % 3]!];
      const p = b.pick(`k${i}`, tried)!;
      assert.ok(!tried.includes(p), `pick ${i} avoided ${tried[0]!.id}`);
      const p2 = b.pick(`k${i}`, [hs[0]!, hs[1]!])!;
      assert.equal(p2, hs[2]);
    }
    assert.ok(hs.includes(b.pick('k', hs)!), 'all tried: still a host');
  });

  test(`lb contract (${policy}): spreads distinct keys over every host`, () => {
    const hs = hosts(3);
    const b = make(policy, hs);
    const counts = tally(Array.from({ length: 600 }, (_, i) => b.pick(`user-${i}`, undefined)!.id));
    for (const h of hs) assert.ok((counts[h.id] ?? 0) > 100, `${h.id} got ${counts[h.id]} of 600: ${JSON.stringify(counts)}`);
  });
}

test('lb: an unknown policy is an error naming it', () => {
  assert.throws(() => make('FASTEST', hosts(2)), /unknown load-balancing policy "FASTEST"/);
});

test('ROUND_ROBIN cycles through the hosts in a fixed order', () => {
  const hs = hosts(3);
  const b = make('ROUND_ROBIN', hs);
  const seq = Array.from({ length: 12 }, () => b.pick(undefined, undefined)!.id);
  for (let i = 3; i < seq.length; i++) assert.equal(seq[i], seq[i - 3]);
  assert.deepEqual(new Set(seq.slice(0, 3)).size, 3);
});

test('ROUND_ROBIN with weights gives each host its share in every cycle, interleaved', () => {
  const hs = hosts(3, (i) => [5, 1, 1][i]!);
  const b = make('ROUND_ROBIN', hs);
  const seq = Array.from({ length: 70 }, () => b.pick(undefined, undefined)!.id);
  assert.deepEqual(tally(seq), { h0: 50, h1: 10, h2: 10 });
  assert.ok(!seq.slice(0, 7).join(',').includes('h0,h0,h0,h0,h0'), `smooth, not bursts: ${seq.slice(0, 7)}`);
});

test('LEAST_REQUEST prefers the host with fewer requests in flight', () => {
  const hs = hosts(2);
  const b = make('LEAST_REQUEST', hs);
  hs[0]!.active = 3;
  for (let i = 0; i < 50; i++) assert.equal(b.pick(undefined, undefined), hs[1]);
  const three = hosts(3);
  three[1]!.active = 5;
  const b3 = make('LEAST_REQUEST', three);
  const picks = tally(Array.from({ length: 300 }, () => b3.pick(undefined, undefined)!.id));
  assert.equal(picks.h1, undefined, `the busy host is never one of two choices' winner: ${JSON.stringify(picks)}`);
});

test('RANDOM follows the weights', () => {
  const hs = hosts(2, (i) => (i === 0 ? 9 : 1));
  const b = make('RANDOM', hs);
  const counts = tally(Array.from({ length: 2000 }, () => b.pick(undefined, undefined)!.id));
  assert.ok(counts.h1! > 100 && counts.h1! < 300, JSON.stringify(counts));
});

test('CONSISTENT_HASH: a key keeps its host, and removing a host moves only its keys', () => {
  const hs = hosts(4);
  const b = make('CONSISTENT_HASH', hs);
  const keys = Array.from({ length: 400 }, (_, i) => `session-${i}`);
  const before = new Map(keys.map((k) => [k, b.pick(k, undefined)!.id]));
  for (const k of keys) assert.equal(b.pick(k, undefined)!.id, before.get(k), 'stable');
  const fewer = make('CONSISTENT_HASH', hs.filter((h) => h.id !== 'h3'));
  let moved = 0;
  for (const k of keys) {
    const now = fewer.pick(k, undefined)!.id;
    if (before.get(k) !== 'h3') assert.equal(now, before.get(k), `${k} stays where it was`);
    else moved++;
  }
  assert.ok(moved > 40 && moved < 160, `about a quarter moved: ${moved}`);
  assert.notEqual(hash32('a'), hash32('b'));
});
