/**
 * Load balancers: one per cluster, built when a snapshot is applied, over the
 * cluster's usable endpoints. Each policy is one small module in lb/ and all
 * of them run the same contract suite (test/proxy/lb-contract.test.ts).
 *
 * A balancer only reads two facts of a host: its weight and how many
 * requests it has in flight; so it can be tested with plain objects.
 */
import type { LbPolicy } from '../protocol/snapshot.js';
import { SnapshotError } from './errors.js';
import { consistentHash } from './lb/consistent-hash.js';
import { leastRequest } from './lb/least-request.js';
import { random } from './lb/random.js';
import { roundRobin } from './lb/round-robin.js';

export interface LbHost {
  /** Relative weight, > 0. */
  readonly weight: number;
  /** Requests in flight to this host (LEAST_REQUEST reads it). */
  readonly active: number;
}

export interface Balancer<T extends LbHost> {
  readonly policy: LbPolicy;
  /**
   * Picks a host. `hashKey` is what CONSISTENT_HASH hashes (a header, a
   * cookie, …; undefined: pick at random). `tried` are hosts earlier attempts
   * of the same request used: another host is chosen when one exists.
   * Undefined only when there are no hosts.
   */
  pick(hashKey: string | undefined, tried: readonly T[] | undefined): T | undefined;
}

/** A balancer over `hosts`; `idOf` names a host stably (CONSISTENT_HASH places hosts on its ring by it). */
export function createBalancer<T extends LbHost>(policy: string, hosts: readonly T[], idOf: (h: T) => string): Balancer<T> {
  switch (policy) {
    case 'ROUND_ROBIN': return roundRobin(hosts);
    // PASSTHROUGH (Envoy's ORIGINAL_DST) needs transparent capture; until then it balances like ROUND_ROBIN.
    case 'PASSTHROUGH': return { ...roundRobin(hosts), policy: 'PASSTHROUGH' };
    case 'LEAST_REQUEST': return leastRequest(hosts);
    case 'RANDOM': return random(hosts);
    case 'CONSISTENT_HASH': return consistentHash(hosts, idOf);
    default: throw new SnapshotError(`unknown load-balancing policy "${policy}"`);
  }
}

/** The first host from index `start` on (wrapping) that is not in `tried`; `hosts[start]` when all were tried. */
export function untried<T>(hosts: readonly T[], tried: readonly T[] | undefined, start: number): T | undefined {
  const n = hosts.length;
  if (n === 0) return undefined;
  const first = hosts[start % n];
  if (!tried || tried.length === 0 || n === 1) return first;
  for (let i = 0; i < n; i++) {
    const h = hosts[(start + i) % n]!;
    if (!tried.includes(h)) return h;
  }
  return first;
}

/** Whether every host has the same weight (the policies take a faster path then). */
export function evenWeights(hosts: readonly LbHost[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i]!.weight !== hosts[0]!.weight) return false;
  return true;
}
