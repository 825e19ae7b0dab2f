/**
 * gRPC as the proxy sees it (gRPC over HTTP/2, PROTOCOL-HTTP2.md): the
 * `grpc-timeout` deadline a call carries, and the proxy's own answers in gRPC
 * shape — HTTP 200 with `grpc-status` and `grpc-message`, trailers-only on
 * HTTP/2 — rather than plain-text HTTP errors a gRPC client cannot read.
 */
import type { LocalReply } from './local-reply.js';
import type { Exchange } from './exchange.js';

/** gRPC status codes the proxy answers with. */
export const GRPC_STATUS = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16,
} as const;

const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** The deadline of a `grpc-timeout` value (`100m`, `5S`) in ms; undefined when absent or malformed. */
export function parseGrpcTimeout(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** A `grpc-timeout` value for the time left (whole ms, at least 1). */
export function formatGrpcTimeout(ms: number): string {
  return `${Math.max(1, Math.ceil(ms))}m`;
}

/** The gRPC status for a proxy answer: by its response flag first, then by HTTP status (gRPC's HTTP-to-gRPC mapping). */
export function grpcStatusFor(reply: LocalReply): number {
  switch (reply.flag) {
    case 'UT': return GRPC_STATUS.DEADLINE_EXCEEDED;
    case 'NR': return GRPC_STATUS.UNIMPLEMENTED;
    case 'UH': case 'UF': case 'UC': case 'NC': case 'URX': return GRPC_STATUS.UNAVAILABLE;
    default: break;
  }
  switch (reply.status) {
    case 400: return GRPC_STATUS.INTERNAL;
    case 401: return GRPC_STATUS.UNAUTHENTICATED;
    case 403: return GRPC_STATUS.PERMISSION_DENIED;
    case 404: return GRPC_STATUS.UNIMPLEMENTED;
    case 429: case 502: case 503: return GRPC_STATUS.UNAVAILABLE;
    case 504: return GRPC_STATUS.DEADLINE_EXCEEDED;
    default: return reply.status >= 200 && reply.status < 300 ? GRPC_STATUS.OK : GRPC_STATUS.UNKNOWN;
  }
}

/** `grpc-message` is percent-encoded (printable ASCII except `%` passes). */
export function grpcMessage(text: string): string {
  return text.trim().replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** Answers a gRPC call with a status of the proxy's own: trailers-only on HTTP/2, headers-only on HTTP/1.1. */
export function sendGrpcReply(ex: Exchange, reply: LocalReply): void {
  const { res } = ex;
  const code = grpcStatusFor(reply);
  const fields: Record<string, string> = {
    'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': grpcMessage(reply.body),
    ...(reply.headers ?? {}),
  };
  res.statusCode = 200;
  ex.grpcStatus = String(code);
  const stream = ex.h2Stream;
  if (stream) {
    try { stream.respond({ ':status': 200, ...fields }, { endStream: true }); } catch { ex.destroyDownstream(); return; }
  } else {
    res.writeHead(200, fields);
    res.end();
  }
  const req = ex.req;
  if (!req.complete && !req.destroyed) { req.unpipe(); req.resume(); }
}

/** Ends a gRPC response already under way with a status in its trailers (a deadline passed mid-stream). */
export function endGrpcResponse(ex: Exchange, code: number, message: string): void {
  ex.grpcStatus = String(code);
  try {
    ex.res.addTrailers({ 'grpc-status': String(code), 'grpc-message': grpcMessage(message) });
    ex.res.end();
  } catch {
    ex.destroyDownstream();
  }
}
