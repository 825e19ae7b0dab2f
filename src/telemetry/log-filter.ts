/**
 * Telemetry access log filters (parsed by src/api/log-filter.ts) as
 * predicates over request records. The tree is turned into closures once,
 * when the access log opens; a record then costs a few function calls.
 *
 * CEL reports an error for a missing attribute or for operands of the wrong
 * type, and Envoy then does not log the request. Here there are no errors,
 * only values that make the filter false:
 * - a missing value is `undefined`, and equals nothing (not even `null` or
 *   another missing value);
 * - `==` is strict: a number equals a number of the same value (`400u == 400`),
 *   a string the same string, a boolean the same boolean, `null` only `null`;
 *   `!=` is its negation, so it is true when either side is missing;
 * - `< <= > >=` compare two numbers or two strings (by UTF-16 code units),
 *   anything else is false;
 * - `&&` and `||` short-circuit and take a non-boolean operand as false;
 *   `!x` is true only when x is `false`;
 * - the string methods are false unless target and argument are strings;
 * - `x in [a, b]` is true when x `==` one of the elements.
 */
import type { FilterExpr } from '../protocol/snapshot.js';
import type { RequestRecord } from '../protocol/request-record.js';
import { codeDetails } from './log-format.js';

type Value = string | number | boolean | null | undefined;
type Getter = (r: RequestRecord) => Value;

const urlPath = (path: string): string => { const q = path.indexOf('?'); return q < 0 ? path : path.slice(0, q); };

/** Each attribute from the record, with Istio's meaning for it. */
const ATTRIBUTES: Readonly<Record<string, Getter>> = {
  'response.code': (r) => r.status,
  'response.code_details': (r) => codeDetails(r) ?? '',
  'response.flags': (r) => (r.responseFlags.length ? r.responseFlags.join(',') : '-'),
  'response.grpc_status': (r) => (r.grpcStatus !== undefined && /^\d+$/.test(r.grpcStatus) ? Number(r.grpcStatus) : undefined),
  'response.size': (r) => r.bytesSent,
  'response.total_size': (r) => r.bytesSent,
  'request.method': (r) => r.method,
  'request.path': (r) => r.path,
  'request.url_path': (r) => urlPath(r.path),
  'request.host': (r) => r.authority,
  'request.scheme': () => 'http',
  'request.protocol': (r) => r.protocol,
  'request.id': (r) => r.requestId,
  'request.size': (r) => r.bytesReceived,
  'request.total_size': (r) => r.bytesReceived,
  'request.useragent': (r) => r.requestHeaders?.['user-agent'],
  'request.referer': (r) => r.requestHeaders?.['referer'],
  // Where the producer does not say, only a verified client certificate sets an inbound sourceIdentity.
  'connection.mtls': (r) => r.mtls ?? (r.direction === 'inbound' && r.sourceIdentity !== undefined),
  'source.principal': (r) => r.sourceIdentity,
  'destination.principal': (r) => r.destinationIdentity,
  'upstream.address': (r) => r.upstream,
  'xds.cluster_name': (r) => r.cluster,
  'xds.route_name': (r) => r.route,
  'xds.node': (r) => r.proxy,
};

const missing: Getter = () => undefined;

/** `==`: same type and same value; a missing value equals nothing. */
const equal = (a: Value, b: Value): boolean => a !== undefined && a === b;

/** Whether two values can be ordered: both numbers or both strings. */
const ordered = (a: Value, b: Value): a is number | string =>
  (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string');

const ORDER: Readonly<Record<'<' | '<=' | '>' | '>=', (a: number | string, b: number | string) => boolean>> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

const STRING_METHODS: Readonly<Record<'startsWith' | 'endsWith' | 'contains', (s: string, arg: string) => boolean>> = {
  startsWith: (s, arg) => s.startsWith(arg),
  endsWith: (s, arg) => s.endsWith(arg),
  contains: (s, arg) => s.includes(arg),
};

/** The filter as a predicate: true when the record is to be logged. */
export function compileLogFilter(e: FilterExpr): (r: RequestRecord) => boolean {
  const get = compile(e);
  return (r) => get(r) === true;
}

function compile(e: FilterExpr): Getter {
  switch (e.kind) {
    case 'literal': { const v = e.value; return () => v; }
    // An attribute this build does not know (a tree from a newer control plane) is missing, not a crash.
    case 'attr': return ATTRIBUTES[e.name] ?? missing;
    case 'header': { const name = e.name; return (r) => r.requestHeaders?.[name]; }
    case 'not': { const arg = compile(e.arg); return (r) => arg(r) === false; }
    case 'and': { const l = compile(e.left), rt = compile(e.right); return (r) => l(r) === true && rt(r) === true; }
    case 'or': { const l = compile(e.left), rt = compile(e.right); return (r) => l(r) === true || rt(r) === true; }
    case 'cmp': {
      const l = compile(e.left), rt = compile(e.right);
      if (e.op === '==') return (r) => equal(l(r), rt(r));
      if (e.op === '!=') return (r) => !equal(l(r), rt(r));
      const order = ORDER[e.op];
      return (r) => { const a = l(r), b = rt(r); return ordered(a, b) && order(a, b as typeof a); };
    }
    case 'call': {
      const target = compile(e.target);
      if (e.fn === 'matches') {
        // The parser only lets a string literal through, and has checked that it compiles.
        const re = e.arg.kind === 'literal' && typeof e.arg.value === 'string' ? regex(e.arg.value) : undefined;
        if (!re) return () => false;
        return (r) => { const s = target(r); return typeof s === 'string' && re.test(s); };
      }
      const method = STRING_METHODS[e.fn], arg = compile(e.arg);
      return (r) => { const s = target(r), a = arg(r); return typeof s === 'string' && typeof a === 'string' && method(s, a); };
    }
    case 'in': {
      const l = compile(e.left), items = e.list.map(compile);
      return (r) => { const v = l(r); return items.some((item) => equal(v, item(r))); };
    }
  }
}

function regex(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern);
  } catch {
    return undefined;
  }
}
