/**
 * LEAST_REQUEST, as Envoy does it: the power of two choices. Two distinct
 * hosts are drawn at random and the one with fewer requests in flight
 * (relative to its weight) wins; with one host there is nothing to choose.
 */
import type { Balancer, LbHost } from '../load-balancer.js';
import { untried } from '../load-balancer.js';

export function leastRequest<T extends LbHost>(hosts: readonly T[]): Balancer<T> {
  const n = hosts.length;
  const load = (h: T) => (h.active + 1) / h.weight;
  return {
    policy: 'LEAST_REQUEST',
    pick(_key, tried) {
      if (n <= 1) return hosts[0];
      const a = Math.floor(Math.random() * n);
      let b = Math.floor(Math.random() * (n - 1));
      if (b >= a) b++;
      const ha = hosts[a]!;
      const hb = hosts[b]!;
      if (tried && tried.length) {
        const aTried = tried.includes(ha);
        const bTried = tried.includes(hb);
        if (aTried && bTried) return untried(hosts, tried, a);
        if (aTried) return hb;
        if (bTried) return ha;
      }
      return load(hb) < load(ha) ? hb : ha;
    },
  };
}
