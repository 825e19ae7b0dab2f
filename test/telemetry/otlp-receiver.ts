/**
 * A real OTLP/HTTP traces receiver for tests: a node:http server on
 * 127.0.0.1 that takes `POST /v1/traces` with the JSON encoding of
 * ExportTraceServiceRequest (what @opentelemetry/exporter-trace-otlp-http
 * sends), decodes every span with its resource, and answers 200 with an
 * empty ExportTraceServiceResponse — or, in `hang` mode, reads the request
 * and never answers (a collector that is up but stuck).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

/** One decoded span. `kind` is OTLP's: 2 server, 3 client. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly status: number;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly resource: Readonly<Record<string, string | number | boolean>>;
  readonly scope: string;
}

const valueOf = (v: AnyValue): string | number | boolean =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? '';

const attrs = (list: readonly KeyValue[] | undefined): Record<string, string | number | boolean> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, valueOf(kv.value)]));

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { scope?: { name?: string }; spans?: {
      traceId: string; spanId: string; parentSpanId?: string; name: string; kind?: number;
      startTimeUnixNano: string | number; endTimeUnixNano: string | number; attributes?: KeyValue[]; status?: { code?: number };
    }[] }[];
  }[];
}

/** Decodes one JSON ExportTraceServiceRequest. */
export function decodeTraces(body: string): ReceivedSpan[] {
  const req = JSON.parse(body) as ExportRequest;
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, kind: s.kind ?? 0,
          startNs: BigInt(s.startTimeUnixNano), endNs: BigInt(s.endTimeUnixNano), status: s.status?.code ?? 0,
          attributes: attrs(s.attributes), resource, scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received (answered or not). */
  requests = 0;
  /** Spans in each export request, in the order they came. */
  readonly batches: number[] = [];
  mode: 'ok' | 'hang' = 'ok';
  /** Content types the exporter sent. */
  readonly contentTypes = new Set<string>();
  readonly #server: Server;
  #port = 0;

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.#port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  get port(): number {
    return this.#port;
  }

  /** Spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests++;
      this.contentTypes.add(String(req.headers['content-type']));
      if (req.method !== 'POST' || req.url !== '/v1/traces') { res.writeHead(404).end(); return; }
      const spans = decodeTraces(Buffer.concat(chunks).toString('utf8'));
      this.batches.push(spans.length);
      this.spans.push(...spans);
      if (this.mode === 'hang') return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  }

  close(): Promise<void> {
    return new Promise((r) => { this.#server.closeAllConnections(); this.#server.close(() => r()); });
  }
}
