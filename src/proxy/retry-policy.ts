/**
 * A route's retry policy, compiled once per snapshot into flags and sets,
 * with Envoy's meaning of each `retryOn` condition:
 *
 * - `5xx`: any 5xx response, and any attempt without a response (connect
 *   failure, reset, refused stream, per-try timeout: they would answer 5xx)
 * - `gateway-error`: 502, 503, 504 responses, and the same failures
 * - `reset`: no response at all (disconnect, reset, refused stream, per-try timeout), connect failures included
 * - `connect-failure`: the connection could not be made
 * - `refused-stream`: HTTP/2 RST_STREAM REFUSED_STREAM (never happens on HTTP/1.1)
 * - `reset-before-request`: a connect failure, or a reset before the request was written
 * - `retriable-status-codes`: a response with one of `retriableStatusCodes`
 *   (Istio turns numeric `retryOn` entries into these)
 * - `retriable-4xx`: 409
 * - `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`,
 *   `unavailable`: the gRPC status in the response headers (a trailers-only
 *   response, as gRPC errors come)
 *
 * An overflow (the circuit breaker refused, UO) is never retried. Only
 * requests whose body can be sent again are retried (request-body.ts: no
 * body, a small body read in full first, or a streamed body that ended
 * within what was kept of it).
 *
 * Backoff between attempts is Envoy's: fully jittered exponential, the Nth
 * retry after a random time in [0, (2^N − 1) × base), at most 10 × base
 * (base 25 ms: 0–24 ms, 0–74 ms, 0–174 ms, then at most 250 ms).
 */
import type { RetryPolicy } from '../protocol/snapshot.js';
import type { UpstreamFailure } from './errors.js';

export interface CompiledRetry {
  /** Retries after the first attempt (Istio's `attempts`). */
  readonly maxRetries: number;
  /** 0: none. */
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  /** Envoy's default: 10 × base. */
  readonly backoffMaxMs: number;
  readonly on5xx: boolean;
  readonly onGatewayError: boolean;
  readonly onReset: boolean;
  readonly onConnectFailure: boolean;
  readonly onRefusedStream: boolean;
  readonly onResetBeforeRequest: boolean;
  readonly on4xx: boolean;
  readonly codes: ReadonlySet<number>;
  /** gRPC status numbers to retry. */
  readonly grpc: ReadonlySet<number>;
  /** Whether any response status can be retried (saves looking at responses otherwise). */
  readonly onResponses: boolean;
  /** `retryRemoteLocalities`: retries may go to other localities than the first attempt's. */
  readonly remoteLocalities: boolean;
}

const GRPC_CODES: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };

export const NO_RETRY: CompiledRetry = Object.freeze({
  maxRetries: 0, perTryTimeoutMs: 0, backoffBaseMs: 25, backoffMaxMs: 250, on5xx: false, onGatewayError: false, onReset: false,
  onConnectFailure: false, onRefusedStream: false, onResetBeforeRequest: false, on4xx: false,
  codes: new Set<number>(), grpc: new Set<number>(), onResponses: false, remoteLocalities: false,
});

const cache = new WeakMap<RetryPolicy, CompiledRetry>();

export function compileRetry(p: RetryPolicy): CompiledRetry {
  let c = cache.get(p);
  if (c) return c;
  const on = new Set(p.retryOn);
  const grpc = new Set<number>();
  for (const [name, code] of Object.entries(GRPC_CODES)) if (on.has(name)) grpc.add(code);
  const codes = on.has('retriable-status-codes') ? new Set(p.retriableStatusCodes) : new Set<number>();
  const base = p.backoffBaseMs > 0 ? p.backoffBaseMs : 25;
  c = Object.freeze({
    maxRetries: Math.max(0, p.attempts),
    perTryTimeoutMs: p.perTryTimeoutMs,
    backoffBaseMs: base,
    backoffMaxMs: base * 10,
    on5xx: on.has('5xx'),
    onGatewayError: on.has('gateway-error'),
    onReset: on.has('reset'),
    onConnectFailure: on.has('connect-failure'),
    onRefusedStream: on.has('refused-stream'),
    onResetBeforeRequest: on.has('reset-before-request'),
    on4xx: on.has('retriable-4xx'),
    codes,
    grpc,
    onResponses: on.has('5xx') || on.has('gateway-error') || on.has('retriable-4xx') || codes.size > 0 || grpc.size > 0,
    remoteLocalities: p.retryRemoteLocalities,
  });
  cache.set(p, c);
  return c;
}

/** Whether a response with this status (and, for gRPC, grpc-status header) is worth another attempt. */
export function retriableResponse(r: CompiledRetry, status: number, grpcStatus: string | string[] | undefined): boolean {
  if (!r.onResponses) return false;
  if (r.on5xx && status >= 500 && status < 600) return true;
  if (r.onGatewayError && (status === 502 || status === 503 || status === 504)) return true;
  if (r.on4xx && status === 409) return true;
  if (r.codes.has(status)) return true;
  if (r.grpc.size > 0 && typeof grpcStatus === 'string' && r.grpc.has(Number(grpcStatus))) return true;
  return false;
}

/**
 * Whether an attempt that failed this way (no response) is worth another
 * attempt; `beforeRequest`: nothing of the request was written yet.
 */
export function retriableFailure(r: CompiledRetry, f: UpstreamFailure, beforeRequest = false): boolean {
  // Any failure without a response: reset, 5xx and gateway-error (it would answer 503 or 504).
  if (r.onReset || r.on5xx || r.onGatewayError) return true;
  switch (f) {
    case 'connect-failure': return r.onConnectFailure || r.onResetBeforeRequest;
    case 'refused-stream': return r.onRefusedStream || (r.onResetBeforeRequest && beforeRequest);
    case 'reset':
    case 'protocol': return r.onResetBeforeRequest && beforeRequest;
    case 'per-try-timeout': return false;
  }
}

/** The wait before retry number `retry` (1 for the first): Envoy's fully jittered exponential backoff. */
export function backoffMs(r: CompiledRetry, retry: number): number {
  const span = (2 ** Math.min(Math.max(1, retry), 30) - 1) * r.backoffBaseMs;
  return Math.min(Math.floor(Math.random() * span), r.backoffMaxMs);
}
