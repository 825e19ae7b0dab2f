/**
 * The request body as the forwarder sends it: nothing, a Buffer (a small
 * body read in full first so that a retry can send it again), or a stream
 * that passes each chunk on as it arrives (never buffered whole) and counts
 * the bytes for the request record. When the route retries, a streamed body
 * (chunked, HTTP/2 and gRPC, `expect: 100-continue`) also keeps a copy of
 * what passed, up to REPLAY_LIMIT, as Envoy buffers for retries: a retry
 * sends the copy once the body ended within it (`replayOf`); a body that
 * streamed beyond it, or that had not ended, is not retried.
 *
 * Also the limits on a request on its way upstream (limits.ts), armed here,
 * when its body is about to be read: the body size (413), the stream idle
 * timeout (SI: HTTP/1.1 through its socket's timeout, http-server.ts;
 * HTTP/2 through its stream's) and the request timeout (DT). A request that
 * crosses one has its upstream attempt abandoned (the upstream sees a reset,
 * never a complete request) and gets the proxy's answer, or a cut stream once
 * its response has begun (`endForLimit`).
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { PROXY_ERRORS, type ErrorKind } from './errors.js';
import type { Exchange } from './exchange.js';
import { limitsOf } from './limits.js';
import { replyFor, sendLocalReply } from './local-reply.js';

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

/** Whether the whole request has arrived (HTTP/2: its body has been read to the end, or it had none). */
export function requestReceived(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 ? req.readableEnded || !hasBody(req) : req.complete;
}

const CLOSE = Object.freeze({ connection: 'close' });

/**
 * Ends an exchange in flight because it crossed a limit or broke the
 * protocol: the upstream attempt is abandoned and the caller gets the answer
 * of `kind` (HTTP/1.1: with `connection: close`, the rest of its body is not
 * awaited), or a cut stream once its response has begun.
 */
export function endForLimit(ex: Exchange, kind: ErrorKind, detail: string): void {
  if (ex.closed) return;
  ex.cancel?.();
  sendLocalReply(ex, ex.http2 ? replyFor(kind, detail) : { ...replyFor(kind, detail), headers: CLOSE });
}

/** A stream idle timeout on an exchange in flight: 408 while its request arrives, 504 while it waits on the upstream. */
export function streamIdle(ex: Exchange): void {
  const ms = limitsOf(ex.req).streamIdleTimeoutMs;
  if (requestReceived(ex.req)) endForLimit(ex, PROXY_ERRORS.STREAM_IDLE_UPSTREAM, `no bytes from the upstream for ${ms} ms`);
  else endForLimit(ex, PROXY_ERRORS.STREAM_IDLE_DOWNSTREAM, `no bytes either way for ${ms} ms while the request was arriving`);
}

function requestTimedOut(ex: Exchange): void {
  if (ex.closed || ex.res.headersSent || requestReceived(ex.req)) return;
  endForLimit(ex, PROXY_ERRORS.REQUEST_TIMEOUT, `the request did not arrive in full within ${limitsOf(ex.req).requestTimeoutMs} ms`);
}

/**
 * The listeners' HTTP/1.1 response: it knows the exchange forwarding it, which
 * the socket's timeout and the parser's errors act on (http-server.ts). A
 * field of its own, so linking costs no allocation, and the link goes with
 * the response.
 */
export class ProxyResponse extends ServerResponse {
  exchange: Exchange | undefined = undefined;
}

/** The exchange being forwarded on an HTTP/1.1 connection, if one is (Node's response in flight: its `_httpMessage`). */
export function exchangeOn(socket: Socket): Exchange | undefined {
  const res = (socket as { _httpMessage?: unknown })._httpMessage;
  const ex = res instanceof ProxyResponse ? res.exchange : undefined;
  return ex && !ex.closed ? ex : undefined;
}

/** Arms the timeouts of a request about to go upstream. */
function guard(ex: Exchange, body: boolean): void {
  const limits = limitsOf(ex.req);
  const stream = ex.h2Stream;
  if (stream) {
    if (limits.streamIdleTimeoutMs > 0) stream.setTimeout(limits.streamIdleTimeoutMs, () => streamIdle(ex));
  } else if ('exchange' in ex.res) {
    // The socket's timeout is the stream idle timeout while a request is in flight (http-server.ts, fast-h1.ts); it finds the exchange here.
    (ex.res as { exchange: Exchange | undefined }).exchange = ex;
  }
  if (body && limits.requestTimeoutMs > 0) {
    const timer = setTimeout(requestTimedOut, Math.max(1, limits.requestTimeoutMs - ex.durationMs), ex);
    const clear = () => clearTimeout(timer);
    ex.req.once('end', clear);
    ex.res.once('close', clear);
  }
}

export class BodyTap extends Transform {
  #over = false;
  /** What passed so far while it fits REPLAY_LIMIT; undefined once it did not (or when no copy is wanted). */
  #kept: Buffer[] | undefined;
  #keptBytes = 0;
  #ended = false;
  #replay: Buffer | undefined;
  constructor(readonly ex: Exchange, readonly max: number, keep = false) {
    super();
    this.#kept = keep ? [] : undefined;
  }

  /** Whether a copy is still kept (the body may yet be sent again). */
  get replayable(): boolean {
    return this.#kept !== undefined;
  }

  /** The whole body when it ended within REPLAY_LIMIT with a copy kept; undefined otherwise. */
  replay(): Buffer | undefined {
    if (!this.#ended || !this.#kept) return undefined;
    return (this.#replay ??= this.#kept.length === 1 ? this.#kept[0]! : Buffer.concat(this.#kept, this.#keptBytes));
  }

  override _flush(cb: TransformCallback): void {
    this.#ended = true;
    cb();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const kept = this.#kept;
    if (kept) {
      if (this.#keptBytes + chunk.length <= REPLAY_LIMIT) { kept.push(chunk); this.#keptBytes += chunk.length; }
      else { this.#kept = undefined; this.#keptBytes = 0; }
    }
    const n = this.ex.bytesReceived + chunk.length;
    if (this.max > 0 && n > this.max) {
      // The chunk that crosses the limit is not passed on; nothing after it either.
      if (!this.#over) {
        this.#over = true;
        endForLimit(this.ex, PROXY_ERRORS.BODY_TOO_LARGE, `the body passed the limit of ${this.max} bytes`);
      }
      cb();
      return;
    }
    this.ex.bytesReceived = n;
    cb(null, chunk);
  }
}

/**
 * Calls `use` with the body to send. With `replayable` wanted, a body with a
 * content-length up to REPLAY_LIMIT (and no `expect: 100-continue`) is read
 * first; any other body streams. `use` is not called if the downstream goes
 * away while a body is read, nor when a content-length over the body limit
 * was answered 413.
 */
export function withRequestBody(ex: Exchange, replayable: boolean, use: (body: RequestBody) => void): void {
  const req = ex.req;
  if (!hasBody(req)) { guard(ex, false); use(null); return; }
  const max = limitsOf(req).maxRequestBodyBytes;
  const cl = req.headers['content-length'];
  if (max > 0 && cl !== undefined && Number(cl) > max) {
    endForLimit(ex, PROXY_ERRORS.BODY_TOO_LARGE, `content-length ${cl} is over the limit of ${max} bytes`);
    return;
  }
  guard(ex, true);
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
  // A copy is kept for retries unless the content-length says the body cannot fit.
  const tap = new BodyTap(ex, max, replayable && !(cl !== undefined && Number(cl) > REPLAY_LIMIT));
  req.pipe(tap);
  use(tap);
}

/**
 * The body to send again on a retry: null (none), the Buffer, a streamed
 * body's copy once it ended within REPLAY_LIMIT; undefined when it cannot
 * be sent again.
 */
export function replayOf(body: RequestBody): Buffer | null | undefined {
  if (body === null || Buffer.isBuffer(body)) return body;
  return body instanceof BodyTap ? body.replay() : undefined;
}

/** Whether a body may still be sent again (it may not have ended yet). */
export function mayReplay(body: RequestBody): boolean {
  return body === null || Buffer.isBuffer(body) || (body instanceof BodyTap && body.replayable);
}

