/**
 * The proxy's errors as data: a stable code, where the failure came from,
 * whether a retry may help, and the status and Envoy response flag the
 * caller sees. Local replies (local-reply.ts) are built from these kinds, so
 * every answer the proxy gives itself has a code, a flag and a reason.
 */
import type { ResponseFlag } from '../protocol/request-record.js';

/** Envoy's UO: upstream overflow, a circuit breaker refused. */
const UO: ResponseFlag = 'UO';

export type ErrorSource = 'downstream' | 'upstream' | 'internal';

/**
 * What went wrong with one upstream attempt, in the terms retry policies use
 * (retry-policy.ts decides which of them a route retries): `refused-stream`
 * is an HTTP/2 RST_STREAM REFUSED_STREAM (the peer did not process the
 * request), `reset` any other disconnect or reset without a response.
 */
export type UpstreamFailure = 'connect-failure' | 'reset' | 'refused-stream' | 'per-try-timeout' | 'protocol';

export interface ErrorKind {
  readonly code: string;
  readonly status: number;
  readonly flag?: ResponseFlag;
  readonly source: ErrorSource;
  /** The first words of the plain-text body; a detail may follow after a colon. */
  readonly message: string;
}

/** The catalogue of answers the proxy gives itself. Codes are permanent. */
export const PROXY_ERRORS = {
  NO_SNAPSHOT: { code: 'TRL_PROXY_NO_SNAPSHOT', status: 503, source: 'internal', message: 'the proxy has no configuration yet' },
  BAD_REQUEST: { code: 'TRL_PROXY_BAD_REQUEST', status: 400, source: 'downstream', message: 'bad request' },
  NO_ROUTE: { code: 'TRL_PROXY_NO_ROUTE', status: 404, flag: 'NR', source: 'downstream', message: 'no route' },
  BLACKHOLE: { code: 'TRL_PROXY_BLACKHOLE', status: 502, flag: 'NR', source: 'downstream', message: 'not in the mesh registry and outboundTrafficPolicy is REGISTRY_ONLY' },
  NO_INBOUND_LISTENER: { code: 'TRL_PROXY_NO_INBOUND', status: 404, flag: 'NR', source: 'downstream', message: 'no inbound listener' },
  NO_CLUSTER: { code: 'TRL_PROXY_NO_CLUSTER', status: 503, flag: 'NC', source: 'internal', message: 'no cluster' },
  NO_HEALTHY_UPSTREAM: { code: 'TRL_PROXY_NO_HEALTHY_UPSTREAM', status: 503, flag: 'UH', source: 'upstream', message: 'no healthy upstream' },
  CONNECT_FAILURE: { code: 'TRL_PROXY_CONNECT_FAILURE', status: 503, flag: 'UF', source: 'upstream', message: 'upstream connect error' },
  UPSTREAM_RESET: { code: 'TRL_PROXY_UPSTREAM_RESET', status: 503, flag: 'UC', source: 'upstream', message: 'upstream reset before response headers' },
  UPSTREAM_TIMEOUT: { code: 'TRL_PROXY_UPSTREAM_TIMEOUT', status: 504, flag: 'UT', source: 'upstream', message: 'upstream request timeout' },
  /** A circuit breaker of the cluster (connectionPool limits) refused the request; it never left the proxy. */
  OVERFLOW: { code: 'TRL_PROXY_OVERFLOW', status: 503, flag: UO, source: 'upstream', message: 'upstream overflow, the request was not sent (circuit breaker)' },
  LOOP: { code: 'TRL_PROXY_LOOP', status: 508, flag: 'NR', source: 'downstream', message: 'request loop' },
  RBAC_DENIED: { code: 'TRL_PROXY_RBAC_DENIED', status: 403, flag: 'RBAC', source: 'downstream', message: 'RBAC: access denied' },
  JWT_REJECTED: { code: 'TRL_PROXY_JWT_REJECTED', status: 401, source: 'downstream', message: 'Jwt verification fails' },
  PATH_REJECTED: { code: 'TRL_PROXY_PATH_REJECTED', status: 400, flag: 'DPE', source: 'downstream', message: 'the path cannot be normalized' },
  MTLS_REQUIRED: { code: 'TRL_PROXY_MTLS_REQUIRED', status: 503, source: 'downstream', message: 'this port requires mTLS (PeerAuthentication STRICT)' },
  INTERNAL: { code: 'TRL_PROXY_INTERNAL', status: 500, source: 'internal', message: 'internal proxy error' },
  // Bad input and the proxy's limits (limits.ts): answered with `connection: close` on HTTP/1.1.
  MALFORMED_REQUEST: { code: 'TRL_PROXY_MALFORMED_REQUEST', status: 400, flag: 'DPE', source: 'downstream', message: 'malformed HTTP request' },
  HEADERS_TOO_LARGE: { code: 'TRL_PROXY_HEADERS_TOO_LARGE', status: 431, flag: 'DPE', source: 'downstream', message: 'request headers too large' },
  BODY_TOO_LARGE: { code: 'TRL_PROXY_BODY_TOO_LARGE', status: 413, source: 'downstream', message: 'request body too large' },
  HEADERS_TIMEOUT: { code: 'TRL_PROXY_HEADERS_TIMEOUT', status: 408, flag: 'DT', source: 'downstream', message: 'request header timeout' },
  REQUEST_TIMEOUT: { code: 'TRL_PROXY_REQUEST_TIMEOUT', status: 408, flag: 'DT', source: 'downstream', message: 'request timeout' },
  STREAM_IDLE_DOWNSTREAM: { code: 'TRL_PROXY_STREAM_IDLE', status: 408, flag: 'SI', source: 'downstream', message: 'stream timeout' },
  STREAM_IDLE_UPSTREAM: { code: 'TRL_PROXY_STREAM_IDLE_UPSTREAM', status: 504, flag: 'SI', source: 'upstream', message: 'stream timeout' },
} as const satisfies Record<string, ErrorKind>;

/** An error with a kind from the catalogue; thrown or passed as an abort reason. */
export class ProxyError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${kind.message}: ${detail}` : kind.message, options);
    this.kind = kind;
  }
  get code(): string { return this.kind.code; }
}

/** A snapshot the data plane cannot use; `apply()` turns it into a NACK reason. */
export class SnapshotError extends Error {
  readonly code = 'TRL_PROXY_BAD_SNAPSHOT';
}

/** Abort reasons the forwarder gives an upstream dispatcher; recognised when it hands them back. */
export const ABORT = {
  perTryTimeout: new ProxyError(PROXY_ERRORS.UPSTREAM_TIMEOUT, 'per-try timeout'),
  routeTimeout: new ProxyError(PROXY_ERRORS.UPSTREAM_TIMEOUT),
  downstreamGone: new ProxyError({ code: 'TRL_PROXY_DOWNSTREAM_GONE', status: 499, flag: 'DC', source: 'downstream', message: 'downstream connection closed' }),
  dropped: new ProxyError({ code: 'TRL_PROXY_ATTEMPT_DROPPED', status: 502, source: 'internal', message: 'upstream attempt dropped' }),
  /** An attempt the circuit breaker refused after it was queued (the pool still holds it; it is never written). */
  overflow: new ProxyError(PROXY_ERRORS.OVERFLOW),
} as const;

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT',
  // The TLS handshake with the peer failed (its certificate, secure naming): the connection never carried a request.
  'TRL_PROXY_UPSTREAM_TLS',
]);
const RESET_CODES = new Set([
  'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'UND_ERR_INFO',
  // HTTP/2 (h2-upstream.ts): a stream or session the peer reset or went away from.
  'ERR_HTTP2_STREAM_ERROR', 'ERR_HTTP2_STREAM_CANCEL', 'ERR_HTTP2_SESSION_ERROR', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION',
]);
/** How an HTTP/2 REFUSED_STREAM (code 7) reads in Node's and h2-upstream.ts's messages. */
const REFUSED_STREAM = /REFUSED_STREAM|RST_STREAM code 7\b/;

/** Classifies an error a dispatcher reports for an attempt that got no response headers. */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  if (err === ABORT.perTryTimeout) return 'per-try-timeout';
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return 'connect-failure';
    if (RESET_CODES.has(code)) return code.startsWith('ERR_HTTP2') && REFUSED_STREAM.test((err as Error).message) ? 'refused-stream' : 'reset';
  }
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (cause && cause !== err) return classifyUpstreamError(cause);
  return 'protocol';
}

/** The answer for an attempt that failed this way and is not retried. */
export function failureKind(f: UpstreamFailure): ErrorKind {
  switch (f) {
    case 'connect-failure': return PROXY_ERRORS.CONNECT_FAILURE;
    case 'per-try-timeout': return PROXY_ERRORS.UPSTREAM_TIMEOUT;
    case 'reset':
    case 'refused-stream':
    case 'protocol': return PROXY_ERRORS.UPSTREAM_RESET;
  }
}
