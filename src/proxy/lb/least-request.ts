/**
 * LEAST_REQUEST as Envoy does it. With equal weights: the power of two
 * choices — `choiceCount` (default 2) distinct hosts drawn at random, the
 * one with the fewest requests in flight wins (all hosts are compared when
 * there are no more than that). With unequal weights, or while a host is in
 * slow start: the EDF scheduler over weight / (active + 1) ^ bias
 * (`activeRequestBias`, default 1.0; 0 ignores requests in flight), times
 * the slow-start factor; a host's weight is read again each time it is
 * picked.
 */
import type { Balancer, LbHost } from '../load-balancer.js';
import { evenWeights, untried } from '../load-balancer.js';
import { EdfScheduler } from './edf.js';
import { scheduled } from './round-robin.js';
import type { Warming } from './slow-start.js';

export interface LeastRequestOptions {
  /** Hosts drawn per pick with equal weights; at least 2. Default 2. */
  readonly choiceCount?: number;
  /** How much requests in flight weigh against a host's weight; default 1.0. */
  readonly activeRequestBias?: number;
}

export function leastRequest<T extends LbHost>(hosts: readonly T[], o: LeastRequestOptions = {}, warming?: Warming): Balancer<T> {
  const n = hosts.length;
  const even = evenWeights(hosts);
  const choices = Math.max(2, Math.floor(o.choiceCount ?? 2));
  const bias = o.activeRequestBias ?? 1;
  // A permutation of the host indices; its first `choices` places are reshuffled each pick (partial Fisher-Yates), so draws are distinct.
  const order = Uint32Array.from({ length: n }, (_, i) => i);

  const fewest = (tried: readonly T[] | undefined): T | undefined => {
    if (n <= 1) return hosts[0];
    const k = Math.min(choices, n);
    // With no more hosts than choices, all are compared, from a random one on (ties go to the first).
    const from = k === n ? Math.floor(Math.random() * n) : 0;
    let best: T | undefined;
    let last = 0;
    for (let c = 0; c < k; c++) {
      let i: number;
      if (k === n) i = (from + c) % n;
      else {
        const j = c + Math.floor(Math.random() * (n - c));
        i = order[j]!;
        order[j] = order[c]!;
        order[c] = i;
      }
      last = i;
      const h = hosts[i]!;
      if (tried && tried.length > 0 && tried.includes(h)) continue;
      if (best === undefined || h.active < best.active) best = h;
    }
    return best ?? untried(hosts, tried, last);
  };
  if (even && !warming) return { policy: 'LEAST_REQUEST', pick: (_key, tried) => fewest(tried) };

  const load = bias === 0
    ? (h: T) => h.weight
    : bias === 1 ? (h: T) => h.weight / (h.active + 1) : (h: T) => h.weight / Math.pow(h.active + 1, bias);
  const weight = warming ? (i: number) => load(hosts[i]!) * warming.factor(i) : (i: number) => load(hosts[i]!);
  const edf = new EdfScheduler(n, weight);
  return {
    policy: 'LEAST_REQUEST',
    pick(_key, tried) {
      if (n === 0) return undefined;
      if (even && !warming!.on) return fewest(tried);
      return scheduled(edf, hosts, tried);
    },
  };
}
