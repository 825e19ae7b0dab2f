/**
 * CONSISTENT_HASH: the same key keeps going to the same host, and a host
 * joining or leaving moves only about its share of the keys. Two tables, as
 * in Envoy: RING_HASH (ring-hash.ts; Istio's default) and MAGLEV
 * (maglev.ts). A request without a key goes to a random host. A retry
 * walks on from the key's entry to the next host not tried yet (Envoy's
 * previous-hosts predicate).
 */
import type { LoadBalancer } from '../../protocol/snapshot.js';
import type { Balancer, LbHost } from '../load-balancer.js';
import { untried } from '../load-balancer.js';
import { hash53 } from './hash.js';
import { maglevTable } from './maglev.js';
import { ringTable } from './ring-hash.js';

/** A consistent-hash table: entry `slotOf(hash)` belongs to host `owner[entry]`. */
export interface HashTable {
  readonly owner: Uint32Array;
  slotOf(hash: number): number;
}

function allIn<T>(hosts: readonly T[], tried: readonly T[]): boolean {
  for (let i = 0; i < hosts.length; i++) if (!tried.includes(hosts[i]!)) return false;
  return true;
}

export function consistentHash<T extends LbHost>(hosts: readonly T[], idOf: (h: T) => string, hash?: LoadBalancer['hash']): Balancer<T> {
  const n = hosts.length;
  const ids = hosts.map(idOf);
  const weights = hosts.map((h) => h.weight);
  const table = hash?.algorithm === 'MAGLEV' ? maglevTable(weights, ids, hash.tableSize) : ringTable(weights, ids, hash?.minimumRingSize);
  const { owner } = table;
  const size = owner.length;
  return {
    policy: 'CONSISTENT_HASH',
    pick(key, tried) {
      if (n === 0) return undefined;
      if (key === undefined) return untried(hosts, tried, Math.floor(Math.random() * n));
      let s = table.slotOf(hash53(key));
      const first = hosts[owner[s]!]!;
      if (!tried || tried.length === 0 || !tried.includes(first) || allIn(hosts, tried)) return first;
      for (let steps = 1; steps < size; steps++) {
        s = s + 1 === size ? 0 : s + 1;
        const h = hosts[owner[s]!]!;
        if (!tried.includes(h)) return h;
      }
      return first;
    },
  };
}
