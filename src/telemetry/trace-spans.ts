/**
 * One finished OpenTelemetry span from one sampled request record: a client
 * span for the outbound and gateway listeners, a server span for the
 * inbound one, with the ids the proxy chose on the request path (the record
 * carries them), OpenTelemetry's HTTP semantic-convention attributes and
 * the mesh's own (`trellis.*`). The span is a plain `ReadableSpan`, handed
 * to the OTLP exporter as if a tracer had ended it: the ids are decided
 * before the SDK sees the request, so no tracer, id generator or context is
 * involved.
 *
 * Names follow Istio's operation names, `<service host>:<port>/*`
 * (`<authority>/*` for traffic outside the mesh's services). Errors: a
 * response flag, no response, 5xx, and for client spans also 4xx (the
 * semantic conventions' rule).
 */
import type { Attributes, HrTime, SpanContext } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_REQUEST_METHOD_ORIGINAL, ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS, ATTR_NETWORK_PEER_PORT, ATTR_NETWORK_PROTOCOL_VERSION, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT,
  ATTR_URL_FULL, ATTR_URL_PATH, ATTR_URL_QUERY, ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { RequestRecord } from '../protocol/request-record.js';
import type { TracingSettings } from '../protocol/snapshot.js';
import { peersOf, UNKNOWN, type LabelTables, type Peer } from './istio-labels.js';

// The API's enum values (SpanKind, SpanStatusCode, TraceFlags), without loading the API for three numbers.
const SERVER = 1;
const CLIENT = 2;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;
const SAMPLED = 1;

const SCOPE = Object.freeze({ name: 'trellis-proxy' });
const NONE: never[] = [];
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/**
 * A string with text of its own. V8 makes a slice of 13 characters or more a
 * view of the string it was cut from, which it keeps alive: an id cut from
 * the proxy's pool of random hex (src/proxy/trace-context.ts, 8 KiB), a
 * path from the request's head. The concatenation is flattened into a new
 * string before the slice is taken, so the copy's parent is only that.
 */
const flat = (s: string): string => (s.length < 13 ? s : (' ' + s).slice(1));

/**
 * A sampled record as it waits for its batch: the ids and the strings that
 * come from the request's head (method, authority, path, request id)
 * copied, so that a waiting span holds its own text and not the pool's or
 * the whole head, and the access log's captures (headers, addresses) left
 * out. A Buffer round trip per id did the same through four calls into C++:
 * ~13 µs a span in a sidecar, where this runs once in a hundred requests and
 * so always cold; `flat` takes 2–3 µs for both ids, measured after 4 MB of
 * other work.
 */
export function queuedRecord(r: RequestRecord): RequestRecord {
  const { requestHeaders: _q, responseHeaders: _s, downstreamRemoteAddress: _r, downstreamLocalAddress: _l, ...rest } = r;
  return {
    ...rest, method: flat(r.method), authority: flat(r.authority), path: flat(r.path), requestId: flat(r.requestId),
    ...(r.traceId !== undefined ? { traceId: flat(r.traceId) } : {}),
    ...(r.spanId !== undefined ? { spanId: flat(r.spanId) } : {}),
    ...(r.parentSpanId !== undefined ? { parentSpanId: flat(r.parentSpanId) } : {}),
  };
}

/** The request's text a queued record holds (characters), for the queue's bound. */
export const requestText = (r: RequestRecord): number => r.method.length + r.authority.length + r.path.length + r.requestId.length;

const hrTime = (ms: number): HrTime => {
  const s = Math.floor(ms / 1000);
  return [s, Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6))];
};

/** `host[:port]` or `[v6][:port]`: the host and the port (`fallback` when none is written). */
export function splitAuthority(authority: string, fallback: number): [host: string, port: number] {
  const close = authority.startsWith('[') ? authority.indexOf(']') : -1;
  const colon = authority.indexOf(':', close + 1);
  if (colon < 0 || (close < 0 && authority.indexOf(':', colon + 1) >= 0)) return [authority, fallback];
  const port = Number(authority.slice(colon + 1));
  return [authority.slice(0, colon), Number.isInteger(port) && port > 0 ? port : fallback];
}

/** Istio's operation name: the service and port a mesh cluster names (`outbound|port|subset|host`, `inbound|port|host`), else the authority. */
export function spanName(r: RequestRecord): string {
  const c = r.cluster;
  if (c !== undefined && (c.startsWith('outbound|') || c.startsWith('inbound|'))) {
    const parts = c.split('|');
    return `${parts[parts.length - 1]}:${parts[1]}/*`;
  }
  return `${r.authority || 'unknown'}/*`;
}

const workloadName = (p: Peer): string | undefined => (p.workload === UNKNOWN ? undefined : `${p.workload}.${p.namespace}`);

function isError(r: RequestRecord, client: boolean): boolean {
  return r.responseFlags.length > 0 || r.status === 0 || r.status >= 500 || (client && r.status >= 400);
}

/** The span of a sampled record (`traceId` and `spanId` set; queuedRecord for one that waits), on the proxy's resource. */
export function spanOf(r: RequestRecord, settings: TracingSettings, resource: Resource, tables: LabelTables | undefined): ReadableSpan {
  const client = r.direction !== 'inbound';
  const a: Attributes = {};
  const method = r.method.toUpperCase();
  if (KNOWN_METHODS.has(method)) a[ATTR_HTTP_REQUEST_METHOD] = method;
  else { a[ATTR_HTTP_REQUEST_METHOD] = '_OTHER'; a[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = r.method; }
  const q = r.path.indexOf('?');
  const path = q < 0 ? r.path : r.path.slice(0, q);
  const [host, port] = splitAuthority(r.authority, 80);
  a[ATTR_SERVER_ADDRESS] = host;
  a[ATTR_SERVER_PORT] = port;
  if (client) {
    a[ATTR_URL_FULL] = `http://${r.authority}${r.path}`.slice(0, settings.maxPathTagLength);
    if (r.upstream !== undefined) {
      const [peer, peerPort] = splitAuthority(r.upstream, 0);
      a[ATTR_NETWORK_PEER_ADDRESS] = peer.replace(/^\[|\]$/g, '');
      if (peerPort) a[ATTR_NETWORK_PEER_PORT] = peerPort;
    }
  } else {
    a[ATTR_URL_PATH] = path.slice(0, settings.maxPathTagLength);
    if (q >= 0) a[ATTR_URL_QUERY] = r.path.slice(q + 1);
    a[ATTR_URL_SCHEME] = 'http';
  }
  a[ATTR_NETWORK_PROTOCOL_VERSION] = r.protocol.startsWith('HTTP/') ? r.protocol.slice(5) : r.protocol;
  if (r.status > 0) a[ATTR_HTTP_RESPONSE_STATUS_CODE] = r.status;
  if (r.grpcStatus !== undefined) a['rpc.grpc.status_code'] = Number(r.grpcStatus);
  if (r.bytesReceived > 0) a['http.request.body.size'] = r.bytesReceived;
  if (r.bytesSent > 0) a['http.response.body.size'] = r.bytesSent;
  const error = isError(r, client);
  if (error) a[ATTR_ERROR_TYPE] = r.responseFlags[0] ?? (r.status === 0 ? 'no_response' : String(r.status));
  meshAttributes(a, r, tables);
  for (const k in a) {
    const v = a[k];
    if (typeof v === 'string' && v.length > settings.maxTagLength) a[k] = v.slice(0, settings.maxTagLength);
  }
  const traceId = r.traceId!;
  const ctx: SpanContext = { traceId, spanId: r.spanId!, traceFlags: SAMPLED };
  const startTime = hrTime(r.startTime);
  return {
    name: spanName(r),
    kind: client ? CLIENT : SERVER,
    spanContext: () => ctx,
    ...(r.parentSpanId ? { parentSpanContext: { traceId, spanId: r.parentSpanId, traceFlags: SAMPLED, isRemote: true } } : {}),
    startTime,
    endTime: hrTime(r.startTime + r.durationMs),
    duration: hrTime(r.durationMs),
    status: error ? { code: STATUS_ERROR, message: r.responseFlags.length ? r.responseFlags.join(',') : `HTTP ${r.status}` } : { code: STATUS_UNSET },
    attributes: a,
    links: NONE,
    events: NONE,
    ended: true,
    resource,
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

function meshAttributes(a: Attributes, r: RequestRecord, tables: LabelTables | undefined): void {
  a['trellis.proxy'] = r.proxy;
  a['trellis.direction'] = r.direction;
  if (r.requestId) a['trellis.request_id'] = r.requestId;
  if (r.cluster !== undefined) a['trellis.upstream_cluster'] = r.cluster;
  if (r.route !== undefined) a['trellis.route'] = r.route;
  if (r.upstream !== undefined) a['trellis.upstream_host'] = r.upstream;
  if (r.attempts !== undefined) a['trellis.attempts'] = r.attempts;
  a['trellis.response_flags'] = r.responseFlags.length ? r.responseFlags.join(',') : '-';
  if (r.sourceIdentity) a['trellis.source.principal'] = r.sourceIdentity;
  if (r.destinationIdentity) a['trellis.destination.principal'] = r.destinationIdentity;
  if (!tables) return;
  const p = peersOf(r, tables);
  const src = workloadName(p.source);
  const dst = workloadName(p.destination);
  if (src) a['trellis.source.workload'] = src;
  if (dst) a['trellis.destination.workload'] = dst;
  if (p.service.service !== UNKNOWN) a['trellis.destination.service'] = p.service.service;
  if (!r.sourceIdentity && p.source.principal !== UNKNOWN) a['trellis.source.principal'] = p.source.principal;
  if (!r.destinationIdentity && p.destination.principal !== UNKNOWN) a['trellis.destination.principal'] = p.destination.principal;
}
