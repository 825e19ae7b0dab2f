/**
 * The proxy's own HTTP/1.1 upstream pool: keep-alive connections to one
 * address, one request at a time on each (no pipelining), plaintext or
 * through the cluster's UpstreamConnector (mTLS to a peer sidecar, TLS to an
 * external service). It offers the forwarder the seam undici's `Pool` did
 * (`dispatch(options, handler)` with undici's handler calls; h2-upstream.ts
 * offers the same), minus what a proxy never uses: a request costs one head
 * string and one write, a response one parse (h1-response-parser.ts), and
 * the sidecar loads no undici (its WASM parser alone is ~11 MiB resident).
 *
 * Contracts:
 * - A call takes an idle connection (the most recently used one, whose idle
 *   time is checked first), else opens one while fewer than `maxConnections`
 *   are open, else waits in order for one to come free. `onRequestStart`
 *   comes when its connection is ready — at once on an idle one, once
 *   connected (TLS: verified) on a new one — as undici's did: the forwarder
 *   counts a call pending until then, and a connect failure fails a call
 *   that never started. The call may be aborted from then on, and the
 *   handler hears `onResponseError(reason)` unless the response had ended;
 *   aborted inside `onRequestStart`, its connection serves the next call.
 * - The head: `METHOD path HTTP/1.1`, `host`, the request's fields (a
 *   value list as repeated lines), `connection: keep-alive` (`close` on a
 *   connection's last request: `maxRequestsPerConnection`, or the request's
 *   `reset`), then the framing: `content-length` for a whole body (0 for a
 *   bodiless POST/PUT/PATCH), the caller's `content-length` or
 *   `transfer-encoding: chunked` for a stream. A streamed body's head goes
 *   with its first chunk; its chunks follow with back-pressure (the body
 *   pauses while the socket is full); a body that breaks its content-length
 *   fails the call. Fields that would change the framing or the connection
 *   (`connection`, `keep-alive`, `transfer-encoding`, `upgrade`, `expect`),
 *   and a path that is not origin-form (`/…`, or `*`) or has spaces or
 *   control characters, fail the call before it takes a connection.
 * - A connection goes back to the pool when its response ended, the request
 *   was sent in full, both sides keep it alive and nothing else arrived; it
 *   stays idle for the server's `Keep-Alive: timeout` less 2 s (capped at
 *   `keepAliveMaxTimeoutMs`), or `keepAliveTimeoutMs` without a hint; after a
 *   HEAD it is closed (servers that send a body anyway). Idle connections do
 *   not hold the process open.
 * - A connect error, a TLS failure (an UpstreamTlsError) or the connect
 *   timeout (`UND_ERR_CONNECT_TIMEOUT`, over the TLS handshake too) fails the
 *   call that opened the connection; a connection that closes before its
 *   response ended fails its call with `UND_ERR_SOCKET` (or the socket's own
 *   error) — the codes errors.ts classifies, as undici's were.
 * - `close()` lets calls in flight and waiting finish, then closes the
 *   connections; `destroy()` ends everything now (`UND_ERR_DESTROYED`).
 */
import { maxHeaderSize } from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ResponseParser, upstreamError, type ResponseHeaders, type ResponseSink } from './h1-response-parser.js';
import type { UpstreamDispatcher } from './h2-upstream.js';
import { upstreamTlsError } from './tls/identity.js';
import type { UpstreamConnector } from './tls/upstream-connector.js';

export interface H1PoolOptions {
  readonly connectTimeoutMs: number;
  /** Infinity: no limit. */
  readonly maxConnections: number;
  /** Requests one connection carries before it closes; 0: no limit. */
  readonly maxRequestsPerConnection: number;
  /** How long a connection stays idle when the server gives no `Keep-Alive: timeout`. */
  readonly keepAliveTimeoutMs: number;
  /** The most a server's hint keeps an idle connection. */
  readonly keepAliveMaxTimeoutMs: number;
}

/** Taken off a server's keep-alive hint, so that the proxy lets go of a connection before the server does (undici's margin). */
const KEEP_ALIVE_MARGIN_MS = 2_000;
/** How often idle connections past their time are closed (a reuse checks the time exactly). */
const SWEEP_MS = 1_000;
/** Request paths undici refused too: spaces, control characters, non-Latin-1. */
const BAD_PATH = /[^\u0021-\u00ff]/;
const KEEPALIVE_PROBE_MS = 60_000;
/**
 * Where every upstream connection's reads land (`onread`): one buffer for
 * all, since a read is parsed before the next one happens and the parser
 * copies whatever it keeps or hands on (body chunks included).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Methods whose requests mean to carry a body: they say `content-length: 0` when theirs is empty (RFC 9110 §8.6). */
function expectsPayload(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'QUERY' || method === 'PROPFIND' || method === 'PROPPATCH';
}

type RequestHeaders = Record<string, string | string[] | undefined>;

export class H1Pool implements UpstreamDispatcher {
  readonly #all = new Set<H1Connection>();
  /** Idle connections, the most recently used last. */
  readonly #idle: H1Connection[] = [];
  /** Calls waiting for a connection (at maxConnections). */
  readonly #waiting: H1Call[] = [];
  #closed = false;
  #destroyed = false;
  #sweep: NodeJS.Timeout | undefined;
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    /** `host:port`, the Host header of requests without one and the name in errors. */
    readonly authority: string,
    readonly options: H1PoolOptions,
    /** TLS clusters: how a connection is opened (with the certificate in force then); plaintext without. */
    readonly connector?: UpstreamConnector,
  ) {}

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const call = new H1Call(this, options, handler);
    if (this.#closed) {
      call.fail(upstreamError(`the connection pool to ${this.authority} is ${this.#destroyed ? 'destroyed' : 'closed'}`, this.#destroyed ? 'UND_ERR_DESTROYED' : 'UND_ERR_CLOSED'));
      return false;
    }
    try {
      call.prepare(this.authority);
      const refused = this.connector?.refusal();
      if (refused) throw refused;
    } catch (err) {
      call.fail(err as Error);
      return true;
    }
    this.#assign(call);
    return true;
  }

  #assign(call: H1Call): void {
    const idle = this.#idle;
    const now = idle.length > 0 ? performance.now() : 0;
    for (let c = idle.pop(); c !== undefined; c = idle.pop()) {
      if (now - c.idleSince < c.keepAliveMs && !c.socket.destroyed) { c.start(call); this.#took(c, call); return; }
      c.socket.destroy();
    }
    if (this.#all.size < this.options.maxConnections) { this.#open().start(call); return; }
    this.#waiting.push(call);
  }

  /** `c` took `call`: when the call ended at once (aborted as it started), the connection is free again. */
  #took(c: H1Connection, call: H1Call): void {
    if (c.call !== call && c.call === undefined && !c.socket.destroyed) this.released(c);
  }

  #open(): H1Connection {
    const c = new H1Connection(this);
    this.#all.add(c);
    return c;
  }

  /** A connection ended its call and can take another. */
  released(c: H1Connection): void {
    // A loop, not recursion: each waiting call may end as it starts (aborted in onRequestStart), leaving the connection free.
    for (let next = this.#waiting.shift(); next !== undefined; next = this.#waiting.shift()) {
      c.start(next);
      if (c.call !== undefined || c.socket.destroyed) return;
    }
    if (this.#closed) { c.socket.destroy(); return; }
    c.idleSince = performance.now();
    // A response that ended on a paused chunk left its socket paused: an idle one must still see the server close.
    if (c.socket.isPaused()) c.socket.resume();
    // (The sweep unrefs it if it stays idle: a ref and an unref per request cost a TLS socket two proxied handle calls.)
    this.#idle.push(c);
    this.#sweep ??= setTimeout(() => this.#sweepIdle(), SWEEP_MS).unref();
  }

  /** A connection closed, whatever the reason. */
  gone(c: H1Connection): void {
    this.#all.delete(c);
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    if (this.#waiting.length > 0 && !this.#destroyed && this.#all.size < this.options.maxConnections) this.#open().start(this.#waiting.shift()!);
    if (this.#closed && this.#all.size === 0 && this.#waiting.length === 0) this.#drained?.();
  }

  /** A waiting call was aborted. */
  unqueue(call: H1Call): void {
    const i = this.#waiting.indexOf(call);
    if (i >= 0) this.#waiting.splice(i, 1);
  }

  #sweepIdle(): void {
    this.#sweep = undefined;
    const now = performance.now();
    for (const c of [...this.#idle]) {
      if (now - c.idleSince >= c.keepAliveMs) c.socket.destroy();
      // Idle connections do not hold the process open.
      else c.unref();
    }
    if (this.#idle.length > 0) this.#sweep = setTimeout(() => this.#sweepIdle(), SWEEP_MS).unref();
  }

  /** Connections open now (tests, the admin page). */
  get connections(): number {
    return this.#all.size;
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const c of [...this.#idle]) c.socket.destroy();
    return this.#whenDrained();
  }

  destroy(): Promise<void> {
    this.#closed = true;
    this.#destroyed = true;
    const err = () => upstreamError(`the connection pool to ${this.authority} was destroyed`, 'UND_ERR_DESTROYED');
    for (const call of this.#waiting.splice(0)) call.fail(err());
    for (const c of [...this.#all]) c.destroy(err());
    if (this.#sweep) { clearTimeout(this.#sweep); this.#sweep = undefined; }
    return this.#whenDrained();
  }

  /** Resolves once every connection has closed (calls waiting are served first). */
  #whenDrained(): Promise<void> {
    if (this.#all.size === 0 && this.#waiting.length === 0) return Promise.resolve();
    return (this.#closing ??= new Promise((resolve) => { this.#drained = resolve; }));
  }
}

/** One request on its way: the controller its handler holds. */
class H1Call implements Dispatcher.DispatchController {
  conn: H1Connection | undefined;
  done = false;
  /** The whole request has been written. */
  sent = false;
  body: BodyWriter | undefined;
  /** The request line, host and fields; the connection and framing lines follow (H1Connection). */
  head = '';
  /** A streamed body's declared length; undefined: chunked. */
  length: number | undefined;
  /** Some of the request is on its connection: aborting it now costs the connection. */
  written = false;
  /** The handler has heard onRequestStart. */
  started = false;
  /** Inside onRequestStart: an abort then gives the connection back (nothing was written or read yet). */
  starting = false;
  /** The body to send (a string made a Buffer). */
  payload: Buffer | Readable | null = null;
  readonly method: string;
  #reason: Error | null = null;
  #paused = false;

  constructor(readonly pool: H1Pool, readonly options: Dispatcher.DispatchOptions, readonly handler: Dispatcher.DispatchHandler) {
    this.method = options.method;
  }

  get aborted(): boolean {
    return this.#reason !== null;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get reason(): Error | null {
    return this.#reason;
  }

  /** Builds the head, before any connection is taken: a request that cannot be sent fails here, costing no connection. */
  prepare(authority: string): void {
    const { method, path } = this.options;
    const headers = (this.options.headers ?? {}) as RequestHeaders;
    if (BAD_PATH.test(path) || (path.charCodeAt(0) !== 47 /* / */ && path !== '*')) throw upstreamError(`invalid request path "${path.slice(0, 100)}"`, 'TRL_UPSTREAM_BAD_REQUEST');
    const host = headers.host ?? authority;
    if (typeof host !== 'string') throw upstreamError('the request has more than one host header', 'TRL_UPSTREAM_BAD_REQUEST');
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n`;
    let declared: string | string[] | undefined;
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined) continue;
      switch (k) {
        case 'host': continue;
        case 'content-length': declared = v; continue;
        case 'connection': case 'keep-alive': case 'transfer-encoding': case 'upgrade': case 'expect':
          throw upstreamError(`the request may not carry a ${k} header to the upstream`, 'TRL_UPSTREAM_BAD_REQUEST');
        default: break;
      }
      if (typeof v === 'string') head += `${k}: ${v}\r\n`;
      else for (let i = 0; i < v.length; i++) head += `${k}: ${v[i]}\r\n`;
    }
    this.head = head;
    const given = this.options.body;
    const body = (this.payload = given == null ? null : typeof given === 'string' ? Buffer.from(given) : given as Buffer | Readable);
    if (declared !== undefined && body !== null && !Buffer.isBuffer(body)) {
      if (typeof declared !== 'string' || !/^\d{1,15}$/.test(declared)) throw upstreamError(`invalid content-length "${String(declared).slice(0, 40)}"`, 'TRL_UPSTREAM_BAD_REQUEST');
      this.length = Number(declared);
    }
  }

  pause(): void {
    this.#paused = true;
    const c = this.conn;
    if (!c || this.done) return;
    c.parser.pause();
    c.socket.pause();
  }

  resume(): void {
    this.#paused = false;
    const c = this.conn;
    if (!c || this.done || !c.parser.paused) return;
    const err = c.parser.resume();
    if (err) { c.destroy(err); return; }
    // (The response may have ended meanwhile: the connection reads again either way.)
    if (!c.parser.paused && c.socket.isPaused()) c.socket.resume();
  }

  abort(reason: Error): void {
    if (this.done) return;
    this.#reason = reason;
    const c = this.conn;
    if (!c) { this.pool.unqueue(this); this.fail(reason); return; }
    // Nothing of it went out (aborted as it got its connection): the connection serves the next call.
    if (this.starting && !this.written && c.call === this) { c.detach(this); this.fail(reason); return; }
    c.destroy(reason);
  }

  /** Ends the call with an error (its connection, if any, is already gone or going). */
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.body?.stop();
    this.handler.onResponseError?.(this, err);
  }
}

/** One keep-alive connection and the call it carries. */
class H1Connection implements ResponseSink {
  readonly socket: Socket;
  readonly parser: ResponseParser;
  call: H1Call | undefined;
  requests = 0;
  idleSince = 0;
  keepAliveMs: number;
  /** False once something rules out another request on this connection. */
  reusable = true;
  /** Connected (TLS: the handshake done and the peer verified). */
  ready = false;
  #error: Error | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  #referenced = true;

  unref(): void {
    if (this.#referenced) { this.#referenced = false; this.socket.unref(); }
  }

  constructor(readonly pool: H1Pool) {
    const o = pool.options;
    this.keepAliveMs = o.keepAliveTimeoutMs;
    this.parser = new ResponseParser(this, maxHeaderSize);
    const c = pool.connector;
    // Reads skip the socket's stream: they land in the shared buffer and go to the parser, which copies what it keeps.
    const onread = { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf as Buffer) };
    const s = (this.socket = c
      ? c.open('http/1.1', { onread })
      : connect({ host: pool.host, port: pool.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_PROBE_MS, onread }));
    if (o.connectTimeoutMs > 0) {
      this.#connectTimer = setTimeout(() => {
        s.destroy(upstreamError(`no connection to ${pool.authority} within the connect timeout of ${o.connectTimeoutMs} ms`, 'UND_ERR_CONNECT_TIMEOUT'));
      }, o.connectTimeoutMs);
    }
    s.once(c ? c.readyEvent(s) : 'connect', () => {
      this.ready = true;
      clearTimeout(this.#connectTimer);
      const call = this.call;
      if (call && !call.started) {
        this.#begin(call);
        if (this.call === undefined && !s.destroyed) pool.released(this);
      }
    });
    s.on('end', () => this.#onEnd());
    s.on('error', (err: Error) => {
      // A TLS failure before the connection was ready: the peer's certificate or name (tls/identity.ts).
      if (this.#error === undefined && !this.ready && c) this.#error = upstreamTlsError(err, c.address) ?? err;
      else this.#error ??= err;
    });
    s.on('close', () => this.#onClose());
  }

  start(call: H1Call): void {
    this.call = call;
    call.conn = this;
    this.requests++;
    const method = call.method;
    const max = this.pool.options.maxRequestsPerConnection;
    if ((max > 0 && this.requests >= max) || method === 'HEAD' || call.options.reset === true) this.reusable = false;
    this.parser.reset(method === 'HEAD');
    if (!this.#referenced) { this.#referenced = true; this.socket.ref(); }
    // A new connection: the call starts once it is connected (TLS: verified), as undici's did — a connect failure
    // then fails a call that never started (nothing of it was sent), and a circuit breaker counts it pending until then.
    if (this.ready) this.#begin(call);
  }

  #begin(call: H1Call): void {
    call.started = true;
    call.starting = true;
    call.handler.onRequestStart?.(call, {});
    call.starting = false;
    if (call.done) return;
    if (this.socket.isPaused()) this.socket.resume();
    this.#write(call);
  }

  /**
   * A call aborted in onRequestStart (nothing of it written or read) lets go
   * of the connection; whoever started it (the pool, or the connect event)
   * gives the connection back to the pool.
   */
  detach(call: H1Call): void {
    if (this.call !== call) return;
    this.call = undefined;
    call.conn = undefined;
    this.requests--;
    this.reusable = true;
  }

  #write(call: H1Call): void {
    const method = call.method;
    const head = `${call.head}connection: ${this.reusable ? 'keep-alive' : 'close'}\r\n`;
    const s = this.socket;
    const b = call.payload;
    const body = b === null || (Buffer.isBuffer(b) && b.length === 0) ? null : b;
    if (body !== null && !Buffer.isBuffer(body)) {
      call.body = new BodyWriter(this, call, body, head, call.length, expectsPayload(method));
      return;
    }
    call.written = true;
    if (body === null) {
      s.write(expectsPayload(method) ? `${head}content-length: 0\r\n\r\n` : `${head}\r\n`, 'latin1');
      call.sent = true;
    } else if (Buffer.isBuffer(body)) {
      s.cork();
      s.write(`${head}content-length: ${body.length}\r\n\r\n`, 'latin1');
      s.write(body);
      s.uncork();
      call.sent = true;
    }
  }

  #onRead(n: number, buf: Buffer): boolean {
    if (!this.call) { this.socket.destroy(); return false; } // bytes nobody asked for
    const err = this.parser.execute(buf.subarray(0, n), true);
    if (err) { this.destroy(err); return false; }
    // A paused call reads no more (the socket's own pause has stopped reading too).
    return !this.parser.paused;
  }

  #onEnd(): void {
    if (!this.call) return;
    const err = this.parser.finish();
    if (err) this.destroy(err);
  }

  #onClose(): void {
    clearTimeout(this.#connectTimer);
    const call = this.call;
    this.call = undefined;
    call?.fail(this.#error ?? upstreamError(`the upstream ${this.pool.authority} closed the connection before the response ended`, 'UND_ERR_SOCKET'));
    this.pool.gone(this);
  }

  /** Closes the connection now; its call fails with `err`. */
  destroy(err: Error): void {
    this.#error ??= err;
    this.parser.halt();
    const call = this.call;
    this.call = undefined;
    this.socket.destroy();
    call?.fail(err);
  }

  // The parser's sink: straight to the call's handler.

  onHead(status: number, headers: ResponseHeaders): void {
    const call = this.call!;
    call.handler.onResponseStart?.(call, status, headers, '');
  }

  onBody(chunk: Buffer): void {
    const call = this.call!;
    call.handler.onResponseData?.(call, chunk);
  }

  onEnd(trailers: ResponseHeaders): void {
    const call = this.call!;
    this.call = undefined;
    call.done = true;
    if (!call.sent) {
      // Answered before the request was all sent: the rest of the body goes nowhere, and the connection with it.
      call.body?.stop(true);
      this.reusable = false;
    }
    const p = this.parser;
    let keep = this.reusable && p.keepAlive && !p.garbage;
    if (keep && p.keepAliveHintMs !== undefined) {
      const ms = Math.min(p.keepAliveHintMs - KEEP_ALIVE_MARGIN_MS, this.pool.options.keepAliveMaxTimeoutMs);
      if (ms > 0) this.keepAliveMs = ms;
      else keep = false;
    } else {
      this.keepAliveMs = this.pool.options.keepAliveTimeoutMs;
    }
    if (keep) this.pool.released(this);
    else this.socket.destroy();
    call.handler.onResponseEnd?.(call, trailers);
  }
}

/** A streamed request body going out on a connection, with back-pressure both ways. */
class BodyWriter {
  #written = 0;
  #headSent = false;
  #stopped = false;

  constructor(
    readonly conn: H1Connection,
    readonly call: H1Call,
    readonly body: Readable,
    readonly head: string,
    /** The caller's content-length; undefined: chunked. */
    readonly length: number | undefined,
    readonly payload: boolean,
  ) {
    body.on('data', this.#onData);
    body.once('end', this.#onEnd);
    body.once('error', this.#onError);
    conn.socket.on('drain', this.#onDrain);
  }

  #onData = (chunk: Buffer): void => {
    if (this.#stopped || chunk.length === 0) return;
    const s = this.conn.socket;
    if (this.length !== undefined && this.#written + chunk.length > this.length) {
      this.conn.destroy(upstreamError(`the request body is longer than its content-length of ${this.length}`, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'));
      return;
    }
    s.cork();
    if (!this.#headSent) {
      this.#headSent = true;
      this.call.written = true;
      s.write(`${this.head}${this.length !== undefined ? `content-length: ${this.length}` : 'transfer-encoding: chunked'}\r\n\r\n`, 'latin1');
    }
    let ok: boolean;
    if (this.length === undefined) {
      s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      ok = s.write('\r\n', 'latin1');
    } else {
      ok = s.write(chunk);
    }
    s.uncork();
    this.#written += chunk.length;
    if (!ok) this.body.pause();
  };

  #onDrain = (): void => {
    if (!this.#stopped) this.body.resume();
  };

  #onEnd = (): void => {
    if (this.#stopped) return;
    this.stop();
    const s = this.conn.socket;
    if (this.length !== undefined && this.#written !== this.length) {
      this.conn.destroy(upstreamError(`the request body ended after ${this.#written} of its content-length of ${this.length} bytes`, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'));
      return;
    }
    this.call.written = true;
    if (!this.#headSent) s.write(`${this.head}${this.length !== undefined || this.payload ? 'content-length: 0\r\n' : ''}\r\n`, 'latin1');
    else if (this.length === undefined) s.write('0\r\n\r\n', 'latin1');
    this.call.sent = true;
  };

  #onError = (err: Error): void => {
    if (this.#stopped) return;
    this.conn.destroy(err);
  };

  /** No more of the body goes out; `drain`: read the rest of it and drop it (the upstream answered already). */
  stop(drain = false): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.body.off('data', this.#onData);
    this.body.off('end', this.#onEnd);
    this.body.off('error', this.#onError);
    this.body.on('error', ignore);
    this.conn.socket.off('drain', this.#onDrain);
    if (drain) this.body.resume();
  }
}

const ignore = (): void => undefined;
