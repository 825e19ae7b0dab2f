/**
 * ROUND_ROBIN: hosts in turn, starting at a random one (so that many proxies
 * do not all start on the first host). Unequal weights use smooth weighted
 * round robin (nginx's): over one cycle each host gets its weight's share,
 * spread out rather than in bursts.
 */
import type { Balancer, LbHost } from '../load-balancer.js';
import { evenWeights, untried } from '../load-balancer.js';

export function roundRobin<T extends LbHost>(hosts: readonly T[]): Balancer<T> {
  const n = hosts.length;
  if (evenWeights(hosts)) {
    let next = n > 0 ? Math.floor(Math.random() * n) : 0;
    return {
      policy: 'ROUND_ROBIN',
      pick(_key, tried) {
        if (n === 0) return undefined;
        const i = next;
        next = (next + 1) % n;
        const h = hosts[i]!;
        return tried && tried.includes(h) ? untried(hosts, tried, i) : h;
      },
    };
  }
  const current = hosts.map(() => 0);
  const total = hosts.reduce((s, h) => s + h.weight, 0);
  return {
    policy: 'ROUND_ROBIN',
    pick(_key, tried) {
      let best = -1;
      for (let i = 0; i < n; i++) {
        current[i]! += hosts[i]!.weight;
        if (best < 0 || current[i]! > current[best]!) best = i;
      }
      if (best < 0) return undefined;
      current[best]! -= total;
      const h = hosts[best]!;
      return tried && tried.includes(h) ? untried(hosts, tried, best) : h;
    },
  };
}
