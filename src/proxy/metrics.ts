/**
 * The proxy's own metrics, on the data plane's prom-client registry (served
 * at the admin port's /metrics beside telemetry's Istio service metrics).
 * Counting a request is a few array increments; the values are copied into
 * prom-client only when /metrics is read, and the gauges (active requests,
 * connections, pools, config version and age) are read from the live state
 * at that moment. TLS: handshakes by direction (full or resumed), refused
 * handshakes by reason, requests refused by the port's PeerAuthentication
 * mode (plaintext on STRICT, mTLS on DISABLE), and the seconds left until the
 * workload certificate expires. Outlier detection: ejections by cluster and
 * reason, and the hosts ejected now, read from the outlier store at scrape.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Direction } from './exchange.js';
import type { CertificateInfo } from './tls/workload-tls.js';
import { EJECTION_REASONS, type OutlierClusterStats } from './outlier.js';

const DIRECTIONS: readonly Direction[] = ['inbound', 'outbound', 'gateway'];
const CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Read from the data plane at each scrape. */
export interface ProxyGauges {
  readonly activeRequests: number;
  readonly upstreamPools: number;
  readonly snapshotVersion?: string | undefined;
  /** The workload certificate in use, if any (`DataPlane.certificate`). */
  readonly certificate?: CertificateInfo | undefined;
  /** Outlier state of the clusters that detect outliers (`outlierStoreFor(pools).stats()`); absent: none shown. */
  readonly outliers?: readonly OutlierClusterStats[];
  /** Young-generation collections made while idle (idle-gc.ts); absent: not on. */
  readonly idleCollections?: number | undefined;
}

export type ListenerKind = 'outbound' | 'inbound' | 'gateway';

export class ProxyMetrics {
  /** [direction][status class] */
  readonly #requests = DIRECTIONS.map(() => CLASSES.map(() => 0));
  readonly #flags = new Map<string, number>();
  readonly #connections = new Map<ListenerKind, { opened: number; open: number }>();
  /** `direction|resumed` → count */
  readonly #handshakes = new Map<string, number>();
  /** `direction|reason` → count */
  readonly #handshakeFailures = new Map<string, number>();
  /** reason → count */
  readonly #mtlsRefused = new Map<string, number>();
  /** `policy|limit|caller|decision|side` → count (RateLimitPolicy decisions; callers bounded by the caller's ratelimit runtime) */
  readonly #rateLimit = new Map<string, number>();
  #retries = 0;
  /** `cluster|limit` → attempts refused by a circuit breaker (limit: pending, requests) */
  readonly #pendingOverflow = new Map<string, number>();
  /** cluster → retries not made because of maxRetries or the retry budget */
  readonly #retryOverflow = new Map<string, number>();
  #applied = 0;
  #rejected = 0;
  #connected = 0;
  #lastApplied = 0;

  constructor(registry: Registry, gauges: () => ProxyGauges) {
    const registers = [registry];
    const self = this;
    const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter<string>) => void) =>
      new Counter({ name, help, labelNames, registers, collect() { this.reset(); fill(this); } });
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>) => void) =>
      new Gauge({ name, help, labelNames, registers, collect() { this.reset(); fill(this); } });

    counter('trellis_proxy_requests_total', 'Requests ended, by direction and status class (0xx: no response was sent).', ['direction', 'status_class'], (c) => {
      DIRECTIONS.forEach((d, i) => CLASSES.forEach((k, j) => c.inc({ direction: d, status_class: k }, self.#requests[i]![j]!)));
    });
    counter('trellis_proxy_response_flags_total', 'Requests ended with an Envoy-style response flag, by direction and flag.', ['direction', 'flag'], (c) => {
      for (const [key, n] of self.#flags) {
        const [direction, flag] = key.split('|');
        c.inc({ direction: direction!, flag: flag! }, n);
      }
    });
    counter('trellis_proxy_tls_handshakes_total', 'TLS handshakes completed (peer verified), by direction (inbound: a peer connected; outbound: to an upstream) and whether the session was resumed.', ['direction', 'resumed'], (c) => {
      for (const [key, n] of self.#handshakes) {
        const [direction, resumed] = key.split('|');
        c.inc({ direction: direction!, resumed: resumed! }, n);
      }
    });
    counter('trellis_proxy_tls_handshake_failures_total', 'TLS handshakes refused, by direction and reason (no_certificate, untrusted, expired, secure_naming, unsupported, handshake).', ['direction', 'reason'], (c) => {
      for (const [key, n] of self.#handshakeFailures) {
        const [direction, reason] = key.split('|');
        c.inc({ direction: direction!, reason: reason! }, n);
      }
    });
    counter('trellis_proxy_mtls_refused_total', 'Inbound connections or requests refused by the port\'s PeerAuthentication mode, by reason (plaintext_on_strict, mtls_on_disable).', ['reason'], (c) => {
      for (const [reason, n] of self.#mtlsRefused) c.inc({ reason }, n);
    });
    counter('trellis_proxy_rate_limit_requests_total', 'Requests a RateLimitPolicy limit decided, by policy, limit, caller (principal; "other" past the first 100 callers, "unauthenticated" for plaintext), decision (allowed, limited, store_unavailable_allowed, store_unavailable_limited) and side (inbound: this proxy as the destination; outbound: as a caller shedding load early).', ['policy', 'limit', 'caller', 'decision', 'side'], (c) => {
      for (const [key, n] of self.#rateLimit) {
        const [policy, limit, caller, decision, side] = key.split('|');
        c.inc({ policy: policy!, limit: limit!, caller: caller!, decision: decision!, side: side! }, n);
      }
    });
    counter('trellis_proxy_upstream_retries_total', 'Upstream attempts that were retries.', [], (c) => c.inc(self.#retries));
    counter('trellis_proxy_upstream_rq_pending_overflow_total', 'Requests a cluster\'s circuit breaker refused with 503 UO (Envoy\'s upstream_rq_pending_overflow), by cluster and limit (pending: http1MaxPendingRequests; requests: http2MaxRequests).', ['cluster', 'limit'], (c) => {
      for (const [key, n] of self.#pendingOverflow) {
        const i = key.lastIndexOf('|');
        c.inc({ cluster: key.slice(0, i), limit: key.slice(i + 1) }, n);
      }
    });
    counter('trellis_proxy_upstream_rq_retry_overflow_total', 'Retries not made because the cluster\'s maxRetries or retry budget was reached (Envoy\'s upstream_rq_retry_overflow), by cluster.', ['cluster'], (c) => {
      for (const [cluster, n] of self.#retryOverflow) c.inc({ cluster }, n);
    });
    counter('trellis_proxy_snapshots_applied_total', 'Snapshots applied.', [], (c) => c.inc(self.#applied));
    counter('trellis_proxy_snapshots_rejected_total', 'Snapshots rejected (NACKed); the previous one stayed in force.', [], (c) => c.inc(self.#rejected));
    counter('trellis_proxy_downstream_connections_opened_total', 'Downstream connections accepted, by listener.', ['listener'], (c) => {
      for (const [listener, n] of self.#connections) c.inc({ listener }, n.opened);
    });
    gauge('trellis_proxy_downstream_connections', 'Downstream connections open, by listener.', ['listener'], (g) => {
      for (const [listener, n] of self.#connections) g.set({ listener }, n.open);
    });
    gauge('trellis_proxy_snapshot_applied_timestamp_seconds', 'When the snapshot in force was applied (0: none yet).', [], (g) => g.set(self.#lastApplied / 1000));
    gauge('trellis_proxy_snapshot_age_seconds', 'Seconds since the snapshot in force was applied (absent: none yet).', [], (g) => {
      if (self.#lastApplied) g.set((Date.now() - self.#lastApplied) / 1000);
    });
    gauge('trellis_proxy_snapshot_info', 'The version of the snapshot in force.', ['version'], (g) => {
      const v = gauges().snapshotVersion;
      if (v !== undefined) g.set({ version: v }, 1);
    });
    gauge('trellis_proxy_control_plane_connected', '1 while the agent holds a stream to the control plane.', [], (g) => g.set(self.#connected));
    gauge('trellis_proxy_active_requests', 'Requests in flight.', [], (g) => g.set(gauges().activeRequests));
    counter('trellis_proxy_idle_gc_total', 'Young-generation collections the proxy made while no request was in flight, so that fewer land in requests (0 with --no-idle-gc).', [], (c) => {
      const n = gauges().idleCollections;
      if (n !== undefined) c.inc(n);
    });
    gauge('trellis_proxy_upstream_pools', 'Connection pools to upstream addresses.', [], (g) => g.set(gauges().upstreamPools));
    gauge('trellis_proxy_certificate_expiry_seconds', 'Seconds until the workload certificate in use expires, by its SPIFFE ID (negative once it has; absent: no certificate). Rotation renews it at half its lifetime.', ['identity'], (g) => {
      const c = gauges().certificate;
      const notAfter = certificateNotAfter(c);
      if (c && notAfter !== undefined) g.set({ identity: c.spiffeId }, (notAfter - Date.now()) / 1000);
    });
    counter('trellis_proxy_outlier_ejections_enforced_total', 'Hosts ejected by outlier detection, by cluster and reason (consecutive_5xx, consecutive_gateway_failure, consecutive_local_origin_failure); Envoy\'s envoy_cluster_outlier_detection_ejections_enforced_*.', ['cluster', 'reason'], (c) => {
      for (const o of gauges().outliers ?? []) for (const reason of EJECTION_REASONS) c.inc({ cluster: o.cluster, reason }, o.ejectionsEnforced[reason]);
    });
    counter('trellis_proxy_outlier_ejections_overflow_total', 'Ejections outlier detection did not carry out because maxEjectionPercent of the cluster was already out (Envoy\'s ejections_overflow), by cluster.', ['cluster'], (c) => {
      for (const o of gauges().outliers ?? []) c.inc({ cluster: o.cluster }, o.ejectionsOverflow);
    });
    gauge('trellis_proxy_outlier_ejections_active', 'Hosts ejected now, by cluster (Envoy\'s envoy_cluster_outlier_detection_ejections_active).', ['cluster'], (g) => {
      for (const o of gauges().outliers ?? []) g.set({ cluster: o.cluster }, o.ejectedNow);
    });
  }

  requestEnded(direction: Direction, status: number, flags: readonly string[] | undefined): void {
    const d = direction === 'inbound' ? 0 : direction === 'outbound' ? 1 : 2;
    const c = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    this.#requests[d]![c]!++;
    if (flags) for (const f of flags) {
      const key = `${direction}|${f}`;
      this.#flags.set(key, (this.#flags.get(key) ?? 0) + 1);
    }
  }

  connectionOpened(listener: ListenerKind): void {
    let n = this.#connections.get(listener);
    if (!n) this.#connections.set(listener, (n = { opened: 0, open: 0 }));
    n.opened++;
    n.open++;
  }

  connectionClosed(listener: ListenerKind): void {
    const n = this.#connections.get(listener);
    if (n) n.open--;
  }

  tlsHandshake(direction: 'inbound' | 'outbound', resumed: boolean): void {
    bump(this.#handshakes, `${direction}|${resumed}`);
  }

  tlsHandshakeFailed(direction: 'inbound' | 'outbound', reason: string): void {
    bump(this.#handshakeFailures, `${direction}|${reason}`);
  }

  mtlsRefused(reason: 'plaintext_on_strict' | 'mtls_on_disable'): void {
    bump(this.#mtlsRefused, reason);
  }

  /** One rate-limit decision; `caller` must come from a bounded set (src/proxy/ratelimit/runtime.ts). */
  rateLimited(policy: string, limit: string, caller: string, decision: string, side: 'inbound' | 'outbound' = 'inbound'): void {
    bump(this.#rateLimit, `${policy}|${limit}|${caller}|${decision}|${side}`);
  }

  retried(): void { this.#retries++; }
  /** A circuit breaker refused an attempt (pending, requests) or a retry (retries). */
  overflowed(cluster: string, limit: 'pending' | 'requests' | 'retries'): void {
    if (limit === 'retries') bump(this.#retryOverflow, cluster);
    else bump(this.#pendingOverflow, `${cluster}|${limit}`);
  }
  snapshotApplied(): void { this.#applied++; this.#lastApplied = Date.now(); }
  snapshotRejected(): void { this.#rejected++; }
  setControlPlaneConnected(on: boolean): void { this.#connected = on ? 1 : 0; }
}

/** notAfter of a certificate in epoch ms, parsed once per certificate (a rotation brings a new CertificateInfo). */
const notAfterMemo = new WeakMap<CertificateInfo, number>();

function certificateNotAfter(c: CertificateInfo | undefined): number | undefined {
  if (!c) return undefined;
  let t = notAfterMemo.get(c);
  if (t === undefined) {
    t = Date.parse(c.notAfter);
    notAfterMemo.set(c, t);
  }
  return Number.isNaN(t) ? undefined : t;
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}
