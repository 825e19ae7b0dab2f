/**
 * One request passing through a listener: the downstream request and
 * response, the snapshot it started on (kept to the end, so a swap never
 * changes a request mid-way), and the facts its record reports. When the
 * response closes, the exchange counts itself in the metrics, publishes its
 * record (only when someone subscribes) and lets go of its snapshot.
 *
 * HTTP/2 requests (listener-server.ts) come through Node's compatibility
 * API, whose request and response have the shape used here; what differs
 * (the stream's reset code, gRPC) is read through `http2` and `grpc`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, type Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { AuthzDecision } from '../policy/authorize.js';
import type { RequestRecord, ResponseFlag } from '../protocol/request-record.js';
import type { RequestAuth } from './inbound-security.js';
import type { AppliedSnapshot } from './applied-snapshot.js';
import type { StageContext } from './filter-chain.js';
import type { Headers } from './headers.js';
import type { ProxyMetrics } from './metrics.js';
import { publishRecord, recordsWanted } from './request-record.js';
import type { TraceHop } from './trace-context.js';

export type Direction = RequestRecord['direction'];

/** What every exchange of one data plane shares. */
export interface ExchangeHost {
  readonly metrics: ProxyMetrics;
  /** Requests not yet ended, for close(grace). */
  inflight: number;
  /** While closing, responses say `connection: close`. */
  closing: boolean;
  /** Called when the last request (or tunnel) in flight has ended: close() waits on it, the idle collection starts from it. */
  onIdle?: (() => void) | undefined;
}

/** What the listeners read from their data plane: the state in force, the shared exchange host, the passthrough agent. */
export interface ListenerContext {
  /** The snapshot state in force now; a request keeps the one it started with. */
  current(): AppliedSnapshot | undefined;
  readonly host: ExchangeHost;
  /** The dispatcher for PASSTHROUGH traffic to hosts outside the mesh. */
  passthrough(): Dispatcher;
  /** Whether `host:port` is one of this data plane's own listeners (a request sent there would loop through it forever). */
  isOwnAddress?(host: string, port: number): boolean;
}

const EMPTY_HEADERS: Headers = Object.freeze({}) as Headers;

export class Exchange implements StageContext {
  readonly startTime = Date.now();
  readonly t0 = performance.now();
  readonly method: string;
  readonly remoteAddress: string | undefined;
  /** The downstream speaks HTTP/2 (h2c). */
  readonly http2: boolean;
  /** A gRPC call (`content-type: application/grpc…`): the proxy's own answers are gRPC-shaped. */
  readonly grpc: boolean;
  /** gRPC: the `grpc-status` sent downstream (in headers, trailers or the proxy's own answer), for the record. */
  grpcStatus: string | undefined;
  /** The upstream response's fields as sent downstream (the forwarder's), for an access log format that names response headers. */
  responseFields: Headers | undefined = undefined;
  authority = '';
  path: string;
  requestId = '';
  /** Upstream request headers, once built. */
  headers: Headers = EMPTY_HEADERS;
  flags: ResponseFlag[] | undefined;
  virtualHost: string | undefined;
  route: string | undefined;
  cluster: string | undefined;
  upstream: string | undefined;
  upstreamMs: number | undefined;
  attempts: number | undefined;
  bytesReceived = 0;
  bytesSent = 0;
  sourceIdentity: string | undefined;
  destinationIdentity: string | undefined;
  /** Inbound: the downstream connection is mTLS (a verified client certificate); false for plaintext and for other directions. */
  mtls = false;
  /** Inbound over mTLS: the peer's principal as Istio writes it (`cluster.local/ns/x/sa/y`). */
  peerPrincipal?: string;
  /** Inbound: the local address the connection came in on (authorization's destination.ip). */
  localAddress?: string;
  /** Inbound: what request authentication (JWT) established, for authorization. */
  requestAuth?: RequestAuth;
  /** Inbound: the authorization decision, when a policy selects the workload. */
  authzDecision?: AuthzDecision;
  /** This hop's trace context, when tracing is on (trace-context.ts). */
  trace: TraceHop | undefined;
  /** Set by whatever waits on the upstream; called once if the downstream goes away first. */
  cancel: (() => void) | undefined;
  closed = false;
  #cutByUs = false;

  constructor(
    readonly direction: Direction,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly state: AppliedSnapshot | undefined,
    readonly host: ExchangeHost,
  ) {
    this.method = req.method ?? 'GET';
    this.path = req.url ?? '/';
    this.remoteAddress = req.socket?.remoteAddress;
    this.http2 = req.httpVersionMajor === 2;
    const ct = req.headers['content-type'];
    this.grpc = typeof ct === 'string' && ct.startsWith('application/grpc');
    host.inflight++;
    state?.enter();
    res.on('close', this.#onClose);
  }

  flag(f: ResponseFlag): void {
    if (!this.flags) this.flags = [f];
    else if (!this.flags.includes(f)) this.flags.push(f);
  }

  /**
   * Right before the response head is written: while the proxy drains
   * (`closing`), an HTTP/1.1 response says `connection: close` and its
   * connection closes after it, also for requests that arrived before the
   * drain began. (HTTP/2 sessions get a GOAWAY instead.)
   */
  beforeHead(): void {
    if (this.host.closing && !this.http2) this.res.shouldKeepAlive = false;
  }

  /** Cuts the downstream connection (a response that cannot be completed); not counted as DC. */
  destroyDownstream(): void {
    this.#cutByUs = true;
    // HTTP/2: reset the stream with an error code (destroying it would send RST_STREAM NO_ERROR, which reads as a clean end).
    const stream = this.h2Stream;
    if (stream) { if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR); return; }
    this.res.destroy();
  }

  /** The downstream HTTP/2 stream (HTTP/2 exchanges only). */
  get h2Stream(): ServerHttp2Stream | undefined {
    return this.http2 ? (this.res as unknown as Http2ServerResponse).stream : undefined;
  }

  get durationMs(): number {
    return performance.now() - this.t0;
  }

  #onClose = (): void => {
    this.closed = true;
    // An HTTP/2 stream that closed with a reset code did not complete (the compatibility response has no writableFinished).
    const incomplete = this.http2 ? (this.h2Stream?.rstCode ?? 0) !== 0 : !this.res.writableFinished;
    if (incomplete && !this.#cutByUs) {
      this.flag('DC');
      const c = this.cancel;
      this.cancel = undefined;
      c?.();
    }
    const status = this.res.headersSent ? this.res.statusCode : 0;
    this.host.metrics.requestEnded(this.direction, status, this.flags);
    if (recordsWanted()) publishRecord(this, status);
    this.state?.leave();
    this.host.inflight--;
    if (this.host.inflight === 0) this.host.onIdle?.();
  };
}
