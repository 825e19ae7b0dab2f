/**
 * The rate-limit state of one data plane, which outlives its snapshots: the
 * local buckets of each limit (by side and `policy/limit`, reconfigured in
 * place when a new snapshot changes the limit, dropped when a snapshot no
 * longer has it), the Redis clients of the global stores (by address, closed
 * with the data plane), and the bounded set of caller names metrics may use.
 *
 * The two sides never share state: a caller's outbound limits (it sheds load
 * early, `snapshot.outboundRateLimits`) have buckets of their own, apart from
 * the inbound ones the same proxy keeps as a destination.
 */
import type { RateLimitSide, WorkloadRateLimits } from '../../protocol/rate-limit.js';
import { LocalLimit } from './local.js';
import { RedisStore } from './redis-store.js';

/** Where decisions are counted (ProxyMetrics.rateLimited). */
export interface RateLimitCounter {
  rateLimited(policy: string, limit: string, caller: string, decision: string, side: RateLimitSide): void;
}

/** Distinct callers that get their own metric label; the rest are `other`. */
export const MAX_CALLER_LABELS = 100;

export class RateLimitRuntime {
  readonly #local = new Map<string, LocalLimit>();
  readonly #stores = new Map<string, RedisStore>();
  readonly #callers = new Set<string>();
  readonly #metrics: RateLimitCounter | undefined;
  #closed = false;

  constructor(metrics?: RateLimitCounter) {
    this.#metrics = metrics;
  }

  /**
   * Prepares the state for a snapshot's limits, inbound and outbound (called
   * once per snapshot, before its chains are built): local limits it keeps
   * are reconfigured, those it dropped are forgotten, stores it names are
   * connected.
   */
  prepare(inbound: WorkloadRateLimits | undefined, outbound?: WorkloadRateLimits): void {
    const keep = new Set<string>();
    const sides: [RateLimitSide, WorkloadRateLimits | undefined][] = [['inbound', inbound], ['outbound', outbound]];
    for (const [side, limits] of sides) {
      for (const p of limits?.policies ?? []) {
        for (const l of p.limits) {
          if (l.scope === 'local') {
            const id = localId(side, p.name, l.name);
            keep.add(id);
            const cur = this.#local.get(id);
            if (cur) cur.reconfigure(l.algorithm);
            else this.#local.set(id, new LocalLimit(l.algorithm));
          } else if (p.store) {
            this.store(p.store.redis, p.store.timeoutMs);
          }
        }
      }
    }
    for (const id of this.#local.keys()) if (!keep.has(id)) this.#local.delete(id);
  }

  /** The local state of a limit on one side (made by `prepare`, or now). */
  local(policy: string, limit: string, make: () => LocalLimit, side: RateLimitSide = 'inbound'): LocalLimit {
    const id = localId(side, policy, limit);
    let l = this.#local.get(id);
    if (!l) this.#local.set(id, (l = make()));
    return l;
  }

  /** The client of a Redis store, made on first use; one per address. */
  store(address: string, timeoutMs: number): RedisStore {
    let s = this.#stores.get(address);
    if (!s) {
      if (this.#closed) throw new Error('the rate-limit runtime is closed');
      this.#stores.set(address, (s = new RedisStore(address, timeoutMs)));
    }
    return s;
  }

  /** The metric label of a caller: its principal among the first MAX_CALLER_LABELS seen, else `other`. */
  callerLabel(principal: string | undefined): string {
    if (principal === undefined) return 'unauthenticated';
    if (this.#callers.has(principal)) return principal;
    if (this.#callers.size >= MAX_CALLER_LABELS) return 'other';
    this.#callers.add(principal);
    return principal;
  }

  count(policy: string, limit: string, principal: string | undefined, decision: string, side: RateLimitSide = 'inbound'): void {
    this.#metrics?.rateLimited(policy, limit, this.callerLabel(principal), decision, side);
  }

  /** Closes the Redis clients (with the data plane). */
  close(): void {
    this.#closed = true;
    for (const s of this.#stores.values()) s.close();
    this.#stores.clear();
  }
}

/** Inbound limits keep the ids they always had (`policy/limit`); outbound ones are apart (`out:policy/limit`). */
function localId(side: RateLimitSide, policy: string, limit: string): string {
  return side === 'inbound' ? `${policy}/${limit}` : `out:${policy}/${limit}`;
}
