/**
 * Load balancers: one per cluster, built when a snapshot is applied, over the
 * cluster's usable endpoints. Each policy is one small module in lb/ and all
 * of them run the same contract suite (test/proxy/lb-contract.test.ts).
 *
 * A balancer only reads two facts of a host: its weight and how many
 * requests it has in flight; so it can be tested with plain objects. Picks
 * allocate nothing; tables (EDF heaps, hash rings, Maglev tables) are built
 * here, once.
 */
import type { Cluster, LbPolicy, LoadBalancer } from '../protocol/snapshot.js';
import { SnapshotError } from './errors.js';
import { consistentHash } from './lb/consistent-hash.js';
import { leastRequest, type LeastRequestOptions } from './lb/least-request.js';
import { random } from './lb/random.js';
import { roundRobin } from './lb/round-robin.js';
import { hostAges, monotonicNow, warmingOf } from './lb/slow-start.js';

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

/** What a balancer is built from: a policy name, or a snapshot's LoadBalancer (its hash algorithm and slow start too). */
export type BalancerConfig = string | Pick<LoadBalancer, 'policy' | 'hash' | 'warmup'>;

export interface BalancerOptions<T> extends LeastRequestOptions {
  /**
   * When a host joined the cluster, in ms on `now`'s clock (read once per
   * host, when the balancer is built); slow start reads it. Absent: no
   * host is warming.
   */
  readonly firstSeen?: (h: T) => number;
  /** The clock of `firstSeen`; performance.now() by default. */
  readonly now?: () => number;
}

/** A balancer over `hosts`; `idOf` names a host stably (CONSISTENT_HASH places hosts by it). */
export function createBalancer<T extends LbHost>(config: BalancerConfig, hosts: readonly T[], idOf: (h: T) => string, o: BalancerOptions<T> = {}): Balancer<T> {
  const lb = typeof config === 'string' ? { policy: config } as Pick<LoadBalancer, 'policy' | 'hash' | 'warmup'> : config;
  const warming = () => warmingOf(lb.warmup, o.firstSeen && Float64Array.from(hosts, o.firstSeen), o.now ?? monotonicNow);
  switch (lb.policy as string) {
    case 'ROUND_ROBIN': return roundRobin(hosts, warming());
    // PASSTHROUGH (Envoy's ORIGINAL_DST) needs transparent capture; until then it balances like ROUND_ROBIN.
    case 'PASSTHROUGH': return { ...roundRobin(hosts), policy: 'PASSTHROUGH' };
    case 'LEAST_REQUEST': return leastRequest(hosts, o, warming());
    case 'RANDOM': return random(hosts);
    case 'CONSISTENT_HASH': return consistentHash(hosts, idOf, lb.hash);
    default: throw new SnapshotError(`unknown load-balancing policy "${lb.policy}"`);
  }
}

/**
 * When each of a cluster's hosts joined it, as this data plane saw it
 * (`owner`: an object the data plane keeps for its lifetime, such as its
 * upstream pools); undefined when the cluster has no slow start. Call it
 * once per cluster per snapshot, with all the cluster's usable hosts:
 * hosts not given are forgotten.
 */
export function hostsFirstSeen(cluster: Pick<Cluster, 'name' | 'lb'>, addresses: readonly string[], owner: object, now: () => number = monotonicNow): ((address: string) => number) | undefined {
  const ages = hostAges(owner);
  const slow = cluster.lb.warmup && (cluster.lb.policy === 'ROUND_ROBIN' || cluster.lb.policy === 'LEAST_REQUEST');
  if (!slow) { ages.forget(cluster.name); return undefined; }
  const seen = ages.update(cluster.name, addresses, now());
  const t = now();
  return (a) => seen.get(a) ?? t;
}

/**
 * Builds the cluster policy's balancer over any subset of `hosts` (all the
 * cluster's usable hosts; a locality's share of them, say), hosts named by
 * address, slow start included (see hostsFirstSeen for `owner`).
 */
export function balancerFactory<T extends LbHost & { readonly address: string }>(cluster: Pick<Cluster, 'name' | 'lb'>, hosts: readonly T[], owner: object, now: () => number = monotonicNow): (subset: readonly T[]) => Balancer<T> {
  const seen = hostsFirstSeen(cluster, hosts.map((h) => h.address), owner, now);
  const o: BalancerOptions<T> = seen ? { firstSeen: (h) => seen(h.address), now } : {};
  return (subset) => createBalancer<T>(cluster.lb, subset, (h) => h.address, o);
}

/** The cluster's balancer over all its usable hosts. */
export function clusterBalancer<T extends LbHost & { readonly address: string }>(cluster: Pick<Cluster, 'name' | 'lb'>, hosts: readonly T[], owner: object): Balancer<T> {
  return balancerFactory(cluster, hosts, owner)(hosts);
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
