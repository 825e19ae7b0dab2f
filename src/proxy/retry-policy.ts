/**
 * A route's retry policy, compiled once per snapshot into flags and sets,
 * with Envoy's meaning of each `retryOn` condition:
 *
 * - `5xx`: any 5xx response, a connect failure, a reset, a per-try timeout
 * - `gateway-error`: 502, 503, 504 responses, and the same failures (they answer 503/504)
 * - `reset`: no response at all (disconnect, reset, per-try timeout), connect failures included
 * - `connect-failure`: the connection could not be made
 * - `retriable-status-codes`: a response with one of `retriableStatusCodes`
 * - `retriable-4xx`: 409
 * - `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`: the gRPC status of the response
 * - `refused-stream`: HTTP/2 REFUSED_STREAM; never happens on HTTP/1.1
 *
 * Only requests whose body can be sent again are retried (no body, or a
 * small body read in full first); a streaming body is sent once.
 */
import type { RetryPolicy } from '../protocol/snapshot.js';
import type { UpstreamFailure } from './errors.js';

export interface CompiledRetry {
  /** Retries after the first attempt (Istio's `attempts`). */
  readonly maxRetries: number;
  /** 0: none. */
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly on5xx: boolean;
  readonly onGatewayError: boolean;
  readonly onReset: boolean;
  readonly onConnectFailure: boolean;
  readonly on4xx: boolean;
  readonly codes: ReadonlySet<number>;
  /** gRPC status numbers to retry. */
  readonly grpc: ReadonlySet<number>;
  /** Whether any response status can be retried (saves looking at responses otherwise). */
  readonly onResponses: boolean;
}

const GRPC_CODES: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };

export const NO_RETRY: CompiledRetry = Object.freeze({
  maxRetries: 0, perTryTimeoutMs: 0, backoffBaseMs: 25, on5xx: false, onGatewayError: false, onReset: false,
  onConnectFailure: false, on4xx: false, codes: new Set<number>(), grpc: new Set<number>(), onResponses: false,
});

const cache = new WeakMap<RetryPolicy, CompiledRetry>();

export function compileRetry(p: RetryPolicy): CompiledRetry {
  let c = cache.get(p);
  if (c) return c;
  const on = new Set(p.retryOn);
  const grpc = new Set<number>();
  for (const [name, code] of Object.entries(GRPC_CODES)) if (on.has(name)) grpc.add(code);
  const codes = on.has('retriable-status-codes') ? new Set(p.retriableStatusCodes) : new Set<number>();
  c = Object.freeze({
    maxRetries: Math.max(0, p.attempts),
    perTryTimeoutMs: p.perTryTimeoutMs,
    backoffBaseMs: p.backoffBaseMs > 0 ? p.backoffBaseMs : 25,
    on5xx: on.has('5xx'),
    onGatewayError: on.has('gateway-error'),
    onReset: on.has('reset'),
    onConnectFailure: on.has('connect-failure'),
    on4xx: on.has('retriable-4xx'),
    codes,
    grpc,
    onResponses: on.has('5xx') || on.has('gateway-error') || on.has('retriable-4xx') || codes.size > 0 || grpc.size > 0,
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

/** Whether an attempt that failed this way (no response) is worth another attempt. */
export function retriableFailure(r: CompiledRetry, f: UpstreamFailure): boolean {
  switch (f) {
    case 'connect-failure': return r.onConnectFailure || r.onReset || r.on5xx || r.onGatewayError;
    case 'reset': return r.onReset || r.on5xx || r.onGatewayError;
    case 'per-try-timeout': return r.onReset || r.on5xx || r.onGatewayError;
    case 'protocol': return r.on5xx;
  }
}

/** Envoy's backoff: a random time up to base × 2^(retry−1), at most 10 × base. */
export function backoffMs(r: CompiledRetry, retry: number): number {
  const cap = Math.min(r.backoffBaseMs * 2 ** Math.max(0, retry - 1), r.backoffBaseMs * 10);
  return Math.floor(Math.random() * cap);
}
