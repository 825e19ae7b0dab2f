/**
 * Keep-alive connection pools to upstream addresses (undici `Pool`s), shared
 * by every snapshot that sends to the same address with the same connection
 * settings. A snapshot holds a reference to each pool it uses; when the last
 * holder lets go (a retired snapshot whose requests have all ended), the
 * pool closes gracefully. So pools live across swaps, and a request never
 * loses its pool mid-way.
 */
import { Agent, Pool } from 'undici';
import type { ConnectionPool } from '../protocol/snapshot.js';
import { H2Upstream, type UpstreamDispatcher } from './h2-upstream.js';

/** The settings a pool is built with; the pool key includes them. */
export type PoolSettings = Pick<ConnectionPool, 'connectTimeoutMs' | 'maxConnections' | 'maxRequestsPerConnection' | 'idleTimeoutMs'>;

const UNLIMITED = 2 ** 31;
/** How long an idle connection stays open when the server gives no keep-alive hint. */
const DEFAULT_IDLE_MS = 4_000;

/** One upstream address and its pool. `active` counts requests in flight (LEAST_REQUEST reads it). */
export class Upstream {
  active = 0;
  refs = 0;
  constructor(
    readonly key: string,
    /** `host:port` */
    readonly address: string,
    /** `http://host:port`, given to the dispatcher with each request. */
    readonly origin: string,
    readonly dispatcher: UpstreamDispatcher,
    /** Spoken to over h2c (one multiplexed session) rather than HTTP/1.1 pools. */
    readonly http2 = false,
  ) {}
}

function dispatcherOptions(s: PoolSettings) {
  return {
    connect: { timeout: s.connectTimeoutMs },
    connections: s.maxConnections >= UNLIMITED ? null : Math.max(1, s.maxConnections),
    ...(s.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: s.maxRequestsPerConnection } : {}),
    keepAliveTimeout: Math.min(DEFAULT_IDLE_MS, s.idleTimeoutMs),
    keepAliveMaxTimeout: Math.max(1, Math.min(s.idleTimeoutMs, 600_000)),
    // No timeouts of undici's own: the route's timeout and per-try timeout govern (0 = none, as in Istio).
    headersTimeout: 0,
    bodyTimeout: 0,
    pipelining: 1,
  };
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class UpstreamPools {
  readonly #pools = new Map<string, Upstream>();
  readonly #closing = new Set<Promise<void>>();

  /**
   * The pool for an address with these settings (`http2`: an h2c session
   * instead of HTTP/1.1 connections); the caller holds a reference until `release`.
   */
  acquire(host: string, port: number, s: PoolSettings, http2 = false): Upstream {
    const address = hostPort(host, port);
    const key = `${address}|${s.connectTimeoutMs}|${s.maxConnections}|${s.maxRequestsPerConnection}|${s.idleTimeoutMs}${http2 ? '|h2' : ''}`;
    let u = this.#pools.get(key);
    if (!u) {
      const origin = `http://${address}`;
      const dispatcher = http2 ? new H2Upstream(origin, s.connectTimeoutMs, Math.min(s.idleTimeoutMs, 600_000)) : new Pool(origin, dispatcherOptions(s));
      u = new Upstream(key, address, origin, dispatcher, http2);
      this.#pools.set(key, u);
    }
    u.refs++;
    return u;
  }

  release(u: Upstream): void {
    if (--u.refs > 0 || this.#pools.get(u.key) !== u) return;
    this.#pools.delete(u.key);
    const p = u.dispatcher.close().catch(() => undefined);
    this.#closing.add(p);
    void p.then(() => this.#closing.delete(p));
  }

  get size(): number {
    return this.#pools.size;
  }

  /** Destroys every pool now (in-flight requests fail); for close() after the grace. */
  async destroy(): Promise<void> {
    const all = [...this.#pools.values()].map((u) => u.dispatcher.destroy().catch(() => undefined));
    this.#pools.clear();
    await Promise.all([...all, ...this.#closing]);
  }
}

/** An agent for PASSTHROUGH traffic to hosts outside the mesh: it pools per origin and drops idle origins. */
export function passthroughAgent(connectTimeoutMs: number): Agent {
  return new Agent(dispatcherOptions({ connectTimeoutMs, maxConnections: UNLIMITED, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000 }));
}

/** The pools one snapshot holds; released together when the snapshot retires and its requests have ended. */
export class PoolLease {
  #held: Upstream[] = [];
  constructor(readonly pools: UpstreamPools) {}
  acquire(host: string, port: number, s: PoolSettings, http2 = false): Upstream {
    const u = this.pools.acquire(host, port, s, http2);
    this.#held.push(u);
    return u;
  }
  releaseAll(): void {
    const held = this.#held;
    this.#held = [];
    for (const u of held) this.pools.release(u);
  }
}
