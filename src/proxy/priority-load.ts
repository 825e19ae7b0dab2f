/**
 * Envoy's priority load and host selection over priority levels
 * (locality.ts makes the levels): a level's health is min(100, 1.4 ×
 * healthy%) (the overprovisioning factor), and each level takes what its
 * health allows of the load the levels above left. Within a level a
 * locality of a `distribute` rule is weighted the same way, and the
 * cluster's balancer (load-balancer.ts) picks the host. Ejected hosts
 * (outlier.ts) are not healthy; a level below `minHealthPercent` healthy
 * is in panic and balances over all its hosts, only while the levels
 * together are under 100 % health (Envoy's rule).
 */
import type { Balancer, LbHost } from './load-balancer.js';

/** Envoy's default overprovisioning factor. */
export const OVERPROVISIONING = 1.4;

/** A level's health as Envoy counts it: min(100, 1.4 × healthy%). */
export function levelHealth(healthy: number, total: number): number {
  return total <= 0 ? 0 : Math.min(100, (OVERPROVISIONING * 100 * healthy) / total);
}

/**
 * Envoy's priority load (percent per level): each level takes what its
 * health allows of what the levels above left; when the levels together
 * are under 100 the loads are scaled up to add to 100. All 0: no level has
 * a healthy host.
 */
export function priorityLoads(health: readonly number[]): number[] {
  const total = Math.min(100, health.reduce((a, b) => a + b, 0));
  if (total <= 0) return health.map(() => 0);
  let left = 100;
  return health.map((h) => {
    const l = Math.min(left, (h * 100) / total);
    left -= l;
    return l;
  });
}

/** A group with its usable hosts (`total` also counts endpoints the registry says are down). */
export interface GroupHosts<T> {
  readonly hosts: readonly T[];
  readonly total: number;
  readonly weight: number;
}

interface Choice<T extends LbHost> {
  readonly hosts: readonly T[];
  readonly balancer: Balancer<T>;
  readonly weight: number;
  current: number;
}

interface LevelChoice<T extends LbHost> {
  readonly load: number;
  readonly health: number;
  readonly choices: readonly Choice<T>[];
  readonly totalWeight: number;
}

/** How many times a retry re-runs selection to find a host it has not tried (Istio's host_selection_retry_max_attempts). */
const SELECTION_ATTEMPTS = 5;

/**
 * Picks by priority level, then locality, then the cluster's balancer, over
 * the hosts that are not ejected; built again whenever the ejected set
 * changes. `makeBalancer` builds the cluster policy's balancer over a set.
 */
export class PrioritySelector<T extends LbHost> {
  readonly #levels: LevelChoice<T>[] = [];
  readonly #random: () => number;
  /** Loads per level, for views and tests. */
  readonly loads: readonly number[];
  /** Levels in panic (balancing over ejected hosts too). */
  readonly panic: readonly boolean[];

  constructor(levels: readonly (readonly GroupHosts<T>[])[], ejected: (h: T) => boolean, minHealthPercent: number, makeBalancer: (hosts: readonly T[]) => Balancer<T>, random: () => number = Math.random) {
    this.#random = random;
    const healthyOf = levels.map((groups) => groups.map((g) => g.hosts.filter((h) => !ejected(h))));
    const health = levels.map((groups, i) => levelHealth(
      healthyOf[i]!.reduce((n, hs) => n + hs.length, 0),
      groups.reduce((n, g) => n + g.total, 0),
    ));
    const normalized = Math.min(100, health.reduce((a, b) => a + b, 0));
    let loads = priorityLoads(health);
    // Nothing healthy anywhere: with a panic threshold, everything goes to the first level, ejected hosts included.
    if (normalized === 0 && minHealthPercent > 0 && levels.length > 0) loads = levels.map((_, i) => (i === 0 ? 100 : 0));
    this.loads = loads;
    this.panic = levels.map((groups, i) => {
      if (minHealthPercent <= 0 || normalized >= 100) return false;
      const total = groups.reduce((n, g) => n + g.total, 0);
      const healthy = healthyOf[i]!.reduce((n, hs) => n + hs.length, 0);
      return total > 0 && (100 * healthy) / total < minHealthPercent;
    });
    levels.forEach((groups, i) => {
      const choices: Choice<T>[] = [];
      groups.forEach((g, j) => {
        const hosts = this.panic[i] ? g.hosts : healthyOf[i]![j]!;
        if (hosts.length === 0) return;
        const availability = this.panic[i] ? 1 : Math.min(1, (OVERPROVISIONING * hosts.length) / Math.max(1, g.total));
        choices.push({ hosts, balancer: makeBalancer(hosts), weight: g.weight * availability, current: 0 });
      });
      this.#levels.push({ load: loads[i]!, health: health[i]!, choices, totalWeight: choices.reduce((n, c) => n + c.weight, 0) });
    });
  }

  #level(ls: readonly LevelChoice<T>[] = this.#levels, loads?: readonly number[]): LevelChoice<T> | undefined {
    if (ls.length === 1) return (loads?.[0] ?? ls[0]!.load) > 0 ? ls[0] : undefined;
    let r = this.#random() * 100;
    let last: LevelChoice<T> | undefined;
    for (let i = 0; i < ls.length; i++) {
      const load = loads ? loads[i]! : ls[i]!.load;
      if (load <= 0) continue;
      last = ls[i];
      if (r < load) return last;
      r -= load;
    }
    return last;
  }

  /** Smooth weighted round robin over a level's localities. */
  static #choice<T extends LbHost>(l: LevelChoice<T>): Choice<T> | undefined {
    const cs = l.choices;
    if (cs.length <= 1) return cs[0];
    let best: Choice<T> | undefined;
    for (const c of cs) {
      c.current += c.weight;
      if (!best || c.current > best.current) best = c;
    }
    best!.current -= l.totalWeight;
    return best;
  }

  /**
   * A host for an attempt. A retry (`tried` not empty) selects again, up to
   * 5 times, for a host it has not tried; failing that it takes an untried
   * host of any level that has one, else a tried one. `remoteLocalities`
   * (the route's `retryRemoteLocalities`, when the caller knows it): true,
   * a retry goes to the levels no earlier attempt used, loaded by their
   * health (Envoy's previous_priorities); false, a retry stays with the
   * normal selection and takes a tried host rather than leave it (Istio's
   * default); absent, as described first.
   */
  pick(key: string | undefined, tried: readonly T[] | undefined, remoteLocalities?: boolean): T | undefined {
    if (remoteLocalities && tried && tried.length > 0) {
      const rest = this.#levels.filter((l) => l.choices.length > 0 && !l.choices.some((c) => c.hosts.some((h) => tried.includes(h))));
      if (rest.length > 0) {
        const loads = priorityLoads(rest.map((l) => l.health));
        const l = this.#level(rest, loads.some((x) => x > 0) ? loads : rest.map((_, i) => (i === 0 ? 100 : 0)));
        const c = l && PrioritySelector.#choice(l);
        if (c) return c.balancer.pick(key, tried);
      }
    }
    let first: T | undefined;
    for (let round = 0; round < SELECTION_ATTEMPTS; round++) {
      const l = this.#level();
      const c = l && PrioritySelector.#choice(l);
      if (!c) return first;
      const h = c.balancer.pick(key, tried);
      if (!tried || tried.length === 0 || (h !== undefined && !tried.includes(h))) return h;
      first ??= h;
    }
    if (remoteLocalities === false) return first;
    for (const l of this.#levels) {
      for (const c of l.choices) if (c.hosts.some((h) => !tried!.includes(h))) return c.balancer.pick(key, tried);
    }
    return first;
  }
}
