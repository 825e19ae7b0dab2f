/**
 * Outlier detection: Envoy's passive health checking, configured by a
 * DestinationRule's `outlierDetection` as Istio translates it. Per cluster,
 * each host counts its consecutive 5xx, its consecutive gateway errors
 * (502/503/504) and, with `splitExternalLocalOriginErrors`, its consecutive
 * local-origin failures (connect failure, reset, per-try timeout). Without
 * the split those failures count as a 503/504 would (Envoy's mapping), so
 * they feed the 5xx and gateway counters. Any other response resets the
 * counters.
 *
 * At a threshold the host is ejected at once, unless that would take the
 * ejected share of the cluster to `maxEjectionPercent` (ejection is allowed
 * while ejected% < max). An ejected host comes back when
 * `baseEjectionTime × times ejected` (capped at Envoy's max_ejection_time,
 * 300 s, or the base when larger) has passed, checked every `interval`; the
 * multiplier goes down by one per interval the host then stays in service.
 * The interval timer runs only while there is something to check (an
 * ejected host or a multiplier above zero) and is unref'd, so no snapshot
 * has to stop it.
 *
 * State lives in a per-data-plane OutlierStore keyed by cluster name, and
 * per host by address: a new snapshot whose cluster has the same outlier
 * settings keeps the counters and ejections of the addresses it still has
 * (as Envoy keeps them across EDS updates); changed settings start afresh
 * (Envoy rebuilds the cluster). Balancers read `ejected` and `generation`
 * (cluster-target.ts, locality.ts); panic mode (`minHealthPercent`) is
 * decided there, per priority level, as Envoy does.
 */
import type { OutlierDetection } from '../protocol/snapshot.js';
import type { AttemptOutcome } from './hosts.js';

/** Envoy's default max_ejection_time (Istio does not expose it). */
export const MAX_EJECTION_TIME_MS = 300_000;

export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';
export const EJECTION_REASONS: readonly EjectionReason[] = ['consecutive_5xx', 'consecutive_gateway_failure', 'consecutive_local_origin_failure'];

/** One host's outlier state within one cluster. */
export class HostOutlier {
  ejected = false;
  /** When it was last ejected / brought back (epoch ms; 0: never). */
  ejectedAt = 0;
  unejectedAt = 0;
  /** Envoy's ejection backoff: +1 per ejection, −1 per interval spent back in service. */
  multiplier = 0;
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocalOrigin = 0;
  lastReason: EjectionReason | undefined;
  constructor(readonly address: string) {}
}

/** What /clusters-style views and metrics show of one cluster. */
export interface OutlierClusterStats {
  readonly cluster: string;
  readonly hosts: number;
  readonly ejectedNow: number;
  /** Ejections carried out, by reason, since the state was created. */
  readonly ejectionsEnforced: Readonly<Record<EjectionReason, number>>;
  /** Ejections refused because maxEjectionPercent was reached. */
  readonly ejectionsOverflow: number;
  readonly ejected: readonly { readonly address: string; readonly reason: EjectionReason | undefined; readonly sinceMs: number; readonly forMs: number }[];
}

function sameConfig(a: OutlierDetection, b: OutlierDetection): boolean {
  return a === b || (a.consecutive5xxErrors === b.consecutive5xxErrors && a.consecutiveGatewayErrors === b.consecutiveGatewayErrors
    && a.intervalMs === b.intervalMs && a.baseEjectionTimeMs === b.baseEjectionTimeMs && a.maxEjectionPercent === b.maxEjectionPercent
    && a.minHealthPercent === b.minHealthPercent && !!a.splitExternalLocalOriginErrors === !!b.splitExternalLocalOriginErrors
    && (a.consecutiveLocalOriginFailures ?? 0) === (b.consecutiveLocalOriginFailures ?? 0));
}

/** The outlier state of one cluster: its hosts by address, the ejection rule, the interval timer. */
export class ClusterOutliers {
  readonly #hosts = new Map<string, HostOutlier>();
  readonly #split: boolean;
  readonly #localOrigin: number;
  readonly #maxMs: number;
  #ejected = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Bumped whenever a host is ejected or brought back (or the membership changes): balancers rebuild their healthy sets when it moved. */
  generation = 0;
  readonly enforced: Record<EjectionReason, number> = { consecutive_5xx: 0, consecutive_gateway_failure: 0, consecutive_local_origin_failure: 0 };
  overflow = 0;

  constructor(readonly cluster: string, readonly config: OutlierDetection, readonly now: () => number = Date.now) {
    this.#split = !!config.splitExternalLocalOriginErrors;
    this.#localOrigin = this.#split ? (config.consecutiveLocalOriginFailures ?? 0) : 0;
    this.#maxMs = Math.max(config.baseEjectionTimeMs, MAX_EJECTION_TIME_MS);
  }

  /**
   * The states of these addresses, in order: kept for addresses already
   * known, new for the others; states of addresses no longer listed are
   * dropped (their hosts, still held by an older snapshot, then count for
   * nothing).
   */
  members(addresses: readonly string[]): HostOutlier[] {
    const out = addresses.map((a) => {
      let h = this.#hosts.get(a);
      if (!h) this.#hosts.set(a, (h = new HostOutlier(a)));
      return h;
    });
    if (this.#hosts.size !== new Set(addresses).size) {
      const keep = new Set(addresses);
      for (const [a, h] of this.#hosts) if (!keep.has(a)) { this.#hosts.delete(a); if (h.ejected) this.#ejected--; }
      this.generation++;
    }
    return out;
  }

  get size(): number { return this.#hosts.size; }
  get ejectedCount(): number { return this.#ejected; }

  /** Counts how an attempt on `h` ended; may eject it. */
  observe(h: HostOutlier, o: AttemptOutcome): void {
    if (this.#hosts.get(h.address) !== h) return;
    if (o.kind === 'response') {
      if (this.#split) h.consecutiveLocalOrigin = 0; // the connection worked: a local-origin success
      const s = o.status;
      if (s >= 500 && s < 600) this.#externalError(h, s >= 502 && s <= 504);
      else { h.consecutive5xx = 0; h.consecutiveGateway = 0; }
      return;
    }
    if (this.#split) {
      if (this.#localOrigin > 0 && ++h.consecutiveLocalOrigin >= this.#localOrigin) this.#eject(h, 'consecutive_local_origin_failure');
      return;
    }
    // Envoy maps local-origin failures to 503 (connect failure, reset) or 504 (timeout): gateway errors, and 5xx.
    this.#externalError(h, true);
  }

  #externalError(h: HostOutlier, gateway: boolean): void {
    const c = this.config;
    if (!gateway) h.consecutiveGateway = 0;
    else if (c.consecutiveGatewayErrors > 0 && ++h.consecutiveGateway >= c.consecutiveGatewayErrors) { this.#eject(h, 'consecutive_gateway_failure'); return; }
    if (c.consecutive5xxErrors > 0 && ++h.consecutive5xx >= c.consecutive5xxErrors) this.#eject(h, 'consecutive_5xx');
  }

  #eject(h: HostOutlier, reason: EjectionReason): void {
    if (h.ejected) return;
    if ((100 * this.#ejected) / this.#hosts.size >= this.config.maxEjectionPercent) { this.overflow++; return; }
    h.ejected = true;
    h.ejectedAt = this.now();
    if (this.config.baseEjectionTimeMs * (h.multiplier + 1) <= this.#maxMs || h.multiplier === 0) h.multiplier++;
    h.lastReason = reason;
    h.consecutive5xx = h.consecutiveGateway = h.consecutiveLocalOrigin = 0;
    this.#ejected++;
    this.enforced[reason]++;
    this.generation++;
    this.#arm();
  }

  /** How long `h` stays out once ejected: base × multiplier, capped. */
  ejectionMs(h: HostOutlier): number {
    return Math.min(this.config.baseEjectionTimeMs * Math.max(1, h.multiplier), this.#maxMs);
  }

  /** One interval's sweep: brings back hosts whose time is up, lowers the multiplier of hosts back in service for a base ejection time. */
  sweep(): void {
    const now = this.now();
    let busy = false;
    for (const h of this.#hosts.values()) {
      if (h.ejected) {
        if (now - h.ejectedAt >= this.ejectionMs(h)) {
          h.ejected = false;
          h.unejectedAt = now;
          h.consecutive5xx = h.consecutiveGateway = h.consecutiveLocalOrigin = 0;
          this.#ejected--;
          this.generation++;
        }
      } else if (h.multiplier > 0 && now - h.unejectedAt >= this.config.baseEjectionTimeMs) {
        h.multiplier--;
      }
      if (h.ejected || h.multiplier > 0) busy = true;
    }
    if (!busy) this.stop();
  }

  #arm(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.sweep(), Math.max(1, this.config.intervalMs));
    this.#timer.unref();
  }

  /** Stops the interval timer (the next ejection starts it again). */
  stop(): void {
    if (this.#timer) { clearInterval(this.#timer); this.#timer = undefined; }
  }

  get timerRunning(): boolean { return this.#timer !== undefined; }

  stats(): OutlierClusterStats {
    const now = this.now();
    const ejected = [];
    for (const h of this.#hosts.values()) {
      if (h.ejected) ejected.push({ address: h.address, reason: h.lastReason, sinceMs: now - h.ejectedAt, forMs: this.ejectionMs(h) });
    }
    return { cluster: this.cluster, hosts: this.#hosts.size, ejectedNow: this.#ejected, ejectionsEnforced: { ...this.enforced }, ejectionsOverflow: this.overflow, ejected };
  }
}

/** The outlier state of every cluster of one data plane, across snapshots. */
export class OutlierStore {
  readonly #clusters = new Map<string, ClusterOutliers>();
  constructor(readonly now: () => number = Date.now) {}

  /** The state for a cluster with these settings: the one it had when they are unchanged, else a new one (ejection totals carried on, for the counters). */
  cluster(name: string, config: OutlierDetection): ClusterOutliers {
    const had = this.#clusters.get(name);
    if (had && sameConfig(had.config, config)) return had;
    had?.stop();
    const c = new ClusterOutliers(name, config, this.now);
    if (had) { Object.assign(c.enforced, had.enforced); c.overflow = had.overflow; }
    this.#clusters.set(name, c);
    return c;
  }

  /** Forgets a cluster (a snapshot built it without outlier detection). */
  forget(name: string): void {
    this.#clusters.get(name)?.stop();
    this.#clusters.delete(name);
  }

  stats(): OutlierClusterStats[] {
    return [...this.#clusters.values()].map((c) => c.stats());
  }

  /** Stops every timer (the data plane closes). */
  stopAll(): void {
    for (const c of this.#clusters.values()) c.stop();
  }
}

const stores = new WeakMap<object, OutlierStore>();

/**
 * The store of the data plane that owns `owner` (its UpstreamPools: one per
 * data plane, living as long as it does), made on first use; metrics and
 * the admin port of the same data plane reach it the same way.
 */
export function outlierStoreFor(owner: object): OutlierStore {
  let s = stores.get(owner);
  if (!s) stores.set(owner, (s = new OutlierStore()));
  return s;
}
