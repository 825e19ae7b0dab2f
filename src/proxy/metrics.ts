/**
 * The proxy's own counters, rendered in the Prometheus text format for the
 * admin port's /metrics. Counting a request is a few array increments; the
 * per-request Istio-style metrics (DESIGN.md §6) belong to telemetry, as a
 * subscriber of the request records.
 */
import type { Direction } from './exchange.js';

const DIRECTIONS: readonly Direction[] = ['inbound', 'outbound', 'gateway'];
const CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export class ProxyMetrics {
  /** [direction][status class] */
  readonly #requests = DIRECTIONS.map(() => CLASSES.map(() => 0));
  readonly #flags = new Map<string, number>();
  #retries = 0;
  #applied = 0;
  #rejected = 0;
  #connected = 0;
  #lastApplied = 0;

  requestEnded(direction: Direction, status: number, flags: readonly string[] | undefined): void {
    const d = direction === 'inbound' ? 0 : direction === 'outbound' ? 1 : 2;
    const c = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    this.#requests[d]![c]!++;
    if (flags) for (const f of flags) {
      const key = `${direction}|${f}`;
      this.#flags.set(key, (this.#flags.get(key) ?? 0) + 1);
    }
  }

  retried(): void { this.#retries++; }
  snapshotApplied(): void { this.#applied++; this.#lastApplied = Date.now(); }
  snapshotRejected(): void { this.#rejected++; }
  setControlPlaneConnected(on: boolean): void { this.#connected = on ? 1 : 0; }

  /** Prometheus text exposition format 0.0.4. */
  render(gauges: { readonly activeRequests: number; readonly upstreamPools: number; readonly snapshotVersion?: string | undefined }): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head('trellis_proxy_requests_total', 'counter', 'Requests ended, by direction and status class (0xx: no response was sent).');
    DIRECTIONS.forEach((d, i) => CLASSES.forEach((c, j) => {
      out.push(`trellis_proxy_requests_total{direction="${d}",status_class="${c}"} ${this.#requests[i]![j]}`);
    }));
    head('trellis_proxy_response_flags_total', 'counter', 'Requests ended with an Envoy-style response flag, by direction and flag.');
    for (const [k, n] of [...this.#flags].sort()) {
      const [d, f] = k.split('|');
      out.push(`trellis_proxy_response_flags_total{direction="${d}",flag="${f}"} ${n}`);
    }
    head('trellis_proxy_upstream_retries_total', 'counter', 'Upstream attempts that were retries.');
    out.push(`trellis_proxy_upstream_retries_total ${this.#retries}`);
    head('trellis_proxy_snapshots_applied_total', 'counter', 'Snapshots applied.');
    out.push(`trellis_proxy_snapshots_applied_total ${this.#applied}`);
    head('trellis_proxy_snapshots_rejected_total', 'counter', 'Snapshots rejected (NACKed); the previous one stayed in force.');
    out.push(`trellis_proxy_snapshots_rejected_total ${this.#rejected}`);
    head('trellis_proxy_snapshot_applied_timestamp_seconds', 'gauge', 'When the snapshot in force was applied (0: none yet).');
    out.push(`trellis_proxy_snapshot_applied_timestamp_seconds ${this.#lastApplied / 1000}`);
    if (gauges.snapshotVersion !== undefined) {
      head('trellis_proxy_snapshot_info', 'gauge', 'The version of the snapshot in force.');
      out.push(`trellis_proxy_snapshot_info{version="${gauges.snapshotVersion.replace(/["\\\n]/g, '_')}"} 1`);
    }
    head('trellis_proxy_control_plane_connected', 'gauge', '1 while the agent holds a stream to the control plane.');
    out.push(`trellis_proxy_control_plane_connected ${this.#connected}`);
    head('trellis_proxy_active_requests', 'gauge', 'Requests in flight.');
    out.push(`trellis_proxy_active_requests ${gauges.activeRequests}`);
    head('trellis_proxy_upstream_pools', 'gauge', 'Connection pools to upstream addresses.');
    out.push(`trellis_proxy_upstream_pools ${gauges.upstreamPools}`);
    return out.join('\n') + '\n';
  }
}
