/**
 * ROUND_ROBIN as Envoy does it: with equal weights the hosts in turn,
 * starting at a random one (so that many proxies do not all start on the
 * first host); with unequal weights, or while a host is in slow start, the
 * EDF scheduler, which gives each host its weight's share, interleaved
 * rather than in bursts. Once slow start is over for every host, equal
 * weights go back to taking turns.
 */
import type { Balancer, LbHost } from '../load-balancer.js';
import { evenWeights, untried } from '../load-balancer.js';
import { EdfScheduler } from './edf.js';
import type { Warming } from './slow-start.js';

export function roundRobin<T extends LbHost>(hosts: readonly T[], warming?: Warming): Balancer<T> {
  const n = hosts.length;
  const even = evenWeights(hosts);
  let next = n > 0 ? Math.floor(Math.random() * n) : 0;
  const turn = (tried: readonly T[] | undefined): T | undefined => {
    const i = next;
    next = (next + 1) % n;
    const h = hosts[i]!;
    return tried && tried.length > 0 && tried.includes(h) ? untried(hosts, tried, i) : h;
  };
  if (even && !warming) {
    return { policy: 'ROUND_ROBIN', pick: (_key, tried) => (n === 0 ? undefined : turn(tried)) };
  }
  const weight = warming ? (i: number) => hosts[i]!.weight * warming.factor(i) : (i: number) => hosts[i]!.weight;
  const edf = new EdfScheduler(n, weight);
  return {
    policy: 'ROUND_ROBIN',
    pick(_key, tried) {
      if (n === 0) return undefined;
      if (even && !warming!.on) return turn(tried);
      return scheduled(edf, hosts, tried);
    },
  };
}

/** The scheduler's next host not in `tried` (advancing the schedule at most once per host); any host when all were tried. */
export function scheduled<T>(edf: EdfScheduler, hosts: readonly T[], tried: readonly T[] | undefined): T {
  const first = edf.pick();
  const h = hosts[first]!;
  if (!tried || tried.length === 0 || !tried.includes(h)) return h;
  for (let k = 1; k < hosts.length; k++) {
    const c = hosts[edf.pick()]!;
    if (!tried.includes(c)) return c;
  }
  return untried(hosts, tried, first)!;
}
