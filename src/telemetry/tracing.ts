/**
 * Distributed tracing for one proxy: one span per sampled request record,
 * exported over OTLP/HTTP. The proxy decides the trace context on the
 * request path (src/proxy/trace-context.ts) and puts the ids in the record;
 * this subscriber only hands sampled records to the exporter, which makes
 * their spans when it sends them, a batch at a time. Records of unsampled
 * requests cost one property check.
 *
 * The exporter (span-export.ts) is loaded when the first snapshot with
 * tracing on arrives; the sampled records of the moments until it is ready
 * wait in a queue with the same bound as the exporter's. Settings come from
 * the snapshot's mesh settings (`mesh.tracing`, MeshConfig's OpenTelemetry
 * extension provider); a change of settings replaces the Tracing, the old
 * one flushes what it holds.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RequestRecord } from '../protocol/request-record.js';
import type { TracingSettings } from '../protocol/snapshot.js';
import type { LabelTables } from './istio-labels.js';

/** Batching knobs; tests make them small. */
export interface TracingTuning {
  /** Spans held for export at most; more are dropped (counted). 2048 by default (the SDK's). */
  readonly maxQueueSize?: number;
  /** Spans per export request, 512 by default. */
  readonly maxExportBatchSize?: number;
  /** How long a span may wait for its batch to fill, 1000 ms by default. */
  readonly scheduledDelayMs?: number;
}

export const DEFAULT_TUNING: Required<TracingTuning> = Object.freeze({ maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 1000 });

/** Spans by outcome, over the proxy's life (shared by the Tracing instances that follow each other). */
export interface TraceCounts {
  exported: number;
  /** Sent, and the collector failed or did not answer in time. */
  failed: number;
  /** Never sent: the queue was full. */
  dropped: number;
}

/** What span-export.ts provides once loaded. */
export interface SpanPipeline {
  readonly queued: number;
  add(r: RequestRecord, tables: LabelTables | undefined): void;
  close(): Promise<void>;
}

export class Tracing {
  readonly #tuning: Required<TracingTuning>;
  #pipeline: SpanPipeline | undefined;
  #early: RequestRecord[] | undefined = [];
  #tables: LabelTables | undefined;
  #closed = false;
  /** Resolves when the exporter is loaded (or could not be). */
  readonly ready: Promise<void>;

  constructor(readonly settings: TracingSettings, tuning: TracingTuning, readonly counts: TraceCounts, log: (line: string) => void) {
    this.#tuning = { ...DEFAULT_TUNING, ...tuning };
    this.ready = import('./span-export.js').then((m) => {
      if (this.#closed) return;
      const p = (this.#pipeline = m.createPipeline(settings, this.#tuning, counts, log));
      for (const r of this.#early ?? []) p.add(r, this.#tables);
      this.#early = undefined;
    }, (err: Error) => {
      this.#early = undefined;
      log(`tracing: cannot load the OpenTelemetry exporter (${err.message}); no spans are exported`);
    });
  }

  useTables(t: LabelTables): void {
    this.#tables = t;
  }

  record(r: RequestRecord): void {
    if (r.sampled !== true || r.traceId === undefined) return;
    if (this.#pipeline) { this.#pipeline.add(r, this.#tables); return; }
    if (this.#early && this.#early.length < this.#tuning.maxQueueSize) this.#early.push(r);
    else this.counts.dropped++;
  }

  /** Spans waiting for export. */
  get queued(): number {
    return this.#pipeline?.queued ?? this.#early?.length ?? 0;
  }

  /** Sends what is queued (bounded in time) and stops. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.ready;
    await this.#pipeline?.close();
  }
}

/** `trellis_proxy_trace_spans_total{outcome}` and `trellis_proxy_trace_queue_spans`, read from the counts at each scrape. */
export function registerTraceMetrics(registry: Registry, counts: TraceCounts, queued: () => number): void {
  const registers = [registry];
  new Counter({
    name: 'trellis_proxy_trace_spans_total', help: 'Spans by outcome: exported, failed (the collector refused or did not answer), dropped (the queue was full).',
    labelNames: ['outcome'], registers,
    collect() {
      this.reset();
      this.inc({ outcome: 'exported' }, counts.exported);
      this.inc({ outcome: 'failed' }, counts.failed);
      this.inc({ outcome: 'dropped' }, counts.dropped);
    },
  });
  new Gauge({ name: 'trellis_proxy_trace_queue_spans', help: 'Spans waiting for export.', registers, collect() { this.set(queued()); } });
}
