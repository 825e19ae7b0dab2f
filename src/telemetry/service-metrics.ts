/**
 * Istio's standard service-level metrics, fed by request records:
 * `<prefix>requests_total`, `<prefix>request_duration_milliseconds`,
 * `<prefix>request_bytes`, `<prefix>response_bytes`, and for opaque TCP
 * `<prefix>tcp_sent_bytes_total`, `<prefix>tcp_received_bytes_total`,
 * `<prefix>tcp_connections_opened_total`, `<prefix>tcp_connections_closed_total`,
 * with Istio's label set
 * (istio-labels.ts) and Envoy's default histogram bounds, which Istio keeps
 * for all three histograms. The prefix is `trellis_` by default and `istio_`
 * for Istio-compatible names.
 *
 * A record costs a cache lookup and a few array increments: each label set
 * is one `Series` found by what the record names, and prom-client renders
 * the series (Prometheus text or OpenMetrics) only when /metrics is read.
 * prom-client's own Counter and Histogram validate and hash all 25 labels on
 * every update (~13 µs for the four metrics of a record).
 */
import type { Registry } from 'prom-client';
import type { RequestRecord } from '../protocol/request-record.js';
import type { IstioMetric, WorkloadMetrics } from '../protocol/snapshot.js';
import { ISTIO_LABELS, istioLabels, type IstioLabels, type LabelTables } from './istio-labels.js';

/** Envoy's default histogram bucket bounds, which Istio's request_duration_milliseconds, request_bytes and response_bytes use. */
export const ISTIO_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
]);

/** Record shapes remembered before the lookup cache starts over (the series themselves are kept). */
const CACHE_LIMIT = 4096;

export interface ServiceMetricsOptions {
  /** Metric name prefix: `trellis_` (the default) or `istio_` for Istio-compatible names. */
  readonly prefix?: string;
}

/** Per-bucket (not cumulative) counts and the sum of one histogram series. */
class Distribution {
  readonly counts = new Array<number>(ISTIO_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(v: number): void {
    let i = 0;
    while (i < ISTIO_BUCKETS.length && v > ISTIO_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** One bit per metric a proxy reports (Telemetry's names), for what a side has turned off. */
const BIT: Readonly<Record<IstioMetric, number>> = Object.freeze({
  REQUEST_COUNT: 1, REQUEST_DURATION: 2, REQUEST_SIZE: 4, RESPONSE_SIZE: 8,
  TCP_OPENED_CONNECTIONS: 16, TCP_CLOSED_CONNECTIONS: 32, TCP_SENT_BYTES: 64, TCP_RECEIVED_BYTES: 128,
});
const HTTP_BITS = 1 | 2 | 4 | 8;
const TCP_BITS = 16 | 32 | 64 | 128;
const bitsOf = (ms: readonly IstioMetric[]) => ms.reduce((b, m) => b | BIT[m], 0);

/** The labels of Istio's TCP metrics: the request labels without the response code and gRPC status. */
const TCP_LABELS = ISTIO_LABELS.filter((n) => n !== 'response_code' && n !== 'grpc_response_status');

/** One TCP label set: connections and bytes each way. */
interface TcpSeries {
  readonly labels: Readonly<Record<string, string>>;
  opened: number;
  closed: number;
  sent: number;
  received: number;
}

/**
 * What a record's series depends on, for the last few records: compared
 * field by field (the record's strings are mostly the snapshot's very
 * objects), so that a sidecar's few steady combinations find their series
 * without building a key string.
 */
interface Recent {
  readonly direction: string; readonly cluster: string | undefined; readonly upstream: string | undefined;
  readonly sourceIdentity: string | undefined; readonly destinationIdentity: string | undefined; readonly status: number;
  readonly flags: readonly string[]; readonly grpc: boolean | undefined; readonly grpcStatus: string | undefined;
  readonly mtls: boolean | undefined; readonly peerPrincipal: string | undefined;
  readonly series: Series;
}
const RECENT_SLOTS = 8;

/** Same flags, in the same order (usually both empty). */
function sameFlags(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One label set: its request count and three distributions. */
interface Series {
  readonly labels: IstioLabels;
  count: number;
  readonly duration: Distribution;
  readonly requestBytes: Distribution;
  readonly responseBytes: Distribution;
}

/**
 * A sample as prom-client's registry renders it. `sharedLabels` is rendered
 * after `labels` and its text is cached by the object's identity (prom-client's
 * own histograms use it so): a series' 25 labels are escaped and joined once,
 * not on every line of every scrape (a scrape of two series took ~2 ms of
 * formatting and its garbage, and stalled the proxy's requests meanwhile).
 */
type MetricValue = { labels: Readonly<Record<string, string | number>>; sharedLabels: Readonly<Record<string, string>>; value: number; metricName?: string };

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
/** The `le` label of each bucket, `+Inf` last: the same objects on every scrape. */
const LE_LABELS: readonly Readonly<Record<string, string | number>>[] = Object.freeze(
  [...ISTIO_BUCKETS, '+Inf'].map((le) => Object.freeze({ le })),
);

export class ServiceMetrics {
  readonly prefix: string;
  #tables: LabelTables | undefined;
  /** By label values: the series never go away (counters only grow). */
  readonly #series = new Map<string, Series>();
  /** By what a record names (cluster, upstream, status, …): a shortcut to its series. */
  readonly #cache = new Map<string, Series>();
  #recent: Recent[] = [];
  #nextRecent = 0;
  /** TCP connections' series, by label values. */
  readonly #tcp = new Map<string, TcpSeries>();

  readonly #registry: Registry;
  readonly #names: string[] = [];

  constructor(registry: Registry, opts: ServiceMetricsOptions = {}) {
    const p = (this.prefix = opts.prefix ?? 'trellis_');
    this.#registry = registry;
    // A metric as prom-client's registry renders it; `name` is read at render time (OpenMetrics drops a counter's `_total` meanwhile).
    const metric = (name: string, type: 'counter' | 'histogram', help: string, values: () => MetricValue[]) => {
      const m = { name, help, type, aggregator: 'sum', get: async () => ({ name: m.name, help, type, aggregator: 'sum', values: values() }) };
      registry.registerMetric(m as never);
      this.#names.push(name);
    };
    // A side that has a metric turned off shows none of its series in that family.
    const shown = <S extends { labels: Readonly<Record<string, string>> }>(all: Iterable<S>, bit: number) => [...all].filter((s) => !(this.#offFor(s.labels['reporter']!) & bit));
    metric(`${p}requests_total`, 'counter', 'Requests handled, counted by the proxy that reports (source or destination).', () =>
      shown(this.#series.values(), BIT.REQUEST_COUNT).map((s) => ({ labels: NO_LABELS, sharedLabels: s.labels, value: s.count })));
    const histogram = (name: string, help: string, bit: number, pick: (s: Series) => Distribution) =>
      metric(name, 'histogram', help, () => this.#histogramValues(name, shown(this.#series.values(), bit), pick));
    histogram(`${p}request_duration_milliseconds`, 'Request durations in milliseconds.', BIT.REQUEST_DURATION, (s) => s.duration);
    histogram(`${p}request_bytes`, 'Request body sizes in bytes.', BIT.REQUEST_SIZE, (s) => s.requestBytes);
    histogram(`${p}response_bytes`, 'Response body sizes in bytes.', BIT.RESPONSE_SIZE, (s) => s.responseBytes);
    const tcp = (name: string, help: string, bit: number, pick: (s: TcpSeries) => number) =>
      metric(`${p}${name}`, 'counter', help, () => shown(this.#tcp.values(), bit).map((s) => ({ labels: NO_LABELS, sharedLabels: s.labels, value: pick(s) })));
    tcp('tcp_sent_bytes_total', 'Bytes sent to the downstream on TCP connections.', BIT.TCP_SENT_BYTES, (s) => s.sent);
    tcp('tcp_received_bytes_total', 'Bytes received from the downstream on TCP connections.', BIT.TCP_RECEIVED_BYTES, (s) => s.received);
    tcp('tcp_connections_opened_total', 'TCP connections opened (counted when established; one that never was, when it ends).', BIT.TCP_OPENED_CONNECTIONS, (s) => s.opened);
    tcp('tcp_connections_closed_total', 'TCP connections closed.', BIT.TCP_CLOSED_CONNECTIONS, (s) => s.closed);
  }

  /** Takes these metrics out of the registry (the names change: another prefix). */
  unregister(): void {
    for (const n of this.#names) this.#registry.removeSingleMetric(n);
    this.#names.length = 0;
  }

  /** The label tables of the snapshot now in force (prepared when it was applied). */
  useTables(t: LabelTables): void {
    this.#tables = t;
    this.#cache.clear();
    this.#recent = [];
    this.#nextRecent = 0;
  }

  /** What the workload's Telemetry turns off (absent: everything on); true when any metric is still reported. */
  useSettings(m: WorkloadMetrics | undefined): boolean {
    this.#offClient = m ? bitsOf(m.disabled.client) : 0;
    this.#offServer = m ? bitsOf(m.disabled.server) : 0;
    return (this.#offClient & this.#offServer) !== (HTTP_BITS | TCP_BITS);
  }

  /** Metrics turned off on the client side (outbound, gateway: reporter=source) and the server side (inbound: reporter=destination). */
  #offClient = 0;
  #offServer = 0;

  #offFor(reporter: string): number {
    return reporter === 'destination' ? this.#offServer : this.#offClient;
  }

  observe(r: RequestRecord): void {
    const t = this.#tables;
    if (!t) return;
    const off = r.direction === 'inbound' ? this.#offServer : this.#offClient;
    if (r.protocol === 'TCP') { if ((off & TCP_BITS) !== TCP_BITS) this.#observeTcp(r, t, off); return; }
    if ((off & HTTP_BITS) === HTTP_BITS) return;
    const s = this.#seriesOf(r, t);
    if (!(off & BIT.REQUEST_COUNT)) s.count++;
    if (!(off & BIT.REQUEST_DURATION)) s.duration.observe(r.durationMs);
    if (!(off & BIT.REQUEST_SIZE)) s.requestBytes.observe(r.bytesReceived);
    if (!(off & BIT.RESPONSE_SIZE)) s.responseBytes.observe(r.bytesSent);
  }

  #seriesOf(r: RequestRecord, t: LabelTables): Series {
    const recent = this.#recent;
    for (let i = 0; i < recent.length; i++) {
      const c = recent[i]!;
      if (c.status === r.status && c.upstream === r.upstream && c.cluster === r.cluster && c.direction === r.direction &&
        c.sourceIdentity === r.sourceIdentity && c.destinationIdentity === r.destinationIdentity && sameFlags(c.flags, r.responseFlags) &&
        c.grpc === r.grpc && c.grpcStatus === r.grpcStatus && c.mtls === r.mtls && c.peerPrincipal === r.peerPrincipal) return c.series;
    }
    const series = this.#lookup(r, t);
    recent[this.#nextRecent] = {
      direction: r.direction, cluster: r.cluster, upstream: r.upstream, sourceIdentity: r.sourceIdentity, destinationIdentity: r.destinationIdentity,
      status: r.status, flags: [...r.responseFlags], grpc: r.grpc, grpcStatus: r.grpcStatus, mtls: r.mtls, peerPrincipal: r.peerPrincipal, series,
    };
    this.#nextRecent = (this.#nextRecent + 1) % RECENT_SLOTS;
    return series;
  }

  #lookup(r: RequestRecord, t: LabelTables): Series {
    const key = `${r.direction}\0${r.cluster}\0${r.upstream}\0${r.sourceIdentity}\0${r.destinationIdentity}\0${r.status}\0${r.responseFlags.join(',')}\0${r.grpc}\0${r.grpcStatus}\0${r.mtls}\0${r.peerPrincipal}`;
    let s = this.#cache.get(key);
    if (s) return s;
    const labels = istioLabels(r, t);
    const id = ISTIO_LABELS.map((n) => labels[n]).join('\0');
    s = this.#series.get(id);
    if (!s) {
      s = { labels, count: 0, duration: new Distribution(), requestBytes: new Distribution(), responseBytes: new Distribution() };
      this.#series.set(id, s);
    }
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(key, s);
    return s;
  }

  /**
   * Opaque TCP tunnels: an `open` record when a connection is established
   * (opened), its record when it ends (closed, and its bytes: Istio reports
   * bytes on an interval too; here they land at the end). A connection that
   * ended before it was established has only the last record: opened and
   * closed at once.
   */
  #observeTcp(r: RequestRecord, t: LabelTables, off: number): void {
    const all = istioLabels(r, t);
    const labels: Record<string, string> = {};
    for (const n of TCP_LABELS) labels[n] = n === 'request_protocol' ? 'tcp' : all[n];
    const id = TCP_LABELS.map((n) => labels[n]).join('\0');
    let s = this.#tcp.get(id);
    if (!s) this.#tcp.set(id, (s = { labels, opened: 0, closed: 0, sent: 0, received: 0 }));
    if (r.tcpPhase !== 'close' && !(off & BIT.TCP_OPENED_CONNECTIONS)) s.opened++;
    if (r.tcpPhase === 'open') return;
    if (!(off & BIT.TCP_CLOSED_CONNECTIONS)) s.closed++;
    if (!(off & BIT.TCP_SENT_BYTES)) s.sent += r.bytesSent;
    if (!(off & BIT.TCP_RECEIVED_BYTES)) s.received += r.bytesReceived;
  }

  /** prom-client's histogram shape: cumulative `_bucket` samples (`le` first), then `_sum` and `_count`. */
  #histogramValues(name: string, series: readonly Series[], pick: (s: Series) => Distribution): MetricValue[] {
    const out: MetricValue[] = [];
    const bucket = `${name}_bucket`;
    for (const s of series) {
      const d = pick(s);
      let cumulative = 0;
      for (let i = 0; i < ISTIO_BUCKETS.length; i++) {
        cumulative += d.counts[i]!;
        out.push({ labels: LE_LABELS[i]!, sharedLabels: s.labels, value: cumulative, metricName: bucket });
      }
      out.push({ labels: LE_LABELS[ISTIO_BUCKETS.length]!, sharedLabels: s.labels, value: d.count, metricName: bucket });
      out.push({ labels: NO_LABELS, sharedLabels: s.labels, value: d.sum, metricName: `${name}_sum` });
      out.push({ labels: NO_LABELS, sharedLabels: s.labels, value: d.count, metricName: `${name}_count` });
    }
    return out;
  }
}
