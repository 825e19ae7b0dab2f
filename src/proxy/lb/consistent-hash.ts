/**
 * CONSISTENT_HASH: a hash ring (Envoy's RING_HASH, Istio's default for
 * consistentHash). Each host is placed on the ring many times, in proportion
 * to its weight; a request goes to the first host at or after its key's
 * hash. The same key keeps going to the same host, and adding or removing a
 * host moves only the keys next to it (Envoy's ring may move a few more, as
 * it rescales each host's share to a fixed ring size). Without a key the pick is random.
 */
import type { Balancer, LbHost } from '../load-balancer.js';
import { untried } from '../load-balancer.js';

/**
 * Ring entries per unit of weight (weights relative to the smallest). A
 * fixed count per host, not a share of a fixed ring size, so that removing
 * a host removes only its own entries.
 */
const REPLICAS = 160;
/** At most this many entries in all, however uneven the weights. */
const MAX_RING = 1 << 16;

/** FNV-1a over UTF-16 code units, then murmur3's finalizer for a good spread. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function consistentHash<T extends LbHost>(hosts: readonly T[], idOf: (h: T) => string): Balancer<T> {
  const min = hosts.reduce((m, h) => Math.min(m, h.weight), Infinity);
  const units = hosts.reduce((s, h) => s + h.weight / min, 0);
  const perUnit = Math.max(1, Math.min(REPLICAS, Math.floor(MAX_RING / Math.max(1, units))));
  const points: { readonly at: number; readonly host: number }[] = [];
  hosts.forEach((h, i) => {
    const replicas = Math.max(1, Math.round((perUnit * h.weight) / min));
    const id = idOf(h);
    for (let r = 0; r < replicas; r++) points.push({ at: hash32(`${id}_${r}`), host: i });
  });
  points.sort((a, b) => a.at - b.at);
  const at = Uint32Array.from(points, (p) => p.at);
  const owner = Uint32Array.from(points, (p) => p.host);
  const find = (h: number): number => {
    let lo = 0;
    let hi = at.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (at[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === at.length ? 0 : lo;
  };
  return {
    policy: 'CONSISTENT_HASH',
    pick(key, tried) {
      const n = hosts.length;
      if (n === 0) return undefined;
      if (key === undefined) return untried(hosts, tried, Math.floor(Math.random() * n));
      let p = find(hash32(key));
      if (!tried || tried.length === 0) return hosts[owner[p]!];
      // Walk on along the ring to the next host not tried yet (Envoy's previous_hosts predicate).
      for (let steps = 0; steps < at.length; steps++, p = (p + 1) % at.length) {
        const h = hosts[owner[p]!]!;
        if (!tried.includes(h)) return h;
      }
      return hosts[owner[p]!];
    },
  };
}
