/**
 * An upstream spoken to over HTTP/2: one multiplexed `http2.connect` session
 * per endpoint, opened on first use and again after a GOAWAY, an error or a
 * close; h2c, or over TLS (ALPN h2) when the cluster has a connector
 * (tls/upstream-connector.ts), each new session with the certificate in
 * force then. It offers the forwarder the same `dispatch(options, handler)` seam
 * as undici's pools, calling the handler back as the response arrives, so
 * the forwarder (retries, timeouts, records) does not care which protocol
 * carries an attempt. Bodies are piped both ways: a paused handler pauses
 * the HTTP/2 stream, whose flow-control window then closes on the peer.
 *
 * A trailers-only response (HEADERS with END_STREAM, as gRPC errors are
 * sent) reaches the handler as headers (`TRAILERS_ONLY` names the few that
 * lead the response) followed by trailers, which downstream is the same gRPC
 * response in its long form.
 */
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { upstreamTlsError } from './tls/identity.js';
import type { UpstreamConnector } from './tls/upstream-connector.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = constants;

/** On the headers of a trailers-only response: what leads the response; the rest arrives as trailers. */
export const TRAILERS_ONLY: unique symbol = Symbol('trellis.trailersOnly');

/** What the forwarder needs of an upstream's dispatcher (an H1Pool, an H2Upstream, or undici's Agent for passthrough). */
export interface UpstreamDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Whether a port protocol is carried over HTTP/2 to the upstream: the rule of
 * src/registry/protocol.ts `isHttp2Protocol`, restated here because the proxy
 * reads snapshots, not the registry (DESIGN.md §2).
 */
export function speaksHttp2(protocol: string): boolean {
  return protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-Web';
}

/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2), and the Host header that becomes :authority. */
const NOT_IN_H2 = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

function errorWithCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** A session and, once its TLS connection failed, why (what its streams then fail with). */
interface Session {
  session: ClientHttp2Session;
  tlsError: Error | undefined;
}

export class H2Upstream implements UpstreamDispatcher {
  #entry: Session | undefined;
  #closed = false;

  constructor(readonly origin: string, readonly connectTimeoutMs: number, readonly idleTimeoutMs: number, readonly connector?: UpstreamConnector) {}

  #current(): Session {
    const cur = this.#entry;
    if (cur && !cur.session.closed && !cur.session.destroyed) return cur;
    const c = this.connector;
    const refused = c?.refusal();
    if (refused) throw refused;
    const entry: Session = { session: undefined as unknown as ClientHttp2Session, tlsError: undefined };
    const next = (entry.session = c
      ? connect(this.origin, {
        settings: { enablePush: false },
        createConnection: () => {
          const socket = c.open('h2');
          socket.once('error', (err) => { entry.tlsError = upstreamTlsError(err, c.address); });
          return socket;
        },
      })
      : connect(this.origin, { settings: { enablePush: false } }));
    this.#entry = entry;
    const drop = () => { if (this.#entry === entry) this.#entry = undefined; };
    const timer = this.connectTimeoutMs > 0
      ? setTimeout(() => next.destroy(errorWithCode(`connect timeout after ${this.connectTimeoutMs} ms`, 'UND_ERR_CONNECT_TIMEOUT')), this.connectTimeoutMs)
      : undefined;
    next.once('connect', () => clearTimeout(timer));
    next.once('goaway', drop);
    next.once('close', () => { clearTimeout(timer); drop(); });
    next.on('error', drop);
    // An idle session closes itself (gracefully); the next request opens another.
    if (this.idleTimeoutMs > 0) next.setTimeout(this.idleTimeoutMs, () => { drop(); next.close(); });
    return entry;
  }

  dispatch(o: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const call = new H2Call(handler);
    if (this.#closed) { call.fail(errorWithCode('the upstream is closed', 'UND_ERR_CLOSED')); return false; }
    const src = (o.headers ?? {}) as Record<string, string | string[] | undefined>;
    const authority = typeof src.host === 'string' ? src.host : new URL(this.origin).host;
    const headers: OutgoingHttpHeaders = { ':method': o.method, ':path': o.path, ':scheme': 'http', ':authority': authority };
    for (const k in src) {
      const v = src[k];
      if (v === undefined || NOT_IN_H2.has(k) || k.charCodeAt(0) === 58 /* : */) continue;
      headers[k] = v;
    }
    // `te: trailers` (hop-by-hop, so dropped downstream) is what gRPC requires of every call.
    const ct = src['content-type'];
    if (typeof ct === 'string' && ct.startsWith('application/grpc')) headers.te = 'trailers';
    const body = o.body as Buffer | Readable | null | undefined;
    try {
      const cur = this.#current();
      call.translate = (err) => cur.tlsError ?? err;
      const stream = cur.session.request(headers, { endStream: body == null });
      call.start(stream, body);
    } catch (err) {
      call.fail(err as Error);
    }
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const s = this.#entry?.session;
    this.#entry = undefined;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    this.#entry?.session.destroy();
    this.#entry = undefined;
  }
}

/** One request on one stream; the controller the handler holds. */
class H2Call {
  /** Maps a stream's error to what the attempt failed with (the session's TLS failure, if any). */
  translate: ((err: Error) => Error) | undefined;
  #stream: ClientHttp2Stream | undefined;
  #done = false;
  #trailers: IncomingHttpHeaders = {};
  readonly controller: Dispatcher.DispatchController;

  constructor(readonly handler: Dispatcher.DispatchHandler) {
    const self = this;
    this.controller = {
      aborted: false, paused: false, reason: null,
      abort(reason: Error) { self.#abort(reason); },
      pause() { self.#stream?.pause(); },
      resume() { self.#stream?.resume(); },
    } as unknown as Dispatcher.DispatchController;
    handler.onRequestStart?.(this.controller, {});
  }

  start(stream: ClientHttp2Stream, body: Buffer | Readable | null | undefined): void {
    this.#stream = stream;
    if (this.#done) { stream.close(NGHTTP2_CANCEL); return; }
    stream.on('response', (h: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number) => this.#onResponse(h, flags));
    stream.on('data', (chunk: Buffer) => { if (!this.#done) this.handler.onResponseData?.(this.controller, chunk); });
    stream.on('trailers', (t: IncomingHttpHeaders) => { this.#trailers = t; });
    // A reset ends the readable side too: 'end' with a reset code is a broken response, not a complete one.
    stream.once('end', () => {
      const code = stream.rstCode ?? 0;
      if (code === 0) this.#end();
      else this.fail(errorWithCode(`the upstream reset the HTTP/2 stream (RST_STREAM code ${code})`, 'ERR_HTTP2_STREAM_ERROR'));
    });
    stream.on('error', (err: Error) => this.fail(err));
    stream.once('close', () => {
      if (this.#done) return;
      const code = stream.rstCode ?? 0;
      this.fail(errorWithCode(`the upstream closed the HTTP/2 stream${code ? ` (RST_STREAM code ${code})` : ''}`, code ? 'ERR_HTTP2_STREAM_ERROR' : 'UND_ERR_SOCKET'));
    });
    if (Buffer.isBuffer(body)) stream.end(body);
    else if (body) {
      body.on('error', (err) => stream.destroy(err));
      body.pipe(stream);
    }
  }

  #onResponse(h: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number): void {
    if (this.#done) return;
    const status = Number(h[':status']);
    const headers: Record<string | symbol, string | string[] | undefined> = {};
    for (const k in h) if (k.charCodeAt(0) !== 58) headers[k] = h[k];
    if (flags & NGHTTP2_FLAG_END_STREAM) {
      // Trailers-only: keep the fields for the retry decision, lead with content-type, send the rest as trailers.
      const lead: Record<string, string | string[] | undefined> = {};
      const trailers: IncomingHttpHeaders = {};
      for (const k in headers) {
        if (k === 'content-type') lead[k] = headers[k];
        else trailers[k] = headers[k] as string;
      }
      headers[TRAILERS_ONLY] = lead as unknown as string;
      this.#trailers = trailers;
    }
    this.handler.onResponseStart?.(this.controller, status, headers as Record<string, string>, '');
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    this.handler.onResponseEnd?.(this.controller, this.#trailers as Record<string, string>);
  }

  fail(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.handler.onResponseError?.(this.controller, this.translate?.(err) ?? err);
  }

  #abort(reason: Error): void {
    if (this.#done) return;
    const s = this.#stream;
    if (s && !s.destroyed) s.close(NGHTTP2_CANCEL);
    this.fail(reason);
  }
}
