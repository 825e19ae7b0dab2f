/**
 * Local limits: the buckets of one limit in this proxy process, by key. A
 * token bucket refills continuously (`requests` every `periodMs`, holding at
 * most `burst`); a fixed window counts requests per window aligned on the
 * wall clock (as the Redis store aligns them on its own clock), so the same
 * quota gives the same windows locally and globally.
 *
 * The state survives snapshots: a changed limit is `reconfigure`d in place,
 * so a bucket keeps its tokens (capped by the new burst) and the new rate
 * applies from the next request on. At most `MAX_KEYS` keys are held per
 * limit (header values are the caller's to choose); past that the oldest key
 * is forgotten and starts again full.
 */
import type { RateLimitAlgorithm } from '../../protocol/rate-limit.js';

/** The answer for one request under one limit. */
export interface LimitOutcome {
  readonly allowed: boolean;
  /** Requests per period or window, for `x-ratelimit-limit`. */
  readonly limit: number;
  /** Whole requests left after this one. */
  readonly remaining: number;
  /** Milliseconds until a refused request could pass (0 when allowed). */
  readonly retryAfterMs: number;
}

export const MAX_KEYS = 10_000;

interface Bucket { tokens: number; at: number }
interface Window { index: number; count: number }

export class LocalLimit {
  #alg: RateLimitAlgorithm;
  readonly #buckets = new Map<string, Bucket>();
  readonly #windows = new Map<string, Window>();
  readonly #now: () => number;
  readonly #wall: () => number;

  constructor(alg: RateLimitAlgorithm, clocks: { now?: () => number; wall?: () => number } = {}) {
    this.#alg = alg;
    this.#now = clocks.now ?? performance.now.bind(performance);
    this.#wall = clocks.wall ?? Date.now;
  }

  get algorithm(): RateLimitAlgorithm {
    return this.#alg;
  }

  /** Takes the limit of a new snapshot; buckets keep their tokens, windows their counts, unless the kind changed. */
  reconfigure(alg: RateLimitAlgorithm): void {
    if (alg.kind !== this.#alg.kind || (alg.kind === 'window' && this.#alg.kind === 'window' && alg.windowMs !== this.#alg.windowMs)) {
      this.#buckets.clear();
      this.#windows.clear();
    }
    this.#alg = alg;
  }

  take(key: string): LimitOutcome {
    const a = this.#alg;
    return a.kind === 'token-bucket' ? this.#bucket(key, a) : this.#window(key, a);
  }

  #bucket(key: string, a: Extract<RateLimitAlgorithm, { kind: 'token-bucket' }>): LimitOutcome {
    const now = this.#now();
    const perMs = a.requests / a.periodMs;
    let b = this.#buckets.get(key);
    if (!b) b = this.#insert(this.#buckets, key, { tokens: a.burst, at: now });
    else if (now > b.at) b.tokens = Math.min(a.burst, b.tokens + (now - b.at) * perMs);
    else b.tokens = Math.min(a.burst, b.tokens);
    b.at = Math.max(b.at, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, limit: a.requests, remaining: Math.floor(b.tokens), retryAfterMs: 0 };
    }
    return { allowed: false, limit: a.requests, remaining: 0, retryAfterMs: Math.ceil((1 - b.tokens) / perMs) };
  }

  #window(key: string, a: Extract<RateLimitAlgorithm, { kind: 'window' }>): LimitOutcome {
    const wall = this.#wall();
    const index = Math.floor(wall / a.windowMs);
    let w = this.#windows.get(key);
    if (!w) w = this.#insert(this.#windows, key, { index, count: 0 });
    else if (w.index !== index) { w.index = index; w.count = 0; }
    if (w.count < a.requests) {
      w.count++;
      return { allowed: true, limit: a.requests, remaining: a.requests - w.count, retryAfterMs: 0 };
    }
    return { allowed: false, limit: a.requests, remaining: 0, retryAfterMs: (index + 1) * a.windowMs - wall };
  }

  #insert<T>(m: Map<string, T>, key: string, v: T): T {
    if (m.size >= MAX_KEYS) m.delete(m.keys().next().value!);
    m.set(key, v);
    return v;
  }
}
