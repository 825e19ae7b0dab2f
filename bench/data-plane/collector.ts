/**
 * The trace collector of the `mesh-observed` scenario: a node:http server on
 * 127.0.0.1, in the bench's own process, that takes OTLP/HTTP exports
 * (`POST /v1/traces`, the JSON encoding the sidecars send), counts the spans
 * and answers 200 with an empty ExportTraceServiceResponse. Nothing is kept:
 * it only has to be a collector that is up and quick, so that the sidecars pay
 * what exporting costs them and nothing more. The counts show that tracing
 * really was on.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Spans in one JSON ExportTraceServiceRequest; 0 for a body that is not one. */
function spansIn(body: string): number {
  try {
    const req = JSON.parse(body) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
    return (req.resourceSpans ?? []).reduce((n, rs) => n + (rs.scopeSpans ?? []).reduce((m, ss) => m + (ss.spans?.length ?? 0), 0), 0);
  } catch {
    return 0;
  }
}

export class Collector {
  readonly #server: Server;
  exports = 0;
  spans = 0;

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.exports++;
        this.spans += spansIn(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
  }

  /** Listens on a free port of 127.0.0.1; resolves with it. */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', resolve);
    });
    this.#server.unref();
    return (this.#server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
