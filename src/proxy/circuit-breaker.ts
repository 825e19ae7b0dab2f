/**
 * A cluster's circuit breaker, with Envoy's meaning of each threshold
 * (Istio's DestinationRule `connectionPool`, compiled into the snapshot's
 * ConnectionPool):
 *
 * - `maxPendingRequests` (http1MaxPendingRequests): attempts waiting for a
 *   connection of the cluster's pools, cluster-wide; one more is refused
 *   at once (503, flag UO).
 * - `maxRequests` (http2MaxRequests): attempts in flight on a connection
 *   to the cluster; one more is refused at once (503 UO).
 * - `maxRetries`: retries in flight to the cluster at once (from the moment
 *   a retry is decided until its attempt ends); beyond it the retry is not
 *   made and the response goes out as it is (flag UO).
 * - a retry budget (DestinationRule `retryBudget`), when set, replaces
 *   `maxRetries`: retries in flight ≤ max(minRetryConcurrency, percent % of
 *   the attempts active and pending).
 *
 * `maxConnections` (per upstream host) and `maxRequestsPerConnection` are
 * the pools' own settings (upstream-pools.ts); requests beyond the
 * connection limit wait in the pool, and count as pending here.
 *
 * Breakers live across snapshots (UpstreamPools keeps one per cluster name
 * and thresholds, as it keeps pools), so a new snapshot does not reset the
 * counts of requests in flight. Istio's defaults are unlimited: such a
 * breaker is not `tracking`, and the forwarder then does no accounting.
 */
import type { ConnectionPool } from '../protocol/snapshot.js';

/** A threshold at or above this is unlimited (Istio's default is 2^32−1). */
export const UNLIMITED = 2 ** 31;

/** Which limit refused an attempt or a retry. */
export type OverflowLimit = 'pending' | 'requests' | 'retries';

/** The thresholds a breaker reads (ConnectionPool's). */
export type BreakerLimits = Pick<ConnectionPool, 'maxPendingRequests' | 'maxRequests' | 'maxRetries' | 'retryBudget'>;

export class CircuitBreaker {
  /** Whether any threshold is finite (or a budget is set); when false nothing is counted. */
  readonly tracking: boolean;
  readonly maxPending: number;
  readonly maxRequests: number;
  /** Without a budget: `maxRetries`; unlimited when a budget governs. */
  readonly maxRetries: number;
  /** The budget's share of active requests (0–1), and its floor; undefined: no budget. */
  readonly budgetShare: number | undefined;
  readonly budgetMin: number;
  /** Attempts waiting for a connection. */
  pending = 0;
  /** Attempts on a connection (request sent or being sent, response not ended). */
  requests = 0;
  /** Retries decided and not yet ended. */
  retries = 0;

  constructor(readonly cluster: string, limits: BreakerLimits) {
    const b = limits.retryBudget;
    this.maxPending = limits.maxPendingRequests >= UNLIMITED ? Infinity : limits.maxPendingRequests;
    this.maxRequests = limits.maxRequests >= UNLIMITED ? Infinity : limits.maxRequests;
    this.maxRetries = b || limits.maxRetries >= UNLIMITED ? Infinity : limits.maxRetries;
    this.budgetShare = b ? b.percent / 100 : undefined;
    this.budgetMin = b ? b.minRetryConcurrency : 0;
    this.tracking = !!b || this.maxPending !== Infinity || this.maxRequests !== Infinity || this.maxRetries !== Infinity;
  }

  /** How many retries may be in flight now. */
  get retryLimit(): number {
    const share = this.budgetShare;
    if (share === undefined) return this.maxRetries;
    return Math.max(this.budgetMin, Math.floor(share * (this.requests + this.pending)));
  }

  /** Takes a retry slot; false (nothing taken) when the limit or the budget is reached. */
  takeRetry(): boolean {
    if (this.retries >= this.retryLimit) return false;
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    this.retries--;
  }

  /** Words for the answer of an overflow: which limit, its value, what was counted. */
  describe(limit: OverflowLimit): string {
    switch (limit) {
      case 'pending': return `${this.pending} requests already wait for a connection to ${this.cluster} (http1MaxPendingRequests ${this.maxPending})`;
      case 'requests': return `${this.requests} requests already in flight to ${this.cluster} (http2MaxRequests ${this.maxRequests})`;
      case 'retries': return this.budgetShare === undefined
        ? `${this.retries} retries already in flight to ${this.cluster} (maxRetries ${this.maxRetries})`
        : `${this.retries} retries already in flight to ${this.cluster} (retry budget ${this.budgetShare * 100} %, at least ${this.budgetMin})`;
    }
  }
}

/** The key breakers are shared by: the cluster and every threshold. */
export function breakerKey(cluster: string, l: BreakerLimits): string {
  const b = l.retryBudget;
  return `${cluster}|${l.maxPendingRequests}|${l.maxRequests}|${l.maxRetries}${b ? `|${b.percent}|${b.minRetryConcurrency}` : ''}`;
}
