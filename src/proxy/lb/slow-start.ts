/**
 * Slow start (Envoy's slow_start_config, Istio's `warmup` and
 * `warmupDurationSecs`): a host that joined its cluster less than the
 * window ago gets only part of its weight,
 *
 *   weight × max(minimumPercent / 100, (age / window) ^ (1 / aggression)),
 *
 * rising to all of it at the end of the window. ROUND_ROBIN and
 * LEAST_REQUEST only, as in Envoy.
 *
 * When a host joined must outlive snapshots (a new endpoint list rebuilds
 * every balancer), so each data plane keeps a small map of when it first
 * saw each host of each cluster that has slow start (HostAges). A host that
 * leaves the cluster is forgotten, and is new again if it comes back.
 */
import type { LoadBalancer } from '../../protocol/snapshot.js';

export type Warmup = NonNullable<LoadBalancer['warmup']>;

/** The share of its weight a host `ageMs` old gets (1 once it is out of the window). */
export function warmupFactor(w: Warmup, ageMs: number): number {
  if (ageMs >= w.durationMs) return 1;
  const t = Math.max(ageMs, 1) / w.durationMs;
  const f = w.aggression === 1 ? t : Math.pow(t, 1 / w.aggression);
  return Math.max(f, w.minimumPercent / 100);
}

/** The clock slow start reads: milliseconds, monotonic. */
export const monotonicNow = (): number => performance.now();

/**
 * The slow-start state of one balancer's hosts: each one's factor now, and
 * whether any of them is still warming (once none is, it stays so: the
 * balancer then takes its static path).
 */
export class Warming {
  #on = true;
  readonly #end: number;
  constructor(readonly warmup: Warmup, readonly firstSeen: Float64Array, readonly now: () => number) {
    let last = -Infinity;
    for (let i = 0; i < firstSeen.length; i++) last = Math.max(last, firstSeen[i]!);
    this.#end = last + warmup.durationMs;
  }

  /** Whether some host is still in its window. */
  get on(): boolean {
    if (this.#on && this.now() >= this.#end) this.#on = false;
    return this.#on;
  }

  /** Host i's share of its weight now. */
  factor(i: number): number {
    return this.#on ? warmupFactor(this.warmup, this.now() - this.firstSeen[i]!) : 1;
  }
}

/** A Warming for hosts first seen at `firstSeen` (by index), or undefined when none of them is in its window now. */
export function warmingOf(warmup: Warmup | undefined, firstSeen: Float64Array | undefined, now: () => number): Warming | undefined {
  if (!warmup || !firstSeen || warmup.durationMs <= 0) return undefined;
  const w = new Warming(warmup, firstSeen, now);
  return w.on ? w : undefined;
}

/** When this data plane first saw each host of each cluster (with slow start). */
export class HostAges {
  readonly #byCluster = new Map<string, Map<string, number>>();

  /**
   * Records `addresses` (all of the cluster's hosts now): those new to it
   * were first seen `now`; hosts no longer in the cluster are forgotten.
   * Gives each address's first-seen time.
   */
  update(cluster: string, addresses: readonly string[], now: number): ReadonlyMap<string, number> {
    const before = this.#byCluster.get(cluster);
    const after = new Map<string, number>();
    for (const a of addresses) if (!after.has(a)) after.set(a, before?.get(a) ?? now);
    this.#byCluster.set(cluster, after);
    return after;
  }

  /** Forgets a cluster (it has no slow start any more, or is gone). */
  forget(cluster: string): void {
    this.#byCluster.delete(cluster);
  }
}

const agesByOwner = new WeakMap<object, HostAges>();

/** The HostAges of a data plane, keyed by an object it owns for its lifetime (its upstream pools). */
export function hostAges(owner: object): HostAges {
  let a = agesByOwner.get(owner);
  if (!a) agesByOwner.set(owner, (a = new HostAges()));
  return a;
}
