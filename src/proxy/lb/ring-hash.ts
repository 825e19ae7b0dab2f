/**
 * Envoy's RING_HASH (ketama): each host is placed on a ring of 53-bit hash
 * values at many points, as many as its weight's share; a key goes to the
 * first point at or after its own hash (wrapping). Lookup is a binary
 * search, O(log ring size).
 *
 * The ring has at least `minimumRingSize` entries (default 1024) and at
 * most 8M, as in Envoy, but it is sized differently: Envoy divides a ring
 * of about the minimum size among the hosts, so that when a host leaves,
 * every other host gets more points and keys move between hosts that
 * stayed (about 2/N of all keys move instead of 1/N). Here the lightest
 * host gets `minimumRingSize` points and the others as many times that as
 * their weight is of its, so a host leaving takes only its own points with
 * it — until the ring would pass 131072 entries; beyond that the points
 * are shared out as Envoy does.
 */
import { hash53 } from './hash.js';
import type { HashTable } from './consistent-hash.js';

export const DEFAULT_MINIMUM_RING_SIZE = 1024;
export const MAXIMUM_RING_SIZE = 8 * 1024 * 1024;
/** Above this many entries the lightest host gets fewer than minimumRingSize points. */
const SOFT_RING_SIZE = 1 << 17;

/** How many points each host gets. */
export function ringShares(weights: readonly number[], minimumRingSize: number): number[] {
  const n = weights.length;
  if (n === 0) return [];
  const min = Math.max(1, minimumRingSize);
  const lightest = weights.reduce((m, w) => Math.min(m, w), Infinity);
  const units = weights.reduce((s, w) => s + w / lightest, 0);
  let perUnit = min;
  const budget = Math.max(SOFT_RING_SIZE, min);
  if (perUnit * units > budget) perUnit = Math.ceil(budget / units);
  // Past the cap even one point per unit of weight is too many: the lightest hosts keep one point each.
  if (perUnit * units > MAXIMUM_RING_SIZE) perUnit = MAXIMUM_RING_SIZE / units;
  return weights.map((w) => Math.max(1, Math.round((perUnit * w) / lightest)));
}

export function ringTable(weights: readonly number[], ids: readonly string[], minimumRingSize = DEFAULT_MINIMUM_RING_SIZE): HashTable {
  const shares = ringShares(weights, minimumRingSize);
  const size = shares.reduce((s, c) => s + c, 0);
  const at = new Float64Array(size);
  const who = new Uint32Array(size);
  let k = 0;
  shares.forEach((count, host) => {
    const id = ids[host]!;
    for (let j = 0; j < count; j++, k++) {
      at[k] = hash53(`${id}_${j}`);
      who[k] = host;
    }
  });
  const order = Uint32Array.from({ length: size }, (_, i) => i).sort((a, b) => at[a]! - at[b]! || who[a]! - who[b]!);
  const points = new Float64Array(size);
  const owner = new Uint32Array(size);
  for (let i = 0; i < size; i++) {
    points[i] = at[order[i]!]!;
    owner[i] = who[order[i]!]!;
  }
  return {
    owner,
    slotOf(h) {
      let lo = 0;
      let hi = size;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (points[mid]! < h) lo = mid + 1;
        else hi = mid;
      }
      return lo === size ? 0 : lo;
    },
  };
}
