/**
 * A listener that speaks HTTP/1.1 and h2c (HTTP/2 with prior knowledge) on
 * one port. A plain `node:net` server accepts; the first bytes of each
 * connection are compared with the start of the HTTP/2 connection preface
 * (`PRI `: RFC 9113 §3.4 reserves the method) and the socket is handed, with
 * those bytes put back, to an `http.Server` or an `http2` server
 * (`emit('connection')`; `http2.createServer` has no `allowHTTP1`). Both call
 * the same request handler: HTTP/2 requests arrive through Node's
 * compatibility API (`Http2ServerRequest` / `Http2ServerResponse`), which has
 * the shape the listeners and the forwarder use.
 *
 * The listener's limits (limits.ts) apply to both servers. A connection
 * whose first bytes do not arrive within the headers timeout is closed; an
 * HTTP/2 session idle for the connection idle timeout gets a GOAWAY; a
 * session that breaks the protocol (a bad preface, a frame where none may
 * be) ends with GOAWAY PROTOCOL_ERROR and counts as refused input (DPE), the
 * listener serving other clients on.
 *
 * mTLS (the inbound listener, given `tls`): a first byte of 0x16 is a TLS
 * ClientHello; the connection goes to tls/inbound-tls.ts, which verifies the
 * client certificate, and the TLS socket then comes back here and goes to the
 * HTTP/2 or the HTTP/1.1 server by its ALPN protocol (no ALPN: the preface
 * is sniffed inside TLS as it is outside). Who the peer is, is read per
 * request with `peerOf(req)` (tls/peer.ts). Plaintext on an inbound listener
 * whose every port is STRICT is closed at once; where ports differ, the
 * inbound listener refuses per request (inbound-listener.ts).
 */
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { constants, createServer as createHttp2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { Server as NetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ResponseFlag } from '../protocol/request-record.js';
import type { AppliedSnapshot } from './applied-snapshot.js';
import { PROXY_ERRORS } from './errors.js';
import type { Direction, ListenerContext } from './exchange.js';
import { FastConnection, fastRequestClass, type FastHost, type FastRequest } from './fast-h1.js';
import { createProxyServer } from './http-server.js';
import { DEFAULT_LIMITS, requestClasses, type ProxyLimits } from './limits.js';
import { publishRefused, recordsWanted } from './request-record.js';
import { InboundTls } from './tls/inbound-tls.js';
import type { TlsObserver } from './tls/tls-events.js';
import type { WorkloadTls } from './tls/workload-tls.js';

export { peerOf, type Peer } from './tls/peer.js';

/** The first byte of a TLS connection: a handshake record (the ClientHello). */
const TLS_HANDSHAKE = 0x16;

/** What the first bytes must be for the connection to be HTTP/2: the preface's method. */
const H2_START = Buffer.from('PRI ', 'latin1');

/** HTTP/2 settings of the listeners: room for many concurrent gRPC streams. */
const H2_SETTINGS = { maxConcurrentStreams: 1000, enablePush: false } as const;

/** nghttp2's error for a peer that floods the session with frames (its other receive errors are protocol errors). */
const NGHTTP2_ERR_FLOODED = -904;

export interface ListenerOptions {
  /** The direction that the metrics and records of refused input carry; outbound by default. */
  readonly direction?: Direction;
  /** DEFAULT_LIMITS when absent. */
  readonly limits?: ProxyLimits;
  /** The data plane's metrics and snapshot, for refused input; without it refused input is not counted. */
  readonly ctx?: ListenerContext;
  /** Inbound: terminate mTLS with the workload's certificate (and enforce all-STRICT listeners); plaintext only without. */
  readonly tls?: { readonly workload: WorkloadTls; readonly observer: TlsObserver };
}

/** Per applied snapshot: whether every inbound port is STRICT (plaintext then is refused when the connection opens). */
const ALL_STRICT = new WeakMap<AppliedSnapshot, boolean>();

function allStrict(state: AppliedSnapshot): boolean {
  let v = ALL_STRICT.get(state);
  if (v === undefined) {
    const routes = [...state.inboundByPort.values()];
    v = routes.length > 0 && routes.every((r) => r.listener.mtls === 'STRICT');
    ALL_STRICT.set(state, v);
  }
  return v;
}

/** `TRELLIS_HTTP1_SERVER=node`: every HTTP/1.1 connection goes to Node's server (fast-h1.ts is skipped; for comparison). */
const FAST_H1 = process.env.TRELLIS_HTTP1_SERVER !== 'node';

export class ProxyServer extends NetServer implements FastHost {
  readonly http1: Server;
  readonly handler: RequestListener;
  readonly #fast = new Set<FastConnection>();
  readonly #fastRequest: typeof FastRequest;
  readonly http2: Http2Server;
  readonly limits: ProxyLimits;
  readonly #sessions = new Set<ServerHttp2Session>();
  /** Connections whose first bytes have not arrived yet. */
  readonly #sniffing = new Set<Socket>();
  readonly #direction: Direction;
  readonly #ctx: ListenerContext | undefined;
  readonly #tls: InboundTls | undefined;

  constructor(handler: RequestListener, opts: ListenerOptions = {}) {
    super({ pauseOnConnect: true, noDelay: true });
    const limits = (this.limits = opts.limits ?? DEFAULT_LIMITS);
    this.handler = handler;
    this.#fastRequest = fastRequestClass(limits);
    this.#direction = opts.direction ?? 'outbound';
    this.#ctx = opts.ctx;
    const classes = requestClasses(limits);
    const refused = (status: number, flags: readonly ResponseFlag[], protocol: string) => this.#refused(status, flags, protocol);
    this.http1 = createProxyServer(handler, limits, classes.http1, refused);
    // An http.Server tracks its connections (closeIdleConnections, the headers timeout) from its 'listening' event;
    // this one never listens itself, so it is told.
    this.http1.emit('listening');
    this.http2 = createHttp2Server({ settings: { ...H2_SETTINGS, maxHeaderListSize: limits.maxRequestHeadersBytes }, Http2ServerRequest: classes.http2 });
    // Node does not hold HTTP/2 peers to the header list size it advertises: the listener does.
    this.http2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      if (headerListSize(req.rawHeaders) > limits.maxRequestHeadersBytes) refuseHeaders(res, limits.maxRequestHeadersBytes, refused);
      else handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    });
    this.http2.setTimeout(0);
    this.http2.on('session', (s: ServerHttp2Session) => this.#session(s));
    this.http2.on('sessionError', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_HTTP2_ERROR') refused(0, ['DPE'], 'HTTP/2');
    });
    if (opts.tls) {
      const handshakeMs = limits.headersTimeoutMs || limits.idleTimeoutMs;
      this.#tls = new InboundTls(opts.tls.workload, opts.tls.observer, handshakeMs, (ts) => this.#secure(ts));
    }
    this.on('connection', (socket: Socket) => this.#sniff(socket, false));
  }

  /** A verified mTLS connection: to the server its ALPN protocol names; without ALPN, sniffed like plaintext. */
  #secure(ts: TLSSocket): void {
    if (ts.alpnProtocol === 'h2') this.http2.emit('connection', ts);
    else if (ts.alpnProtocol === 'http/1.1') this.#http1(ts);
    else this.#sniff(ts, true);
  }

  /** An HTTP/1.1 connection: served by the listener's own server (fast-h1.ts) until a request needs Node's. */
  #http1(socket: Socket): void {
    if (!FAST_H1) { this.http1.emit('connection', socket); socket.resume(); return; }
    this.#fast.add(new FastConnection(socket, this, this.#fastRequest));
  }

  /** FastHost: Node's server takes the connection, `unread` first. */
  fallback(socket: Socket, unread: Buffer | undefined): void {
    if (unread && unread.length > 0) socket.unshift(unread);
    this.http1.emit('connection', socket);
    socket.resume();
  }

  /** FastHost: a fast connection closed or was handed over. */
  gone(c: FastConnection): void {
    this.#fast.delete(c);
  }

  #session(s: ServerHttp2Session): void {
    this.#sessions.add(s);
    s.once('close', () => this.#sessions.delete(s));
    // Idle: a GOAWAY; streams still open (quiet ones) finish, or meet the stream idle timeout.
    if (this.limits.idleTimeoutMs > 0) s.setTimeout(this.limits.idleTimeoutMs, () => { if (!s.closed) s.close(); });
    // Node ends a session whose input nghttp2 rejected with GOAWAY INTERNAL_ERROR; RFC 9113 §5.4.1 wants the error's own code.
    const destroy = s.destroy.bind(s);
    s.destroy = (err?: Error, code?: number) => destroy(err, code ?? receiveErrorCode(err));
  }

  /** `inTls`: the socket is a verified TLS connection without ALPN (no TLS inside TLS, no plaintext check). */
  #sniff(socket: Socket, inTls: boolean): void {
    let seen: Buffer | undefined;
    const ms = this.limits.headersTimeoutMs || this.limits.idleTimeoutMs;
    const timer = ms > 0 ? setTimeout(() => socket.destroy(), ms) : undefined;
    this.#sniffing.add(socket);
    const onError = () => socket.destroy();
    const onData = (chunk: Buffer) => {
      seen = seen ? Buffer.concat([seen, chunk]) : chunk;
      const tls = !inTls && this.#tls !== undefined && seen[0] === TLS_HANDSHAKE;
      const n = Math.min(seen.length, H2_START.length);
      const h2 = !tls && seen.subarray(0, n).equals(H2_START.subarray(0, n));
      if (h2 && seen.length < H2_START.length) return;
      clearTimeout(timer);
      this.#sniffing.delete(socket);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.pause();
      socket.unshift(seen);
      if (tls) { this.#tls!.accept(socket); return; }
      if (!inTls && this.#tls && this.#refusesPlaintext()) { socket.destroy(); return; }
      // Node's http2 server takes a TLS socket only with ALPN h2: this one spoke the preface without ALPN.
      if (h2 && inTls) (socket as TLSSocket).alpnProtocol = 'h2';
      // The http2 session reads what the socket has buffered itself (and checks the rest of the preface); the HTTP/1.1 parser needs the socket flowing.
      if (h2) this.http2.emit('connection', socket);
      else this.#http1(socket);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('close', () => { clearTimeout(timer); this.#sniffing.delete(socket); });
    socket.resume();
  }

  /** Plaintext when every inbound port is STRICT: counted and closed before any byte is read. */
  #refusesPlaintext(): boolean {
    const state = this.#ctx?.current();
    if (!state || !allStrict(state)) return false;
    this.#ctx!.host.metrics.mtlsRefused('plaintext_on_strict');
    return true;
  }

  #refused(status: number, flags: readonly ResponseFlag[], protocol: string): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    ctx.host.metrics.requestEnded(this.#direction, status, flags);
    if (recordsWanted()) publishRefused(this.#direction, ctx.current()?.snapshot.node.id ?? '', protocol, status, flags);
  }

  override close(cb?: (err?: Error) => void): this {
    this.http1.close();
    this.http2.close();
    this.#tls?.close();
    return super.close(cb);
  }

  /** HTTP/1.1 connections without a request in flight, and HTTP/2 sessions (GOAWAY: streams in flight finish). */
  closeIdleConnections(): void {
    this.http1.closeIdleConnections();
    // (A response that ended may still be on its way out: it is flushed before the connection closes.)
    for (const c of this.#fast) if (!c.busy) c.socket.destroySoon();
    // Connected and silent so far: no request in flight either (Node's own closeIdleConnections closes these too).
    for (const s of this.#sniffing) s.destroy();
    for (const s of this.#sessions) if (!s.closed) s.close();
  }

  closeAllConnections(): void {
    this.http1.closeAllConnections();
    for (const c of this.#fast) c.socket.destroy();
    for (const s of this.#sniffing) s.destroy();
    for (const s of this.#sessions) s.destroy();
    this.#tls?.destroyAll();
  }
}

/** RFC 9113 §6.5.2: the size of a header list is the octets of its names and values plus 32 for each field. */
function headerListSize(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i]!.length;
  return n + 16 * raw.length;
}

function refuseHeaders(res: Http2ServerResponse, max: number, refused: (status: number, flags: readonly ResponseFlag[], protocol: string) => void): void {
  const kind = PROXY_ERRORS.HEADERS_TOO_LARGE;
  refused(kind.status, [kind.flag], 'HTTP/2');
  const body = `${kind.message}: the request head is over the limit of ${max} bytes\n`;
  res.writeHead(kind.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The GOAWAY code for an error nghttp2 raised on what the peer sent; undefined for any other error (Node's default). */
function receiveErrorCode(err: Error | undefined): number | undefined {
  const e = err as (Error & { code?: string; errno?: number }) | undefined;
  if (e?.code !== 'ERR_HTTP2_ERROR') return undefined;
  return e.errno === NGHTTP2_ERR_FLOODED ? constants.NGHTTP2_ENHANCE_YOUR_CALM : constants.NGHTTP2_PROTOCOL_ERROR;
}
