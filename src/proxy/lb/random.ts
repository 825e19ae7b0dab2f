/**
 * RANDOM: each pick independent, in proportion to the hosts' weights (a
 * binary search over the cumulative weights, O(log n); no slow start, as in
 * Envoy).
 */
import type { Balancer, LbHost } from '../load-balancer.js';
import { evenWeights, untried } from '../load-balancer.js';

export function random<T extends LbHost>(hosts: readonly T[]): Balancer<T> {
  const n = hosts.length;
  const even = evenWeights(hosts);
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) cumulative[i] = total += hosts[i]!.weight;
  const index = (): number => {
    if (even) return Math.floor(Math.random() * n);
    const x = Math.random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  return {
    policy: 'RANDOM',
    pick(_key, tried) {
      if (n === 0) return undefined;
      const i = index();
      const h = hosts[i]!;
      return tried && tried.length > 0 && tried.includes(h) ? untried(hosts, tried, i) : h;
    },
  };
}
