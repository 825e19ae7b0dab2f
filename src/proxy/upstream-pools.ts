/**
 * Keep-alive connection pools to upstream addresses (the proxy's own
 * HTTP/1.1 pools, h1-pool.ts; HTTP/2 sessions, h2-upstream.ts), shared
 * by every snapshot that sends to the same address with the same connection
 * settings. A snapshot holds a reference to each pool it uses; when the last
 * holder lets go (a retired snapshot whose requests have all ended), the
 * pool closes gracefully. So pools live across swaps, and a request never
 * loses its pool mid-way.
 *
 * A cluster's TLS settings are part of the pool key; pools of TLS clusters
 * connect through an UpstreamConnector (tls/upstream-connector.ts), which
 * reads the workload certificate in force at each new connection.
 *
 * Clusters' circuit breakers (circuit-breaker.ts) are held the same way, one
 * per cluster name and thresholds, so that their counts of requests in
 * flight carry over from one snapshot to the next.
 *
 * Connection settings (Envoy's meaning): `maxConnections` bounds each host's
 * pool (requests beyond it wait for a connection: pending),
 * `maxRequestsPerConnection` closes a connection after that many requests,
 * `idleTimeoutMs` closes one idle that long.
 */
import { newAgent, type Agent } from './undici-lite.js';
import type { Cluster, ConnectionPool, UpstreamTls } from '../protocol/snapshot.js';
import { breakerKey, CircuitBreaker } from './circuit-breaker.js';
import { H1Pool } from './h1-pool.js';
import { H2Upstream, type UpstreamDispatcher } from './h2-upstream.js';
import { NO_TLS_OBSERVER } from './tls/tls-events.js';
import { connectorFor, tlsKey, type ConnectorEnv, type UpstreamConnector } from './tls/upstream-connector.js';
import { WorkloadTls } from './tls/workload-tls.js';

/** The settings a pool is built with; the pool key includes them. */
export type PoolSettings = Pick<ConnectionPool, 'connectTimeoutMs' | 'maxConnections' | 'maxRequestsPerConnection' | 'idleTimeoutMs'>;

const UNLIMITED = 2 ** 31;
/** How long an idle connection stays open when the server gives no keep-alive hint. */
const DEFAULT_IDLE_MS = 4_000;

/** One upstream address and its pool. `active` counts requests in flight (LEAST_REQUEST reads it). */
export class Upstream {
  active = 0;
  refs = 0;
  /** Connections the pool may open (tcp.maxConnections); requests beyond wait in it. Infinity: no limit. */
  connectionLimit = Infinity;
  /** maxRequestsPerConnection 1: every request asks for its connection to close after it (undici's `reset`). */
  closeEach: true | undefined = undefined;
  #dispatcher: UpstreamDispatcher;
  constructor(
    readonly key: string,
    /** `host:port` */
    readonly address: string,
    /** `http://host:port`, given to the dispatcher with each request. */
    readonly origin: string,
    dispatcher: UpstreamDispatcher,
    /** Spoken to over HTTP/2 (one multiplexed session) rather than HTTP/1.1 pools. */
    readonly http2 = false,
    /** How connections are opened when the cluster speaks TLS (upgrades and CONNECT tunnels use it too); undefined: plaintext. */
    readonly connector?: UpstreamConnector,
  ) {
    this.#dispatcher = dispatcher;
  }

  /** The dispatcher new requests go to. */
  get dispatcher(): UpstreamDispatcher {
    return this.#dispatcher;
  }

  /** Sends new requests to `next` from now on; returns the previous dispatcher (the caller closes it). */
  replace(next: UpstreamDispatcher): UpstreamDispatcher {
    const prev = this.#dispatcher;
    this.#dispatcher = next;
    return prev;
  }
}

/** The TLS settings of a pool: the cluster's, and the service host (SIMPLE's default SNI). */
export interface PoolTls {
  readonly tls: UpstreamTls;
  readonly service: string;
}

/** The HTTP/1.1 pool's settings from the cluster's (Envoy's meaning). */
function h1Options(s: PoolSettings) {
  return {
    connectTimeoutMs: s.connectTimeoutMs,
    maxConnections: s.maxConnections >= UNLIMITED ? Infinity : Math.max(1, s.maxConnections),
    maxRequestsPerConnection: s.maxRequestsPerConnection > 0 ? s.maxRequestsPerConnection : 0,
    keepAliveTimeoutMs: Math.min(DEFAULT_IDLE_MS, s.idleTimeoutMs),
    keepAliveMaxTimeoutMs: Math.max(1, Math.min(s.idleTimeoutMs, 600_000)),
  };
}

/** undici's options for the passthrough agent. */
function dispatcherOptions(s: PoolSettings) {
  return {
    connect: { timeout: s.connectTimeoutMs },
    connections: s.maxConnections >= UNLIMITED ? null : Math.max(1, s.maxConnections),
    // undici closes a connection after maxRequestsPerClient + 1 requests; 1 is `closeEach` (Upstream).
    ...(s.maxRequestsPerConnection > 1 ? { maxRequestsPerClient: s.maxRequestsPerConnection - 1 } : {}),
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
  readonly #make = new WeakMap<Upstream, () => UpstreamDispatcher>();
  readonly #breakers = new Map<string, { breaker: CircuitBreaker; refs: number }>();
  readonly #env: ConnectorEnv;
  #hadCertificate: boolean;

  /** `env`: the workload's TLS material for TLS clusters; without it, a workload that never gets a certificate. */
  constructor(env?: ConnectorEnv) {
    this.#env = env ?? { workload: new WorkloadTls(), observer: NO_TLS_OBSERVER, withoutCertificate: 'plaintext' };
    this.#hadCertificate = this.#env.workload.ready;
    this.#env.workload.onChange(() => this.#certificateChanged());
  }

  /**
   * The pool for an address with these settings (`http2`: an HTTP/2 session
   * instead of HTTP/1.1 connections; `tls`: the cluster's TLS settings, plaintext
   * without); the caller holds a reference until `release`.
   */
  acquire(host: string, port: number, s: PoolSettings, http2 = false, tls?: PoolTls): Upstream {
    const address = hostPort(host, port);
    const key = `${address}|${s.connectTimeoutMs}|${s.maxConnections}|${s.maxRequestsPerConnection}|${s.idleTimeoutMs}${http2 ? '|h2' : ''}${tlsKey(tls?.tls, tls?.service ?? host)}`;
    let u = this.#pools.get(key);
    if (!u) {
      const origin = `http://${address}`;
      const connector = connectorFor(tls?.tls, tls?.service ?? host, host, port, this.#env);
      const make = (): UpstreamDispatcher => http2
        ? new H2Upstream(origin, s.connectTimeoutMs, Math.min(s.idleTimeoutMs, 600_000), connector)
        : new H1Pool(host, port, address, h1Options(s), connector);
      u = new Upstream(key, address, origin, make(), http2, connector);
      if (s.maxConnections < UNLIMITED) u.connectionLimit = Math.max(1, s.maxConnections);
      if (s.maxRequestsPerConnection === 1 && !http2) u.closeEach = true;
      this.#make.set(u, make);
      this.#pools.set(key, u);
    }
    u.refs++;
    return u;
  }

  release(u: Upstream): void {
    if (--u.refs > 0 || this.#pools.get(u.key) !== u) return;
    this.#pools.delete(u.key);
    this.#closeLater(u.dispatcher);
  }

  /** The circuit breaker of a cluster (shared while any snapshot holds it); the caller releases it with `releaseBreaker`. */
  breaker(cluster: Cluster): CircuitBreaker {
    const key = breakerKey(cluster.name, cluster.connectionPool);
    let b = this.#breakers.get(key);
    if (!b) this.#breakers.set(key, (b = { breaker: new CircuitBreaker(cluster.name, cluster.connectionPool), refs: 0 }));
    b.refs++;
    return b.breaker;
  }

  releaseBreaker(breaker: CircuitBreaker, cluster: Cluster): void {
    const key = breakerKey(cluster.name, cluster.connectionPool);
    const b = this.#breakers.get(key);
    if (b?.breaker === breaker && --b.refs <= 0) this.#breakers.delete(key);
  }

  #closeLater(d: UpstreamDispatcher): void {
    const p = d.close().catch(() => undefined);
    this.#closing.add(p);
    void p.then(() => this.#closing.delete(p));
  }

  /**
   * The first certificate: pools of ISTIO_MUTUAL clusters opened plaintext
   * connections until now (ConnectorEnv.withoutCertificate); they get new
   * dispatchers, so every new request goes over mTLS, and the old ones close
   * once their requests are done. Later changes (rotation) drop nothing.
   * (Only data planes made with `mtlsWithoutCertificate: 'plaintext'` have such pools.)
   */
  #certificateChanged(): void {
    const ready = this.#env.workload.ready;
    if (ready === this.#hadCertificate) return;
    this.#hadCertificate = ready;
    if (!ready) return;
    for (const u of this.#pools.values()) {
      const make = this.#make.get(u);
      if (u.connector?.tls.mode === 'ISTIO_MUTUAL' && make) this.#closeLater(u.replace(make()));
    }
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
  return newAgent(dispatcherOptions({ connectTimeoutMs, maxConnections: UNLIMITED, maxRequestsPerConnection: 0, idleTimeoutMs: 60_000 }));
}

/** The pools one snapshot holds; released together when the snapshot retires and its requests have ended. */
export class PoolLease {
  #held: Upstream[] = [];
  #breakers: [CircuitBreaker, Cluster][] = [];
  constructor(readonly pools: UpstreamPools) {}
  /** The cluster's circuit breaker, held until `releaseAll`. */
  breaker(cluster: Cluster): CircuitBreaker {
    const b = this.pools.breaker(cluster);
    this.#breakers.push([b, cluster]);
    return b;
  }
  acquire(host: string, port: number, s: PoolSettings, http2 = false, tls?: PoolTls): Upstream {
    const u = this.pools.acquire(host, port, s, http2, tls);
    this.#held.push(u);
    return u;
  }
  releaseAll(): void {
    const held = this.#held;
    this.#held = [];
    for (const u of held) this.pools.release(u);
    const breakers = this.#breakers;
    this.#breakers = [];
    for (const [b, c] of breakers) this.pools.releaseBreaker(b, c);
  }
}
