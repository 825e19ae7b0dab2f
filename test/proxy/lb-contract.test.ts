/**
 * The contract every load balancer keeps (one shared suite, as every hono
 * router runs the same cases) — endpoint weights included, by measured
 * shares — then what makes each policy itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer, type BalancerConfig, type LbHost } from '../../src/proxy/load-balancer.js';
import { tally } from '../helpers/proxy.js';

interface H extends LbHost { id: string; weight: number; active: number }
const hosts = (n: number, weight = (_i: number) => 1): H[] => Array.from({ length: n }, (_, i) => ({ id: `h${i}`, weight: weight(i), active: 0 }));

/** Every policy, and both consistent-hash algorithms. */
const POLICIES: readonly { readonly name: string; readonly config: BalancerConfig }[] = [
  { name: 'ROUND_ROBIN', config: 'ROUND_ROBIN' },
  { name: 'LEAST_REQUEST', config: 'LEAST_REQUEST' },
  { name: 'RANDOM', config: 'RANDOM' },
  { name: 'PASSTHROUGH', config: 'PASSTHROUGH' },
  { name: 'CONSISTENT_HASH ring', config: { policy: 'CONSISTENT_HASH', hash: { algorithm: 'RING_HASH', minimumRingSize: 1024 } } },
  { name: 'CONSISTENT_HASH maglev', config: { policy: 'CONSISTENT_HASH', hash: { algorithm: 'MAGLEV', tableSize: 65537 } } },
  { name: 'CONSISTENT_HASH (default: ring)', config: 'CONSISTENT_HASH' },
];
const make = (config: BalancerConfig, hs: H[]) => createBalancer<H>(config, hs, (h) => h.id);

/** Shares of `count` picks with distinct keys (consistent hash spreads keys, the others ignore them). */
function shares(config: BalancerConfig, hs: H[], count: number): Record<string, number> {
  const b = make(config, hs);
  const t = tally(Array.from({ length: count }, (_, i) => b.pick(`user-${i}`, undefined)!.id));
  return Object.fromEntries(hs.map((h) => [h.id, (t[h.id] ?? 0) / count]));
}

for (const { name, config } of POLICIES) {
  test(`lb contract (${name}): no hosts, no pick`, () => {
    assert.equal(make(config, []).pick('k', undefined), undefined);
    assert.equal(make(config, []).pick(undefined, []), undefined);
  });

  test(`lb contract (${name}): picks only given hosts, and a single host always`, () => {
    const hs = hosts(4);
    const b = make(config, hs);
    for (let i = 0; i < 200; i++) assert.ok(hs.includes(b.pick(`key${i}`, undefined)!));
    const one = hosts(1);
    const b1 = make(config, one);
    for (let i = 0; i < 20; i++) assert.equal(b1.pick(`k${i}`, undefined), one[0]);
    assert.equal(b1.pick('k', one), one[0], 'the only host, even when tried before');
  });

  test(`lb contract (${name}): avoids hosts tried before while others remain`, () => {
    const hs = hosts(3);
    const b = make(config, hs);
    for (let i = 0; i < 100; i++) {
      const tried = [hs[i % 3]!];
      const p = b.pick(`k${i}`, tried)!;
      assert.ok(!tried.includes(p), `pick ${i} avoided ${tried[0]!.id}`);
      const p2 = b.pick(`k${i}`, [hs[0]!, hs[1]!])!;
      assert.equal(p2, hs[2]);
    }
    assert.ok(hs.includes(b.pick('k', hs)!), 'all tried: still a host');
  });

  test(`lb contract (${name}): spreads distinct keys over every host`, () => {
    const s = shares(config, hosts(3), 600);
    for (const [id, share] of Object.entries(s)) assert.ok(share > 1 / 6, `${id} got ${share}: ${JSON.stringify(s)}`);
  });

  test(`lb contract (${name}): endpoint weights set the shares`, () => {
    const weights = [3, 1, 1, 5];
    const total = weights.reduce((a, b) => a + b, 0);
    const s = shares(config, hosts(4, (i) => weights[i]!), 4000);
    weights.forEach((w, i) => {
      const got = s[`h${i}`]!;
      assert.ok(Math.abs(got - w / total) < 0.05, `h${i} (weight ${w}) got ${got.toFixed(3)}, expected ${(w / total).toFixed(3)}: ${JSON.stringify(s)}`);
    });
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

test('ROUND_ROBIN with weights (EDF) gives each host its share of every cycle, interleaved', () => {
  const hs = hosts(3, (i) => [5, 1, 1][i]!);
  const b = make('ROUND_ROBIN', hs);
  const seq = Array.from({ length: 700 }, () => b.pick(undefined, undefined)!.id);
  for (let c = 0; c < 700; c += 70) {
    const t = tally(seq.slice(c, c + 70));
    assert.ok(Math.abs(t.h0! - 50) <= 2 && Math.abs(t.h1! - 10) <= 2 && Math.abs(t.h2! - 10) <= 2, `cycle at ${c}: ${JSON.stringify(t)}`);
  }
  let run = 0;
  let longest = 0;
  for (const id of seq) { run = id === 'h0' ? run + 1 : 0; longest = Math.max(longest, run); }
  assert.ok(longest <= 4, `h0 never gets all 5 of its turns in a row (longest run ${longest}): ${seq.slice(0, 21).join(' ')}`);
});

test('LEAST_REQUEST with equal weights: two choices, the one with fewer requests in flight wins', () => {
  const hs = hosts(2);
  const b = make('LEAST_REQUEST', hs);
  hs[0]!.active = 3;
  for (let i = 0; i < 50; i++) assert.equal(b.pick(undefined, undefined), hs[1]);
  const three = hosts(3);
  three[1]!.active = 5;
  const b3 = make('LEAST_REQUEST', three);
  const picks = tally(Array.from({ length: 300 }, () => b3.pick(undefined, undefined)!.id));
  assert.equal(picks.h1, undefined, `the busy host is never one of two choices' winner: ${JSON.stringify(picks)}`);
  assert.ok(picks.h0! > 100 && picks.h2! > 100, JSON.stringify(picks));
});

test('LEAST_REQUEST choiceCount: more choices find the idle host more often; as many as hosts always do', () => {
  const busy = () => { const hs = hosts(10); for (const h of hs) h.active = 1; hs[7]!.active = 0; return hs; };
  const idleShare = (choiceCount: number) => {
    const hs = busy();
    const b = createBalancer<H>('LEAST_REQUEST', hs, (h) => h.id, { choiceCount });
    return Array.from({ length: 1000 }, () => b.pick(undefined, undefined)).filter((h) => h === hs[7]).length / 1000;
  };
  const two = idleShare(2);
  assert.ok(two > 0.12 && two < 0.28, `two of ten drawn: the idle host is one of them 20 % of the time (${two})`);
  assert.equal(idleShare(10), 1, 'all compared: always the idle host');
  const five = idleShare(5);
  assert.ok(five > 0.4 && five < 0.6, `five of ten: half the time (${five})`);
});

test('LEAST_REQUEST with unequal weights: weight / (active + 1) ^ bias, read at each pick', () => {
  const hs = hosts(3, (i) => [2, 1, 1][i]!);
  hs[0]!.active = 3;
  const s = (bias?: number) => {
    const b = createBalancer<H>('LEAST_REQUEST', hs, (h) => h.id, bias === undefined ? {} : { activeRequestBias: bias });
    const t = tally(Array.from({ length: 3000 }, () => b.pick(undefined, undefined)!.id));
    return t.h0! / 3000;
  };
  const biased = s();
  assert.ok(Math.abs(biased - 0.2) < 0.04, `2/(3+1) = 0.5 against 1 and 1: a fifth (${biased})`);
  const ignoring = s(0);
  assert.ok(Math.abs(ignoring - 0.5) < 0.04, `bias 0: weights alone (${ignoring})`);
  const strong = s(2);
  assert.ok(Math.abs(strong - (2 / 16) / (2 / 16 + 2)) < 0.04, `bias 2: 2/16 against 1 and 1 (${strong})`);
  // The host's load is read when it is picked: once its requests are done it gets its weight's share again.
  const b = make('LEAST_REQUEST', hs);
  for (let i = 0; i < 100; i++) b.pick(undefined, undefined);
  hs[0]!.active = 0;
  for (let i = 0; i < 100; i++) b.pick(undefined, undefined);
  const later = tally(Array.from({ length: 2000 }, () => b.pick(undefined, undefined)!.id));
  assert.ok(Math.abs(later.h0! / 2000 - 0.5) < 0.05, `idle again: half (${JSON.stringify(later)})`);
});

test('RANDOM follows the weights', () => {
  const hs = hosts(2, (i) => (i === 0 ? 9 : 1));
  const b = make('RANDOM', hs);
  const counts = tally(Array.from({ length: 2000 }, () => b.pick(undefined, undefined)!.id));
  assert.ok(counts.h1! > 100 && counts.h1! < 300, JSON.stringify(counts));
});

for (const algorithm of ['RING_HASH', 'MAGLEV'] as const) {
  const config: BalancerConfig = { policy: 'CONSISTENT_HASH', hash: algorithm === 'MAGLEV' ? { algorithm, tableSize: 65537 } : { algorithm, minimumRingSize: 1024 } };
  const keys = Array.from({ length: 3000 }, (_, i) => `session-${i}`);
  const homes = (hs: H[]) => { const b = make(config, hs); return new Map(keys.map((k) => [k, b.pick(k, undefined)!.id])); };

  test(`CONSISTENT_HASH ${algorithm}: a key keeps its host, in this balancer and in a new one over the same hosts`, () => {
    const hs = hosts(4);
    const b = make(config, hs);
    const first = homes(hs);
    for (const k of keys.slice(0, 500)) assert.equal(b.pick(k, undefined)!.id, first.get(k), k);
    assert.deepEqual(homes(hosts(4)), first, 'the placement depends only on the hosts');
    const spread = tally(keys.map((k) => first.get(k)!));
    assert.equal(Object.keys(spread).length, 4, JSON.stringify(spread));
  });

  for (const n of [4, 6]) {
    test(`CONSISTENT_HASH ${algorithm}: removing one of ${n} hosts moves about 1/${n} of the keys, adding one about 1/${n + 1}`, () => {
      const hs = hosts(n);
      const before = homes(hs);
      const after = homes(hs.filter((h) => h.id !== 'h1'));
      let moved = 0;
      let movedElsewhere = 0;
      for (const k of keys) {
        if (after.get(k) === before.get(k)) continue;
        moved++;
        if (before.get(k) !== 'h1') movedElsewhere++;
      }
      const frac = moved / keys.length;
      assert.ok(Math.abs(frac - 1 / n) < 0.06, `${(frac * 100).toFixed(1)} % of keys moved, about ${(100 / n).toFixed(1)} % expected`);
      assert.ok(movedElsewhere / keys.length < 0.05, `keys of the hosts that stayed mostly stay: ${movedElsewhere} moved`);
      const grown = homes(hosts(n + 1));
      const gained = keys.filter((k) => grown.get(k) !== before.get(k));
      assert.ok(Math.abs(gained.length / keys.length - 1 / (n + 1)) < 0.06, `adding a host moved ${gained.length}`);
      assert.ok(gained.filter((k) => grown.get(k) !== `h${n}`).length / keys.length < 0.05, 'keys move to the new host, not among the old ones');
    });
  }

  test(`CONSISTENT_HASH ${algorithm}: a heavier host gets a bigger share of keys, and changing its weight moves keys to or from it`, () => {
    const even = homes(hosts(3));
    const heavy = homes(hosts(3, (i) => (i === 0 ? 3 : 1)));
    const t = tally(keys.map((k) => heavy.get(k)!));
    assert.ok(Math.abs(t.h0! / keys.length - 0.6) < 0.05, `weight 3 of 5: ${JSON.stringify(t)}`);
    const movedNotToH0 = keys.filter((k) => heavy.get(k) !== even.get(k) && heavy.get(k) !== 'h0').length;
    assert.ok(movedNotToH0 / keys.length < 0.05, `keys that moved went to the heavier host (${movedNotToH0} did not)`);
  });

  test(`CONSISTENT_HASH ${algorithm}: without a key, a random host`, () => {
    const b = make(config, hosts(3));
    const t = tally(Array.from({ length: 600 }, () => b.pick(undefined, undefined)!.id));
    assert.equal(Object.keys(t).length, 3, JSON.stringify(t));
  });

  test(`CONSISTENT_HASH ${algorithm}: a retry goes to the same second host each time for a key`, () => {
    const hs = hosts(5);
    const b = make(config, hs);
    for (const k of keys.slice(0, 100)) {
      const first = b.pick(k, undefined)!;
      const second = b.pick(k, [first])!;
      assert.notEqual(second, first);
      assert.equal(b.pick(k, [first]), second, `${k}: the retry host is stable`);
    }
  });
}
