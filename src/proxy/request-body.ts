/**
 * The request body as the forwarder sends it: nothing, a Buffer (a small
 * body read in full first so that a retry can send it again), or a stream
 * that passes each chunk on as it arrives (never buffered whole) and counts
 * the bytes for the request record.
 */
import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { Exchange } from './exchange.js';

/** The largest body read into memory to make a request retriable (Envoy's per-request buffer limit is similar). */
export const REPLAY_LIMIT = 64 * 1024;

export type RequestBody = Buffer | Transform | null;

export function hasBody(req: IncomingMessage): boolean {
  // HTTP/2: a body unless the request's HEADERS ended the stream (gRPC sends no content-length).
  if (req.httpVersionMajor === 2) return !(req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const cl = req.headers['content-length'];
  return cl !== undefined && cl !== '0';
}

class BodyTap extends Transform {
  constructor(readonly ex: Exchange) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.ex.bytesReceived += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Calls `use` with the body to send. With `replayable` wanted, a body with a
 * content-length up to REPLAY_LIMIT (and no `expect: 100-continue`) is read
 * first; any other body streams. `use` is not called if the downstream goes
 * away while a body is read.
 */
export function withRequestBody(ex: Exchange, replayable: boolean, use: (body: RequestBody) => void): void {
  const req = ex.req;
  if (!hasBody(req)) { use(null); return; }
  const cl = req.headers['content-length'];
  if (replayable && cl !== undefined && req.headers['transfer-encoding'] === undefined && req.headers.expect === undefined && Number(cl) <= REPLAY_LIMIT) {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => { chunks.push(c); n += c.length; });
    req.once('end', () => {
      ex.bytesReceived = n;
      if (!ex.closed) use(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n));
    });
    return;
  }
  const tap = new BodyTap(ex);
  req.pipe(tap);
  use(tap);
}
