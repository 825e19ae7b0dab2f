/**
 * The export side of tracing, loaded only once a snapshot turns tracing on
 * (the OpenTelemetry SDK costs ~90 ms and ~20 MB to load): finished spans go
 * to the SDK's BatchSpanProcessor, which sends them in batches with the
 * OTLP/HTTP (JSON) exporter to the collector of the mesh settings.
 *
 * Nothing here can slow or fail a request: spans are built after the
 * request ended, the queue is bounded (`maxQueueSize` spans; more are
 * dropped and counted), at most two exports are in flight, each bounded by
 * the provider's timeout. The queue is counted here, before the processor's
 * own (equal) bound, so that what is queued and dropped can be reported.
 * A collector that fails gives one log line, not one per span or batch;
 * the next export that succeeds says so, with what was lost meanwhile.
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_NAMESPACE, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { RequestRecord } from '../protocol/request-record.js';
import type { TracingSettings } from '../protocol/snapshot.js';
import type { LabelTables, Peer } from './istio-labels.js';
import { spanOf } from './trace-spans.js';
import type { SpanPipeline, TraceCounts, TracingTuning } from './tracing.js';

type ExportResult = Parameters<Parameters<SpanExporter['export']>[1]>[0];

/** The exporter's message for an export refused because `concurrencyLimit` exports are in flight. */
const CONCURRENCY_LIMIT = 'Concurrent export limit reached';

/** How long close() waits for the last spans to go out. */
const CLOSE_WAIT_MS = 2_000;

/** The proxy as a resource: Istio's `service.name` (`<canonical service>.<namespace>`), namespace, revision, workload. */
function resourceOf(self: Peer, nodeId: string): Resource {
  return resourceFromAttributes({
    [ATTR_SERVICE_NAME]: `${self.canonicalService}.${self.namespace}`,
    [ATTR_SERVICE_NAMESPACE]: self.namespace,
    [ATTR_SERVICE_VERSION]: self.canonicalRevision,
    [ATTR_SERVICE_INSTANCE_ID]: nodeId,
    'trellis.workload': `${self.workload}.${self.namespace}`,
  });
}

class OtlpPipeline implements SpanPipeline {
  readonly #bsp: BatchSpanProcessor;
  readonly #maxQueue: number;
  #accepted = 0;
  #handed = 0;
  /** Set while the collector fails or the queue overflows, so that one episode logs one line. */
  #trouble = false;
  #droppedInEpisode = 0;
  /** Exports are numbered as they start: a failure of one older than the last success (answered late) begins no new episode. */
  #exports = 0;
  #lastOk = 0;
  #resource: Resource | undefined;
  #resourceOf: Peer | undefined;

  constructor(readonly settings: TracingSettings, tuning: Required<TracingTuning>, readonly counts: TraceCounts, readonly log: (line: string) => void) {
    this.#maxQueue = tuning.maxQueueSize;
    const otlp = new OTLPTraceExporter({ url: settings.endpoint, headers: { ...settings.headers }, timeoutMillis: settings.timeoutMs, concurrencyLimit: 2 });
    const exporter: SpanExporter = {
      export: (spans, done) => {
        this.#handed += spans.length;
        const seq = ++this.#exports;
        otlp.export(spans, (r) => { this.#exported(seq, spans.length, r); done(r); });
      },
      shutdown: () => otlp.shutdown(),
      forceFlush: () => otlp.forceFlush(),
    };
    this.#bsp = new BatchSpanProcessor(exporter, {
      maxQueueSize: tuning.maxQueueSize,
      maxExportBatchSize: Math.min(tuning.maxExportBatchSize, tuning.maxQueueSize),
      scheduledDelayMillis: tuning.scheduledDelayMs,
      exportTimeoutMillis: settings.timeoutMs + 1_000,
    });
  }

  get queued(): number {
    return this.#accepted - this.#handed;
  }

  add(r: RequestRecord, tables: LabelTables | undefined): void {
    if (this.queued >= this.#maxQueue) {
      this.counts.dropped++;
      this.#droppedInEpisode++;
      this.#troubled(`the span queue is full (${this.#maxQueue} spans): the collector at ${this.settings.endpoint} takes them slower than they come, or not at all; spans are dropped until it keeps up (logged once until then)`);
      return;
    }
    this.#accepted++;
    this.#bsp.onEnd(spanOf(r, this.settings, this.#resourceFor(r.proxy, tables), tables));
  }

  #resourceFor(nodeId: string, tables: LabelTables | undefined): Resource {
    const self = tables?.self;
    if (!this.#resource || self !== this.#resourceOf) {
      this.#resource = self ? resourceOf(self, nodeId) : resourceFromAttributes({ [ATTR_SERVICE_NAME]: nodeId, [ATTR_SERVICE_INSTANCE_ID]: nodeId });
      this.#resourceOf = self;
    }
    return this.#resource;
  }

  #exported(seq: number, n: number, r: ExportResult): void {
    if (r.code === 0 /* ExportResultCode.SUCCESS */) {
      this.counts.exported += n;
      this.#lastOk = Math.max(this.#lastOk, seq);
      if (this.#trouble) this.log(`tracing: exporting spans to ${this.settings.endpoint} again (${this.#droppedInEpisode} spans lost meanwhile)`);
      this.#trouble = false;
      this.#droppedInEpisode = 0;
      return;
    }
    this.counts.failed += n;
    if (seq < this.#lastOk) return;
    this.#droppedInEpisode += n;
    // Refused at once because two earlier exports are still out: those report the collector's trouble themselves (or their success).
    if (r.error?.message === CONCURRENCY_LIMIT) return;
    const why = r.error?.message || 'export failed';
    this.#troubled(`cannot export spans to ${this.settings.endpoint} (${why}); spans are dropped until it answers (logged once until then)`);
  }

  #troubled(line: string): void {
    if (this.#trouble) return;
    this.#trouble = true;
    this.log(`tracing: ${line}`);
  }

  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#bsp.shutdown().catch(() => undefined),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS); }),
    ]);
    clearTimeout(timer);
  }
}

export function createPipeline(settings: TracingSettings, tuning: Required<TracingTuning>, counts: TraceCounts, log: (line: string) => void): SpanPipeline {
  return new OtlpPipeline(settings, tuning, counts, log);
}
