/**
 * Publishing the per-request record (src/protocol/request-record.ts) on the
 * `trellis:request` diagnostics channel. Nothing is built when nobody
 * subscribes: the exchange asks `recordsWanted()` before calling in.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { REQUEST_CHANNEL, type RequestRecord, type ResponseFlag } from '../protocol/request-record.js';
import type { Direction, Exchange } from './exchange.js';
import { snapshotCaptures, type RecordCaptures } from '../telemetry/log-format.js';

const channel = diagnostics_channel.channel(REQUEST_CHANNEL);

export function recordsWanted(): boolean {
  return channel.hasSubscribers;
}

export function toRecord(ex: Exchange, status: number): RequestRecord {
  const r: { -readonly [K in keyof RequestRecord]: RequestRecord[K] } = {
    direction: ex.direction,
    proxy: ex.state?.snapshot.node.id ?? '',
    requestId: ex.requestId,
    method: ex.method,
    authority: ex.authority,
    path: ex.path,
    protocol: `HTTP/${ex.req.httpVersion}`,
    status,
    responseFlags: ex.flags ?? [],
    startTime: ex.startTime,
    durationMs: ex.durationMs,
    bytesReceived: ex.bytesReceived,
    bytesSent: ex.bytesSent,
  };
  // Whether the downstream was mTLS is a fact of inbound requests only (the other directions' downstream is the local app or the outside).
  if (ex.direction === 'inbound') r.mtls = ex.mtls;
  if (ex.virtualHost !== undefined) r.virtualHost = ex.virtualHost;
  if (ex.route !== undefined) r.route = ex.route;
  if (ex.cluster !== undefined) r.cluster = ex.cluster;
  if (ex.upstream !== undefined) r.upstream = ex.upstream;
  if (ex.upstreamMs !== undefined) r.upstreamMs = ex.upstreamMs;
  if (ex.sourceIdentity) r.sourceIdentity = ex.sourceIdentity;
  if (ex.destinationIdentity) r.destinationIdentity = ex.destinationIdentity;
  if (ex.peerPrincipal) r.peerPrincipal = ex.peerPrincipal;
  if (ex.attempts !== undefined) r.attempts = ex.attempts;
  const t = ex.trace;
  if (t) {
    r.traceId = t.traceId;
    r.spanId = t.spanId;
    if (t.parentSpanId) r.parentSpanId = t.parentSpanId;
    r.sampled = t.sampled;
  }
  if (ex.grpc) {
    r.grpc = true;
    // The forwarder knows the status (response headers or trailers); until it sets `grpcStatus` on the exchange, only headers set with setHeader are seen.
    const gs = (ex as { readonly grpcStatus?: string | number }).grpcStatus ?? ex.res.getHeader('grpc-status');
    if (gs !== undefined) r.grpcStatus = String(gs);
  }
  const c = capturesFor(ex);
  if (c) capture(r, ex, c);
  return Object.freeze(r);
}

/** What the access log's format and filters want copied into records, per snapshot. */
const CAPTURES = new WeakMap<object, RecordCaptures | null>();

function capturesFor(ex: Exchange): RecordCaptures | null {
  const s = ex.state?.snapshot;
  if (s === undefined || (s.accessLogging === undefined && s.mesh.accessLogFormat === undefined)) return null;
  let c = CAPTURES.get(s);
  if (c === undefined) CAPTURES.set(s, (c = snapshotCaptures(s) ?? null));
  return c;
}

const joinValue = (v: number | string | readonly string[] | undefined): string | undefined =>
  v === undefined ? undefined : typeof v === 'object' ? v.join(', ') : String(v);

const addressOf = (host: string | undefined, port: number | undefined): string | undefined =>
  host === undefined ? undefined : `${host.includes(':') ? `[${host}]` : host}${port === undefined ? '' : `:${port}`}`;

function capture(r: { -readonly [K in keyof RequestRecord]: RequestRecord[K] }, ex: Exchange, c: RecordCaptures): void {
  if (c.requestHeaders.length) {
    const h: Record<string, string> = {};
    for (const name of c.requestHeaders) {
      const v = joinValue(ex.req.headers[name]);
      if (v !== undefined) h[name] = v;
    }
    r.requestHeaders = h;
  }
  if (c.responseHeaders.length) {
    const h: Record<string, string> = {};
    for (const name of c.responseHeaders) {
      // The forwarder's fields (written with writeHead), else what the proxy set on the response itself.
      const v = joinValue(ex.responseFields?.[name] ?? ex.res.getHeader(name));
      if (v !== undefined) h[name] = v;
    }
    r.responseHeaders = h;
  }
  if (c.addresses) {
    const s = ex.req.socket;
    const remote = addressOf(s?.remoteAddress, s?.remotePort);
    const local = addressOf(s?.localAddress, s?.localPort);
    if (remote !== undefined) r.downstreamRemoteAddress = remote;
    if (local !== undefined) r.downstreamLocalAddress = local;
  }
}

export function publishRecord(ex: Exchange, status: number): void {
  channel.publish(toRecord(ex, status));
}

/** The record of input refused before it became a request (a malformed request, a broken HTTP/2 session): no method, path or route. */
export function publishRefused(direction: Direction, proxy: string, protocol: string, status: number, flags: readonly ResponseFlag[]): void {
  channel.publish(Object.freeze({
    direction, proxy, requestId: '', method: '', authority: '', path: '', protocol, status, responseFlags: flags,
    startTime: Date.now(), durationMs: 0, bytesReceived: 0, bytesSent: 0,
  } satisfies RequestRecord));
}
