/**
 * What one data plane's telemetry is: a prom-client registry (the proxy's
 * own metrics register there too), Istio's service metrics and the access
 * log, both fed by the request records of this proxy. Label tables are
 * prepared when a snapshot is applied; the records channel is subscribed only
 * while a snapshot is in force and something (metrics or the access log) is
 * on, so a proxy with both off builds no records at all.
 *
 * Where the access log settings come from, first found wins: the options
 * given; the Telemetry resource that decides for this workload (the
 * snapshot's `accessLogging`: file, format, sides and filters); MeshConfig
 * (`accessLogFile`, `accessLogEncoding`, `accessLogFormat` in the snapshot's
 * mesh settings); the environment (`telemetryOptionsFromEnv`, as
 * `defaultAccessLog`, shaped by MeshConfig's format when it has one).
 *
 * Tracing (tracing.ts) is on while the snapshot's mesh settings carry
 * `tracing`; it subscribes the same way and only then loads the exporter.
 */
import { Counter, Registry } from 'prom-client';
import type { RequestRecord } from '../protocol/request-record.js';
import type { MeshSettings, Snapshot, WorkloadAccessLogging } from '../protocol/snapshot.js';
import { AccessLog, type AccessLogOptions } from './access-log.js';
import { render, type Exposition } from './exposition.js';
import { prepareLabelTables } from './istio-labels.js';
import { attachSink } from './record-hub.js';
import { ServiceMetrics } from './service-metrics.js';
import { registerTraceMetrics, Tracing, type TraceCounts, type TracingTuning } from './tracing.js';

export interface TelemetryOptions {
  /** Istio's service metrics (requests_total, durations, sizes); on by default. */
  readonly metrics?: boolean;
  /**
   * `trellis_` or `istio_` (Istio-compatible names, for Istio's dashboards as
   * they are); absent: what MeshConfig asks for (the snapshot's
   * `mesh.metricsPrefix`), else `trellis_`.
   */
  readonly metricsPrefix?: string;
  /** The access log; absent: from MeshConfig, else `defaultAccessLog`, else off. `{ file: '' }` turns it off whatever MeshConfig says. */
  readonly accessLog?: AccessLogOptions;
  /** The access log when neither `accessLog` nor MeshConfig names one (the environment's, see telemetryOptionsFromEnv). */
  readonly defaultAccessLog?: AccessLogOptions;
  /** `source_cluster` / `destination_cluster`; `Kubernetes` (Istio's default cluster id) by default. */
  readonly clusterName?: string;
  /** Batching of trace export (queue bound, batch size, delay); the SDK's defaults otherwise. */
  readonly tracing?: TracingTuning;
  /** Lines for the proxy's log (the trace collector failing); stderr by default. */
  readonly log?: (line: string) => void;
}

/** The mesh settings telemetry reads (MeshConfig's access-log fields, carried in the snapshot). */
type MeshTelemetrySettings = Pick<MeshSettings, 'accessLogFile' | 'accessLogEncoding' | 'accessLogFormat'>;

/**
 * Options from the environment, for processes started without flags for them
 * (`trellis up` passes its environment to the proxies):
 * `TRELLIS_METRICS_PREFIX` (`istio_`), `TRELLIS_METRICS` (`off`: no service
 * metrics), `TRELLIS_ACCESS_LOG_FILE`,
 * `TRELLIS_ACCESS_LOG_ENCODING` (JSON | TEXT), `TRELLIS_ACCESS_LOG_FILTER` (all | errors).
 */
export function telemetryOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): TelemetryOptions {
  const file = env['TRELLIS_ACCESS_LOG_FILE'];
  const encoding = env['TRELLIS_ACCESS_LOG_ENCODING']?.toUpperCase() === 'TEXT' ? 'TEXT' : 'JSON';
  const filter = env['TRELLIS_ACCESS_LOG_FILTER'] === 'errors' ? 'errors' : 'all';
  const metrics = env['TRELLIS_METRICS'];
  if (metrics !== undefined && metrics !== 'on' && metrics !== 'off') process.emitWarning(`TRELLIS_METRICS="${metrics}" is neither "on" nor "off": service metrics stay on`);
  return {
    ...(metrics === 'off' ? { metrics: false } : {}),
    ...(env['TRELLIS_METRICS_PREFIX'] ? { metricsPrefix: env['TRELLIS_METRICS_PREFIX'] } : {}),
    ...(file !== undefined ? { defaultAccessLog: { file, encoding, filter } } : {}),
  };
}

const sameLog = (a: AccessLogOptions | undefined, b: AccessLogOptions | undefined) =>
  (a?.file ?? '') === (b?.file ?? '') && (a?.encoding ?? 'JSON') === (b?.encoding ?? 'JSON') && (a?.filter ?? 'all') === (b?.filter ?? 'all') &&
  (a?.format === b?.format || JSON.stringify(a?.format) === JSON.stringify(b?.format)) &&
  (a?.directions === b?.directions || JSON.stringify(a?.directions) === JSON.stringify(b?.directions));

export class ProxyTelemetry {
  /** The proxy's registry: service metrics and whatever the proxy registers. */
  readonly registry = new Registry();
  #metrics: ServiceMetrics | undefined;
  /** Some service metric is reported on some side (the workload's Telemetry may turn them all off). */
  #metricsOn = false;
  readonly #clusterName: string;
  #accessLog: AccessLog | undefined;
  #closingLogs: Promise<void>[] = [];
  #detach: (() => void) | undefined;
  #nodeId: string | undefined;
  #tracing: Tracing | undefined;
  readonly #traceCounts: TraceCounts = { exported: 0, failed: 0, dropped: 0 };
  #traceMetrics = false;
  #closing: Promise<void>[] = [];
  #closed = false;
  #warned = false;
  /** Records a part of telemetry failed on (a bug of ours): each part's failure counted once per record. */
  readonly #droppedRecords = new Counter({
    name: 'trellis_proxy_telemetry_dropped_total',
    help: 'Request records a part of telemetry (metrics, access_log, tracing) failed on and did not account for: a bug to report; the first failure is also logged.',
    labelNames: ['part'], registers: [this.registry],
  });

  constructor(readonly options: TelemetryOptions = {}) {
    if (options.metrics !== false) this.#metrics = new ServiceMetrics(this.registry, { prefix: options.metricsPrefix ?? 'trellis_' });
    this.#clusterName = options.clusterName ?? 'Kubernetes';
  }

  /** Called by the data plane with each snapshot it applies. */
  snapshotApplied(s: Snapshot): void {
    if (this.#closed) return;
    // The records so far go where the settings they ended under sent them.
    this.#drain();
    this.#configureMetrics(s.mesh);
    this.#configureAccessLog(s.mesh, s.accessLogging);
    this.#configureTracing(s.mesh.tracing, s.node.id);
    // Telemetry resources may turn every service metric off: then records are published only for the access log and tracing.
    this.#metricsOn = this.#metrics?.useSettings(s.metrics) ?? false;
    const wanted = this.#metricsOn || this.#accessLog !== undefined || this.#tracing !== undefined;
    if (wanted) {
      const tables = prepareLabelTables(s, this.#clusterName);
      this.#metrics?.useTables(tables);
      this.#accessLog?.useTables(tables);
      this.#tracing?.useTables(tables);
    }
    if (!wanted || this.#nodeId !== s.node.id) { this.#detach?.(); this.#detach = undefined; }
    if (wanted && !this.#detach) this.#detach = attachSink(s.node.id, this.#sink);
    this.#nodeId = s.node.id;
  }

  /** A snapshot whose MeshConfig asks for other names than those in use: the service metrics start again under them. */
  #configureMetrics(mesh: Pick<MeshSettings, 'metricsPrefix'>): void {
    const cur = this.#metrics;
    if (!cur) return;
    const prefix = this.options.metricsPrefix ?? mesh.metricsPrefix ?? 'trellis_';
    if (cur.prefix === prefix) return;
    cur.unregister();
    this.#metrics = new ServiceMetrics(this.registry, { prefix });
  }

  #configureAccessLog(mesh: MeshTelemetrySettings, telemetry: WorkloadAccessLogging | undefined): void {
    // MeshConfig's format also shapes a log the environment turned on (`trellis up` with TRELLIS_ACCESS_LOG_FILE).
    const format = mesh.accessLogFormat ? { format: mesh.accessLogFormat, encoding: mesh.accessLogEncoding ?? 'JSON' } : {};
    const fromMesh: AccessLogOptions | undefined = mesh.accessLogFile !== undefined
      ? { file: mesh.accessLogFile, encoding: mesh.accessLogEncoding ?? 'JSON', ...format }
      : undefined;
    const fromEnv = this.options.defaultAccessLog && { ...this.options.defaultAccessLog, ...format };
    const want = this.options.accessLog ?? (telemetry ? this.#fromTelemetry(telemetry) : fromMesh ?? fromEnv);
    const next = want && want.file !== '' ? want : undefined;
    if (sameLog(this.#accessLog?.options, next)) return;
    if (this.#accessLog) this.#closingLogs.push(this.#accessLog.close());
    this.#accessLog = next ? new AccessLog(next) : undefined;
  }

  /**
   * A Telemetry resource's access log: its file (Istio's `envoy` provider
   * without MeshConfig's file: the environment's log, else /dev/stdout), its
   * format, and the sides and filters it logs (the environment's `errors`
   * filter does not apply then).
   */
  #fromTelemetry(t: WorkloadAccessLogging): AccessLogOptions {
    const env = this.options.defaultAccessLog;
    return {
      file: t.file ?? env?.file ?? '/dev/stdout',
      encoding: t.encoding ?? (t.file === undefined ? env?.encoding : undefined) ?? 'JSON',
      ...(t.format ? { format: t.format } : {}),
      directions: t.directions,
    };
  }

  #configureTracing(settings: MeshSettings['tracing'], nodeId: string): void {
    const cur = this.#tracing;
    if (cur && settings && (cur.settings === settings || JSON.stringify(cur.settings) === JSON.stringify(settings))) return;
    if (cur) this.#closing.push(cur.close());
    this.#tracing = undefined;
    if (!settings) return;
    const log = this.options.log ?? ((line: string) => { process.stderr.write(`${new Date().toISOString()} proxy ${nodeId} ${line}\n`); });
    this.#tracing = new Tracing(settings, this.options.tracing ?? {}, this.#traceCounts, log);
    if (!this.#traceMetrics) {
      this.#traceMetrics = true;
      registerTraceMetrics(this.registry, this.#traceCounts, () => this.#tracing?.queued ?? 0);
    }
  }

  /**
   * Records are taken as they are published and handled in batches, once per
   * turn of the event loop (setImmediate): metrics for all of them, then the
   * access log for all, then tracing. A sidecar ends several requests per
   * turn under load, and between two of them runs the whole proxy (TLS,
   * parsing, the kernel): code run once per request runs with cold caches
   * (a live profile charged the access log 3–4 times what the same lines
   * cost in a loop). Whatever reads what the records feed (a scrape, a new
   * snapshot, close) drains first, so nothing observes the delay.
   */
  #pending: RequestRecord[] = [];
  #spare: RequestRecord[] = [];
  #scheduled = false;

  #sink = (r: RequestRecord): void => {
    this.#pending.push(r);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#drain);
  };

  /** Handles the records taken so far. */
  #drain = (): void => {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = this.#spare;
    // Telemetry must never take the proxy down, nor one bad record the others' lines.
    const metrics = this.#metricsOn ? this.#metrics : undefined;
    if (metrics) for (let i = 0; i < batch.length; i++) try { metrics.observe(batch[i]!); } catch (err) { this.#dropped('metrics', err); }
    // A TCP connection's opening is for the opened counter only; its record at the end is the one logged and traced.
    const log = this.#accessLog;
    if (log) for (let i = 0; i < batch.length; i++) try { if (batch[i]!.tcpPhase !== 'open') log.log(batch[i]!); } catch (err) { this.#dropped('access_log', err); }
    const tracing = this.#tracing;
    if (tracing) for (let i = 0; i < batch.length; i++) try { if (batch[i]!.tcpPhase !== 'open') tracing.record(batch[i]!); } catch (err) { this.#dropped('tracing', err); }
    batch.length = 0;
    this.#spare = batch;
  };

  #dropped(part: 'metrics' | 'access_log' | 'tracing', err: unknown): void {
    this.#droppedRecords.inc({ part });
    if (!this.#warned) process.emitWarning(`telemetry (${part}) dropped a request record: ${(err as Error)?.message ?? err}`);
    this.#warned = true;
  }

  /** The proxy's /metrics: this registry and the process's, as the Accept header asks; `filter`: only the families it matches by name. */
  render(accept: string | undefined, filter?: RegExp): Promise<Exposition> {
    this.#drain();
    return render([this.registry], accept, filter);
  }

  /** Stops listening for records, flushes the access log and sends the spans still queued (bounded in time). */
  async close(): Promise<void> {
    this.#drain();
    this.#closed = true;
    this.#detach?.();
    this.#detach = undefined;
    const log = this.#accessLog;
    this.#accessLog = undefined;
    const tracing = this.#tracing;
    this.#tracing = undefined;
    await Promise.all([...this.#closingLogs, ...this.#closing, log?.close(), tracing?.close()]);
  }
}
