/**
 * Access log lines in a format of the user's (MeshConfig `accessLogFormat`,
 * parsed by src/api/access-log-format.ts): each operator becomes a function
 * of the request record once, when the access log opens.
 *
 * TEXT: the template with each operator's value, `-` where there is none,
 * and a newline at the end when the template has none. JSON: one object
 * per line, `"type":"access"` first (for `trellis logs --access`) unless the
 * format has a `type` field of its own, then the fields in the format's
 * order; a field that is exactly one operator keeps its type (numbers stay
 * numbers, no value is `null`), any other is a string.
 *
 * What the record does not carry the proxy copies into it only for formats
 * that name it (`capturesOf`): request and response headers, the downstream
 * addresses. Operators Trellis has nothing for (the requested server name,
 * the upstream's local address, transport failure reasons, the durations
 * Envoy splits a request into) give no value.
 */
import { hostname } from 'node:os';
import type { LogFormat, LogOperator, LogPart, Snapshot } from '../protocol/snapshot.js';
import type { RequestRecord } from '../protocol/request-record.js';

type Value = string | number | undefined;
type Getter = (r: RequestRecord) => Value;

/** Request headers the record has fields for. */
const REQUEST_FIELDS: Readonly<Record<string, Getter>> = {
  ':method': (r) => r.method || undefined,
  ':path': (r) => r.path || undefined,
  ':authority': (r) => r.authority || undefined,
  host: (r) => r.authority || undefined,
  'x-request-id': (r) => r.requestId || undefined,
};
/** Response headers Envoy adds that Trellis does not send, from the record. */
const RESPONSE_FIELDS: Readonly<Record<string, Getter>> = {
  'x-envoy-upstream-service-time': (r) => (r.upstreamMs === undefined ? undefined : Math.round(r.upstreamMs)),
};

const none: Getter = () => undefined;

/** Envoy's response code details as far as the record tells them: `via_upstream` for a response the upstream sent as it was (local replies have their flag). */
export const codeDetails = (r: RequestRecord): string | undefined =>
  (r.status > 0 && r.upstream !== undefined && r.responseFlags.length === 0 ? 'via_upstream' : undefined);
const withoutPort = (a: string | undefined): string | undefined => {
  if (a === undefined) return undefined;
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']'));
  const c = a.lastIndexOf(':');
  return c > 0 && a.indexOf(':') === c ? a.slice(0, c) : a;
};

const FIELDS: Readonly<Record<string, Getter>> = {
  RESPONSE_CODE: (r) => r.status,
  RESPONSE_FLAGS: (r) => (r.responseFlags.length ? r.responseFlags.join(',') : undefined),
  RESPONSE_CODE_DETAILS: codeDetails,
  BYTES_RECEIVED: (r) => r.bytesReceived,
  BYTES_SENT: (r) => r.bytesSent,
  DURATION: (r) => Math.round(r.durationMs),
  PROTOCOL: (r) => r.protocol || undefined,
  UPSTREAM_HOST: (r) => r.upstream,
  UPSTREAM_CLUSTER: (r) => r.cluster,
  // Envoy's cluster name without its alt_stat_name (Istio's default format since 1.22); Trellis's clusters have no other name.
  UPSTREAM_CLUSTER_RAW: (r) => r.cluster,
  ROUTE_NAME: (r) => r.route,
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (r) => r.attempts,
  DOWNSTREAM_REMOTE_ADDRESS: (r) => r.downstreamRemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (r) => withoutPort(r.downstreamRemoteAddress),
  DOWNSTREAM_LOCAL_ADDRESS: (r) => r.downstreamLocalAddress,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (r) => withoutPort(r.downstreamLocalAddress),
  // The verified peer certificate's SPIFFE ID: the caller's on inbound requests, the upstream's on the others.
  DOWNSTREAM_PEER_URI_SAN: (r) => (r.direction === 'inbound' ? r.sourceIdentity : undefined),
  UPSTREAM_PEER_URI_SAN: (r) => (r.direction !== 'inbound' ? r.destinationIdentity : undefined),
  GRPC_STATUS: (r) => r.grpcStatus,
  TRACE_ID: (r) => r.traceId,
};

function getter(o: LogOperator): Getter {
  const g = baseGetter(o);
  const max = o.max;
  if (max === undefined) return g;
  return (r) => {
    const v = g(r);
    return typeof v === 'string' && v.length > max ? v.slice(0, max) : v;
  };
}

function baseGetter(o: LogOperator): Getter {
  switch (o.op) {
    case 'START_TIME': return o.arg ? (r) => strftime(o.arg!, r.startTime) : (r) => new Date(r.startTime).toISOString();
    case 'REQ': {
      const first = header(o.arg!, REQUEST_FIELDS, (r) => r.requestHeaders);
      if (o.alt === undefined) return first;
      const alt = header(o.alt, REQUEST_FIELDS, (r) => r.requestHeaders);
      return (r) => first(r) ?? alt(r);
    }
    case 'RESP': {
      const first = header(o.arg!, RESPONSE_FIELDS, (r) => r.responseHeaders);
      if (o.alt === undefined) return first;
      const alt = header(o.alt, RESPONSE_FIELDS, (r) => r.responseHeaders);
      return (r) => first(r) ?? alt(r);
    }
    case 'ENVIRONMENT': {
      const v = process.env[o.arg!];
      return () => v;
    }
    case 'HOSTNAME': {
      const h = hostname();
      return () => h;
    }
    default: return FIELDS[o.op] ?? none;
  }
}

function header(name: string, fields: Readonly<Record<string, Getter>>, from: (r: RequestRecord) => Readonly<Record<string, string>> | undefined): Getter {
  const field = fields[name];
  if (field) return field;
  return (r) => from(r)?.[name];
}

const textOf = (v: Value): string => (v === undefined || v === '' ? '-' : String(v));

/** A template as one function: its text, `-` for operators without a value. */
function template(parts: readonly LogPart[]): (r: RequestRecord) => string {
  const fns = parts.map((p) => (typeof p === 'string' ? () => p : ((g) => (r: RequestRecord) => textOf(g(r)))(getter(p))));
  if (fns.length === 1) return fns[0]!;
  return (r) => {
    let s = '';
    for (let i = 0; i < fns.length; i++) s += fns[i]!(r);
    return s;
  };
}

/** The line (with its newline) of every record, in `format`. */
export function formatLines(format: LogFormat): (r: RequestRecord) => string {
  if ('text' in format) {
    const t = template(format.text);
    const last = format.text[format.text.length - 1];
    const newline = typeof last === 'string' && last.endsWith('\n') ? '' : '\n';
    return (r) => t(r) + newline;
  }
  const fields = format.json.map((f) => {
    const key = JSON.stringify(f.key);
    const v = f.value;
    if (!Array.isArray(v)) { const literal = `${key}:${JSON.stringify(v)}`; return () => literal; }
    const parts = v as readonly LogPart[];
    const only = parts.length === 1 && typeof parts[0] !== 'string' ? getter(parts[0] as LogOperator) : undefined;
    if (only) return (r: RequestRecord) => { const x = only(r); return `${key}:${x === undefined || x === '' ? 'null' : typeof x === 'number' ? String(x) : JSON.stringify(x)}`; };
    const t = template(parts);
    return (r: RequestRecord) => `${key}:${JSON.stringify(t(r))}`;
  });
  const head = format.json.some((f) => f.key === 'type') ? '{' : '{"type":"access",';
  return (r) => {
    let s = head;
    for (let i = 0; i < fields.length; i++) s += (i ? ',' : '') + fields[i]!(r);
    return `${s}}\n`;
  };
}

/**
 * What the proxy copies into records for a snapshot's access log: the
 * Telemetry's format and the headers its filters read, else MeshConfig's
 * format.
 */
export function snapshotCaptures(s: Pick<Snapshot, 'mesh' | 'accessLogging'>): RecordCaptures | undefined {
  const al = s.accessLogging;
  if (!al) return s.mesh.accessLogFormat ? capturesOf(s.mesh.accessLogFormat) : undefined;
  return capturesOf(al.format, al.filterHeaders);
}

/** What the proxy must copy into a record for `format`: headers by lower-case name, and whether the downstream addresses. */
export interface RecordCaptures {
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
  readonly addresses: boolean;
}

export function capturesOf(format: LogFormat | undefined, filterHeaders: readonly string[] = []): RecordCaptures | undefined {
  const req = new Set<string>(filterHeaders);
  const resp = new Set<string>();
  let addresses = false;
  const visit = (p: LogPart) => {
    if (typeof p === 'string') return;
    if (p.op === 'REQ' || p.op === 'RESP') {
      const into = p.op === 'REQ' ? req : resp;
      const fields = p.op === 'REQ' ? REQUEST_FIELDS : RESPONSE_FIELDS;
      for (const h of [p.arg, p.alt]) if (h !== undefined && !fields[h]) into.add(h);
    } else if (p.op.startsWith('DOWNSTREAM_') && p.op.includes('_ADDRESS')) {
      addresses = true;
    }
  };
  if (format && 'text' in format) format.text.forEach(visit);
  else if (format) for (const f of format.json) if (Array.isArray(f.value)) (f.value as readonly LogPart[]).forEach(visit);
  if (req.size === 0 && resp.size === 0 && !addresses) return undefined;
  return { requestHeaders: [...req], responseHeaders: [...resp], addresses };
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** START_TIME's strftime subset, in UTC (what the parser accepted). */
function strftime(f: string, ms: number): string {
  const d = new Date(ms);
  const frac = Math.floor(ms) % 1000;
  return f.replace(/%([369]?f|[YmdHMSsjzZ%])/g, (_, c: string) => {
    switch (c) {
      case 'Y': return String(d.getUTCFullYear());
      case 'm': return pad(d.getUTCMonth() + 1, 2);
      case 'd': return pad(d.getUTCDate(), 2);
      case 'H': return pad(d.getUTCHours(), 2);
      case 'M': return pad(d.getUTCMinutes(), 2);
      case 'S': return pad(d.getUTCSeconds(), 2);
      case 's': return String(Math.floor(ms / 1000));
      case 'j': return pad(Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3);
      case 'z': return '+0000';
      case 'Z': return 'UTC';
      case '%': return '%';
      case '3f': return pad(frac, 3);
      case '6f': return `${pad(frac, 3)}000`;
      default: return `${pad(frac, 3)}000000`; // f, 9f
    }
  });
}
