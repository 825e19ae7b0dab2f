/**
 * Pushing: changes (configuration reloads, instances joining or leaving,
 * health) are debounced — `debounceMs` after the last change, at most
 * `maxDelayMs` after the first — then every connected proxy's snapshot is
 * compiled with the one compiler and sent only when its version differs from
 * the version last pushed to that proxy. Proxies of one workload share a
 * snapshot, compiled once per round.
 */
import { randomUUID } from 'node:crypto';
import type { Snapshot } from '../protocol/snapshot.js';
import type { ProxySession, ProxySessions } from './proxy-sessions.js';

export interface PusherOptions {
  readonly sessions: ProxySessions;
  /** The current snapshot of a session's workload; throws a TrellisError when it cannot be compiled (workload no longer declared). */
  readonly snapshotFor: (s: ProxySession) => Snapshot;
  /** Whether pushes to this session are held back (start-up grace, withdrawn instance). */
  readonly held: (s: ProxySession) => boolean;
  /**
   * Called after a snapshot was sent; `changeAt` is when the first change of
   * the round happened (the clock's ms; the same value for every push of a
   * round), undefined for pushes no change started (a registration).
   */
  readonly onPush: (s: ProxySession, snapshot: Snapshot, nonce: string, reason: string, changeAt: number | undefined) => void;
  /** Called when a session's snapshot cannot be compiled. */
  readonly onError: (s: ProxySession, error: unknown) => void;
  /** Called at the start of each round, before any compile (refreshes workloads after a config change). */
  readonly beforeRound?: () => void;
  /** Called at the end of each round, after every push of it was sent. */
  readonly afterRound?: () => void;
  readonly debounceMs?: number;
  readonly maxDelayMs?: number;
  /** Monotonic clock in ms; performance.now by default. */
  readonly now?: () => number;
}

export class Pusher {
  readonly #o: PusherOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #firstChangeAt: number | undefined;
  #reasons = new Set<string>();
  #closed = false;

  constructor(opts: PusherOptions) {
    this.#o = opts;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Notes a change; a round runs once changes have been quiet for the debounce time. */
  schedule(reason: string): void {
    if (this.#closed) return;
    const now = this.#now();
    this.#reasons.add(reason);
    this.#firstChangeAt ??= now;
    const debounce = this.#o.debounceMs ?? 100;
    const maxDelay = this.#o.maxDelayMs ?? 1000;
    const wait = Math.max(0, Math.min(debounce, this.#firstChangeAt + maxDelay - now));
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.flush(), wait);
  }

  /** Runs a round now: compile for every connected proxy, push where the version changed. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    const since = this.#firstChangeAt;
    const reason = [...this.#reasons].sort().join(',') || 'resync';
    this.#firstChangeAt = undefined;
    this.#reasons = new Set();
    this.#o.beforeRound?.();
    const round = new Map<string, Snapshot | { error: unknown }>();
    for (const s of this.#o.sessions.connected()) this.pushTo(s, reason, since, round);
    this.#o.afterRound?.();
  }

  /** Whether a round is scheduled and has not run yet. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /** Pushes to one session if its snapshot changed (used on registration and by rounds). */
  pushTo(s: ProxySession, reason: string, since?: number, round?: Map<string, Snapshot | { error: unknown }>): boolean {
    if (this.#closed || !s.connected || !s.stream || this.#o.held(s)) return false;
    const key = `${s.workload.name}.${s.workload.namespace}`;
    let snap = round?.get(key);
    if (snap === undefined) {
      try {
        snap = this.#o.snapshotFor(s);
      } catch (error) {
        snap = { error };
      }
      round?.set(key, snap);
    }
    if ('error' in snap) {
      this.#o.onError(s, snap.error);
      return false;
    }
    if (snap.version === s.lastPushedVersion) return false;
    const nonce = randomUUID();
    s.stream.send({ type: 'snapshot', version: snap.version, nonce, snapshot: snap });
    s.lastPushedVersion = snap.version;
    s.lastPushedNonce = nonce;
    s.lastPushedAt = this.#now();
    this.#o.onPush(s, snap, nonce, reason, since);
    return true;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
