/**
 * The per-request record: when a request ends, the proxy publishes one on the
 * `node:diagnostics_channel` channel below (only when someone subscribes).
 * Metrics, access logs and traces are subscribers; nothing is computed for a
 * subscriber that is not there.
 */
export const REQUEST_CHANNEL = 'trellis:request';
/**
 * Where a TCP connection's opening is published (a RequestRecord with
 * `tcpPhase: 'open'`), for `tcp_connections_opened_total`: the request
 * channel keeps one record per connection, at its end.
 */
export const TCP_OPEN_CHANNEL = 'trellis:tcp-open';

/**
 * Envoy-style response flags: NR no route, UH no healthy upstream, UF upstream connect failure, UC upstream connection terminated, DC downstream connection terminated, UT upstream timeout, URX retries exhausted, NC no cluster, UO upstream overflow (a circuit breaker refused: connection pool limits, retry budget), RL rate limited, FI / DI fault injected (abort / delay);
 * DPE downstream protocol error (a malformed request, a header block over the limit, a broken HTTP/2 session), SI stream idle timeout, DT downstream duration timeout (the request head or the whole request did not arrive in time).
 */
/** Envoy's response flags, and `RBAC`: denied by an AuthorizationPolicy (Envoy says so in its response code details, not a flag). */
export type ResponseFlag = 'NR' | 'UH' | 'UF' | 'UC' | 'DC' | 'UT' | 'URX' | 'NC' | 'UO' | 'UAEX' | 'RL' | 'FI' | 'DI' | 'DPE' | 'SI' | 'DT' | 'RBAC';

export interface RequestRecord {
  readonly direction: 'inbound' | 'outbound' | 'gateway';
  /** Node id of the reporting proxy (`workload.namespace`). */
  readonly proxy: string;
  readonly requestId: string;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly protocol: string;
  readonly status: number;
  /** Empty when the request went well. */
  readonly responseFlags: readonly ResponseFlag[];
  readonly virtualHost?: string;
  readonly route?: string;
  readonly cluster?: string;
  /** `address:port` of the endpoint the request went to. */
  readonly upstream?: string;
  /** Epoch milliseconds when the request arrived. */
  readonly startTime: number;
  readonly durationMs: number;
  /** Time from sending upstream to the first response byte, when there was an upstream. */
  readonly upstreamMs?: number;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  /** The caller's SPIFFE ID: outbound, this proxy's; inbound, the verified client certificate's (absent for plaintext). */
  readonly sourceIdentity?: string;
  /** The callee's SPIFFE ID: inbound, this proxy's; outbound, the identity the upstream endpoint runs as. */
  readonly destinationIdentity?: string;
  /**
   * Inbound: whether the downstream connection was mTLS (a client certificate
   * that verified against the trust bundle); false for plaintext. Absent on
   * the other directions (their downstream is the local app or the outside),
   * and where the producer does not say (input refused before it became a
   * request, TCP tunnels for now): readers then take an inbound
   * `sourceIdentity` as mTLS, since only a verified certificate sets it.
   */
  readonly mtls?: boolean;
  /**
   * Opaque TCP only. `open`: on TCP_OPEN_CHANNEL, the connection has just
   * been established (the upstream side is connected); Istio counts
   * `tcp_connections_opened_total` then. `close`: the connection's record at
   * its end, after an `open` one. Absent on a TCP record: no `open` record
   * went out (the connection was never established, or nobody listened
   * then): it counts as opened and closed at once.
   */
  readonly tcpPhase?: 'open' | 'close';
  /** Inbound over mTLS: the peer's principal as Istio writes it (`cluster.local/ns/x/sa/y`). */
  readonly peerPrincipal?: string;
  readonly attempts?: number;
  /** True when the request was gRPC (`content-type: application/grpc…`). */
  readonly grpc?: boolean;
  /** The `grpc-status` the response carried in its headers (trailers-only responses), when it did. */
  readonly grpcStatus?: string;
  /**
   * Only while the access log's format (MeshConfig `accessLogFormat`) names
   * them: those request headers (`%REQ(X)%`) and response headers
   * (`%RESP(X)%`) of the exchange, by lower-case name, and the downstream
   * connection's addresses (`address:port`).
   */
  readonly requestHeaders?: Readonly<Record<string, string>>;
  readonly responseHeaders?: Readonly<Record<string, string>>;
  readonly downstreamRemoteAddress?: string;
  readonly downstreamLocalAddress?: string;
  /** Tracing on: the trace (32 hex digits), this hop's span (16), the span it continues (absent where the trace started), and whether the trace is sampled. */
  readonly traceId?: string;
  readonly spanId?: string;
  readonly parentSpanId?: string;
  readonly sampled?: boolean;
}
