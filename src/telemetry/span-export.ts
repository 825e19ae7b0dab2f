/**
 * The export side of tracing, loaded only once a snapshot turns tracing on
 * (the OpenTelemetry exporter costs ~90 ms and ~20 MB to load): sampled
 * records wait in a bounded queue and go out in batches, as spans, with the
 * OTLP/HTTP (JSON) exporter to the collector of the mesh settings.
 *
 * Spans are made when their batch goes out, not when their request ends:
 * one request in a hundred is sampled, so code run per sampled record runs
 * cold (its code and data evicted by the proxy's own work in between). In a
 * sidecar at max load, a span made when its request ended and handed to the
 * SDK's BatchSpanProcessor cost ~60 µs (wall time around the calls); queued
 * here, a record costs ~4 µs and its span ~4–9 µs, made in its batch's loop
 * (measured with the ids copied by slices; copying them as trace-spans.ts
 * does now costs ~2 µs more, cold).
 * (The exporter's own encoding, ~15–20 µs a span, is the same either way.)
 * Batches go as the SDK processor sends them: when `maxExportBatchSize`
 * spans wait, or when the first of them has waited `scheduledDelayMs`.
 *
 * Nothing here can slow or fail a request: spans are made after their
 * requests ended, the queue is bounded (`maxQueueSize` spans, and the
 * request text they hold: MAX_QUEUED_TEXT; more are dropped and counted),
 * at most two exports are in flight, each bounded by the provider's timeout
 * (and a guard a second longer, should the exporter never answer). A collector that fails gives one log line, not one per
 * span or batch; the next export that succeeds says so, with what was lost
 * meanwhile.
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_NAMESPACE, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { RequestRecord } from '../protocol/request-record.js';
import type { TracingSettings } from '../protocol/snapshot.js';
import type { LabelTables, Peer } from './istio-labels.js';
import { queuedRecord, requestText, spanOf } from './trace-spans.js';
import type { SpanPipeline, TraceCounts, TracingTuning } from './tracing.js';

type ExportResult = Parameters<Parameters<OTLPTraceExporter['export']>[1]>[0];

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

/** A sampled record waiting for its batch (queuedRecord), with what else its span is made of. */
interface Waiting {
  readonly r: RequestRecord;
  readonly tables: LabelTables | undefined;
  /** requestText(r) */
  readonly text: number;
}

/**
 * The request text (paths, authorities, request ids) waiting records may
 * hold together, in characters: 2048 records of ordinary requests hold well
 * under a megabyte, but heads near the limit (tens of KiB) while the
 * collector is down would hold far more than a sidecar's memory budget.
 */
const MAX_QUEUED_TEXT = 4 * 1024 * 1024;

/** At most this many exports in flight; a full batch waits for one to end. */
const IN_FLIGHT = 2;

class OtlpPipeline implements SpanPipeline {
  readonly #otlp: OTLPTraceExporter;
  readonly #maxQueue: number;
  readonly #batchSize: number;
  readonly #delayMs: number;
  readonly #guardMs: number;
  #waiting: Waiting[] = [];
  /** The request text the waiting records hold (MAX_QUEUED_TEXT). */
  #text = 0;
  /** Set while the oldest waiting record has a batch timer running. */
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  /** Resolved when no export is in flight (close waits on it). */
  #idle: (() => void) | undefined;
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
    this.#batchSize = Math.max(1, Math.min(tuning.maxExportBatchSize, tuning.maxQueueSize));
    this.#delayMs = tuning.scheduledDelayMs;
    this.#guardMs = settings.timeoutMs + 1_000;
    this.#otlp = new OTLPTraceExporter({ url: settings.endpoint, headers: { ...settings.headers }, timeoutMillis: settings.timeoutMs, concurrencyLimit: IN_FLIGHT });
  }

  get queued(): number {
    return this.#waiting.length;
  }

  add(r: RequestRecord, tables: LabelTables | undefined): void {
    const text = requestText(r);
    if (this.#waiting.length >= this.#maxQueue || this.#text + text > MAX_QUEUED_TEXT) {
      this.counts.dropped++;
      this.#droppedInEpisode++;
      this.#troubled(`the span queue is full (${this.#maxQueue} spans, or ${MAX_QUEUED_TEXT >> 20} Mi characters of request text): the collector at ${this.settings.endpoint} takes them slower than they come, or not at all; spans are dropped until it keeps up (logged once until then)`);
      return;
    }
    this.#text += text;
    this.#waiting.push({ r: queuedRecord(r), tables, text });
    if (this.#waiting.length >= this.#batchSize) this.#send(false);
    else this.#timer ??= setTimeout(this.#due, this.#delayMs).unref();
  }

  #due = (): void => {
    this.#timer = undefined;
    this.#send(true);
  };

  /** Sends full batches while exports may start, and with `due` a partial one; a timer runs for what still waits. */
  #send(due: boolean): void {
    while (this.#inFlight < IN_FLIGHT && (this.#waiting.length >= this.#batchSize || (due && this.#waiting.length > 0))) {
      due = false;
      this.#export(this.#waiting.splice(0, this.#batchSize));
    }
    if (this.#waiting.length > 0 && this.#timer === undefined && this.#inFlight < IN_FLIGHT) this.#timer = setTimeout(this.#due, this.#delayMs).unref();
  }

  /** One export of a batch: its spans made here, in one loop. */
  #export(batch: readonly Waiting[]): void {
    const spans: ReadableSpan[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i]!;
      this.#text -= w.text;
      spans[i] = spanOf(w.r, this.settings, this.#resourceFor(w.r.proxy, w.tables), w.tables);
    }
    const seq = ++this.#exports;
    this.#inFlight++;
    let settled = false;
    const settle = (r: ExportResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      this.#inFlight--;
      this.#exported(seq, spans.length, r);
      if (this.#inFlight === 0) this.#idle?.();
      this.#send(false);
    };
    // The exporter answers within its own timeout; should it never, the batch counts as failed a second later.
    const guard = setTimeout(() => settle({ code: 1, error: new Error(`no answer within ${this.#guardMs} ms`) }), this.#guardMs).unref();
    try {
      this.#otlp.export(spans, settle);
    } catch (err) {
      settle({ code: 1, error: err as Error });
    }
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

  /** Sends what waits and shuts the exporter down, in CLOSE_WAIT_MS at most. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#flushAll().catch(() => undefined),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS); }),
    ]);
    clearTimeout(timer);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting = [];
    this.#text = 0;
  }

  async #flushAll(): Promise<void> {
    while (this.#waiting.length > 0 || this.#inFlight > 0) {
      this.#send(true);
      if (this.#inFlight === 0) break;
      await new Promise<void>((resolve) => { this.#idle = resolve; });
      this.#idle = undefined;
    }
    await this.#otlp.shutdown();
  }
}

export function createPipeline(settings: TracingSettings, tuning: Required<TracingTuning>, counts: TraceCounts, log: (line: string) => void): SpanPipeline {
  return new OtlpPipeline(settings, tuning, counts, log);
}
