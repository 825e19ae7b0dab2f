/**
 * The limits and timeouts the proxy puts on downstream traffic (what callers
 * send to its listeners), from its own configuration (`trellis proxy`
 * flags), with defaults in the manner of Envoy's HTTP connection manager;
 * each field names the Envoy setting it mirrors. Node's own defaults
 * (`requestTimeout` 300 s, `headersTimeout` 60 s, `keepAliveTimeout` 5 s, 16 KiB
 * of headers) never apply: http-server.ts and listener-server.ts set every
 * one of them from these values. What happens when one is crossed is in
 * request-body.ts (bodies, timeouts of a request in flight), http-server.ts
 * (HTTP/1.1 parser errors, the headers timeout) and listener-server.ts
 * (HTTP/2 sessions and header lists).
 */
import { IncomingMessage } from 'node:http';
import { Http2ServerRequest } from 'node:http2';

export interface ProxyLimits {
  /**
   * The request head (request line and headers) must have arrived this long
   * after its first byte (a new connection: after it opened); else 408 and the
   * connection closes. The slowloris bound. Envoy `request_headers_timeout`
   * (off there by default; Trellis keeps Node's 60 s). HTTP/1.1 only: an
   * HTTP/2 HEADERS frame arrives whole. 0: none.
   */
  readonly headersTimeoutMs: number;
  /**
   * A connection with no request in flight is closed after this: HTTP/1.1
   * keep-alive (Node adds 1 s so that its `Keep-Alive: timeout` hint wins the
   * race), HTTP/2 with a GOAWAY. Envoy `common_http_protocol_options.idle_timeout`,
   * 1 h. 0: none.
   */
  readonly idleTimeoutMs: number;
  /**
   * A request in flight with no bytes either way on its stream (HTTP/1.1: its
   * connection) for this long ends: 408 while its body is still arriving, 504
   * when it waits on the upstream, the stream cut once the response has
   * begun; flag SI. Envoy `stream_idle_timeout`, 5 min. 0: none.
   */
  readonly streamIdleTimeoutMs: number;
  /**
   * The whole request (head and body) must have arrived within this, bytes
   * moving or not; else 408, flag DT. Off once the response has begun.
   * Envoy `request_timeout`, 0 (none): it would cut streaming uploads.
   */
  readonly requestTimeoutMs: number;
  /** The request head may be this large; 431 over it (HTTP/2: the header list size of RFC 9113 §6.5.2). Envoy `max_request_headers_kb`, 60 KiB. */
  readonly maxRequestHeadersBytes: number;
  /**
   * The request body may be this large: a larger Content-Length is answered
   * 413 before anything goes upstream; a body without one is cut when it
   * crosses the limit (the upstream attempt is aborted, so the upstream never
   * sees it complete) and answered 413 if no response has begun. Envoy's
   * buffer filter `max_request_bytes`; 0 (the default): unlimited.
   */
  readonly maxRequestBodyBytes: number;
}

export const DEFAULT_LIMITS: ProxyLimits = Object.freeze({
  headersTimeoutMs: 60_000,
  idleTimeoutMs: 3_600_000,
  streamIdleTimeoutMs: 300_000,
  requestTimeoutMs: 0,
  maxRequestHeadersBytes: 60 * 1024,
  maxRequestBodyBytes: 0,
});

/** Node's timers take at most 2^31-1 ms (about 24.8 days). */
const MAX_MS = 2 ** 31 - 1;

/** The defaults with `given` on top, checked: every value a whole number ≥ 0 (header bytes ≥ 1). Throws naming the field. */
export function resolveLimits(given: Partial<ProxyLimits> = {}): ProxyLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const k of Object.keys(given) as (keyof ProxyLimits)[]) {
    const v = given[k];
    if (v === undefined) continue;
    if (!(k in DEFAULT_LIMITS)) throw new Error(`unknown proxy limit "${k}"; known: ${Object.keys(DEFAULT_LIMITS).join(', ')}`);
    const ms = k.endsWith('Ms');
    if (!Number.isInteger(v) || v < 0 || (ms && v > MAX_MS) || (k === 'maxRequestHeadersBytes' && v < 1)) {
      throw new Error(`proxy limit ${k} must be a whole number ${k === 'maxRequestHeadersBytes' ? '≥ 1' : '≥ 0'}${ms ? ` of milliseconds up to ${MAX_MS}` : ''}, not ${v}`);
    }
    out[k] = v;
  }
  return Object.freeze(out);
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, KB: 1000, KiB: 1024, MB: 1000 ** 2, MiB: 1024 ** 2, GB: 1000 ** 3, GiB: 1024 ** 3 };

/** A size such as `65536`, `64KiB`, `1MiB`, `10MB` in bytes; undefined when malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*([KMG]i?B|B)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] ?? NaN);
  return Number.isSafeInteger(n) ? n : undefined;
}

const LIMITS: unique symbol = Symbol('trellis.limits');

/** The limits of the listener a request arrived on (DEFAULT_LIMITS for a request made elsewhere). */
export function limitsOf(req: object): ProxyLimits {
  return (req as { [LIMITS]?: ProxyLimits })[LIMITS] ?? DEFAULT_LIMITS;
}

/** Puts a listener's limits on a request class's prototype (requestClasses; the listeners' own HTTP/1.1 server, fast-h1.ts). */
export function attachLimits(proto: object, limits: ProxyLimits): void {
  Object.defineProperty(proto, LIMITS, { value: limits });
}

/**
 * Request classes for one listener's servers whose prototype carries its
 * limits, so that a request finds them without a per-request property.
 */
export function requestClasses(limits: ProxyLimits): { http1: typeof IncomingMessage; http2: typeof Http2ServerRequest } {
  class Http1Request extends IncomingMessage {}
  class Http2Request extends Http2ServerRequest {}
  for (const c of [Http1Request, Http2Request]) attachLimits(c.prototype, limits);
  return { http1: Http1Request, http2: Http2Request };
}
