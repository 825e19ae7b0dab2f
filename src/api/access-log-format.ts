/**
 * MeshConfig `accessLogFormat`: Envoy's command operators, as Istio passes
 * the field to Envoy. With TEXT encoding the format is a template
 * (`[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%" %RESPONSE_CODE%`);
 * with JSON encoding it is a JSON object whose values are templates, or
 * literal numbers, booleans and null (Envoy's format dictionaries, one level).
 *
 * This module only reads the syntax, for validation (an unknown operator is
 * an error naming it, with the resource's file and line) and for the
 * snapshot, which carries the parsed form; src/telemetry/log-format.ts
 * renders it from a request record.
 */

/** One command operator: `%NAME%`, `%NAME(ARG)%`, `%NAME(ARG):N%`. */
export interface LogOperator {
  /** Upper case; `REQUEST_HEADER` and `RESPONSE_HEADER` are read as `REQ` and `RESP`. */
  readonly op: string;
  /** REQ / RESP: the header, lower case (`:path` for a pseudo-header); START_TIME: its strftime format; ENVIRONMENT: the variable. */
  readonly arg?: string;
  /** REQ / RESP `A?B`: the header used when A is absent. */
  readonly alt?: string;
  /** `:N`: the value cut to N characters. */
  readonly max?: number;
}

export type LogPart = string | LogOperator;

export interface JsonLogField {
  readonly key: string;
  /** A template, or a literal number, boolean or null. */
  readonly value: readonly LogPart[] | number | boolean | null;
}

export type LogFormat = { readonly text: readonly LogPart[] } | { readonly json: readonly JsonLogField[] };

/** The operators Trellis renders; some have nothing to say in Trellis and always give `-` (see docs/running-mesh.md). */
const NO_ARGUMENT = new Set([
  'RESPONSE_CODE', 'RESPONSE_CODE_DETAILS', 'RESPONSE_FLAGS', 'CONNECTION_TERMINATION_DETAILS',
  'BYTES_RECEIVED', 'BYTES_SENT', 'DURATION', 'REQUEST_DURATION', 'RESPONSE_DURATION', 'RESPONSE_TX_DURATION',
  'PROTOCOL', 'UPSTREAM_PROTOCOL', 'UPSTREAM_HOST', 'UPSTREAM_CLUSTER', 'UPSTREAM_CLUSTER_RAW', 'UPSTREAM_LOCAL_ADDRESS', 'UPSTREAM_TRANSPORT_FAILURE_REASON',
  'UPSTREAM_REQUEST_ATTEMPT_COUNT', 'DOWNSTREAM_REMOTE_ADDRESS', 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_LOCAL_ADDRESS', 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'DOWNSTREAM_PEER_URI_SAN', 'UPSTREAM_PEER_URI_SAN',
  'REQUESTED_SERVER_NAME', 'ROUTE_NAME', 'GRPC_STATUS', 'TRACE_ID', 'HOSTNAME',
]);
const HEADER = new Map([['REQ', 'REQ'], ['REQUEST_HEADER', 'REQ'], ['RESP', 'RESP'], ['RESPONSE_HEADER', 'RESP'], ['TRAILER', 'TRAILER'], ['RESPONSE_TRAILER', 'TRAILER']]);

/** Every operator name accepted, for messages. */
const LOG_OPERATORS: readonly string[] = ['START_TIME', ...HEADER.keys(), 'ENVIRONMENT', ...NO_ARGUMENT].sort();

/** The strftime conversions START_TIME takes (`%3f`, `%6f`, `%9f` and `%f`: fractions of the second). */
const TIME_CONVERSION = /%(?:[YmdHMSsjzZ%]|[369]?f)/g;

const OPERATOR = /^%([A-Z][A-Z0-9_]*)(?:\(([^)]*)\))?(?::(\d+))?%/;

/** A template's parts, or what is wrong with it. */
export function parseLogTemplate(template: string): { readonly parts: readonly LogPart[] } | { readonly error: string } {
  const parts: LogPart[] = [];
  let literal = '';
  for (let i = 0; i < template.length;) {
    const at = template.indexOf('%', i);
    if (at < 0) { literal += template.slice(i); break; }
    literal += template.slice(i, at);
    const m = OPERATOR.exec(template.slice(at));
    if (!m) {
      return { error: `the "%" at character ${at + 1} starts no command operator: write %NAME%, %NAME(ARG)% or %NAME(ARG):LENGTH% (operators: ${LOG_OPERATORS.join(', ')})` };
    }
    const op = operator(m[1]!, m[2], m[3]);
    if ('error' in op) return op;
    if (literal) parts.push(literal);
    literal = '';
    parts.push(op);
    i = at + m[0].length;
  }
  if (literal) parts.push(literal);
  return { parts };
}

function operator(name: string, arg: string | undefined, max: string | undefined): LogOperator | { readonly error: string } {
  const length = max === undefined ? {} : { max: Number(max) };
  const header = HEADER.get(name);
  if (header) {
    if (!arg) return { error: `%${name}% needs the header: %${name}(X-REQUEST-ID)%, or %${name}(A?B)% for B when A is absent` };
    const q = arg.indexOf('?');
    const first = (q < 0 ? arg : arg.slice(0, q)).trim().toLowerCase();
    const alt = q < 0 ? undefined : arg.slice(q + 1).trim().toLowerCase();
    if (!first || alt === '') return { error: `%${name}(${arg})% names no header${alt === '' ? ' after "?"' : ''}` };
    return { op: header, arg: first, ...(alt !== undefined ? { alt } : {}), ...length };
  }
  if (name === 'START_TIME') {
    if (arg === undefined || arg === '') return { op: name, ...length };
    const unknown = arg.replace(TIME_CONVERSION, '').match(/%./);
    if (unknown) return { error: `%START_TIME(${arg})% uses ${unknown[0]}, which Trellis does not format (it takes %Y %m %d %H %M %S %s %j %z %Z %f %3f %6f %9f and %%)` };
    return { op: name, arg, ...length };
  }
  if (name === 'ENVIRONMENT') {
    if (!arg) return { error: '%ENVIRONMENT% needs the variable: %ENVIRONMENT(POD_NAME)%' };
    return { op: name, arg, ...length };
  }
  if (NO_ARGUMENT.has(name)) {
    if (arg !== undefined) return { error: `%${name}% takes no argument, not "(${arg})"` };
    return { op: name, ...length };
  }
  return { error: `%${name}% is not a command operator Trellis knows (operators: ${LOG_OPERATORS.join(', ')})` };
}

/**
 * The format of MeshConfig `accessLogFormat` under `encoding`: a template
 * for TEXT; for JSON, an object of templates and literals (nested objects
 * and arrays are refused).
 */
export function parseLogFormat(format: string, encoding: 'JSON' | 'TEXT'): { readonly format: LogFormat } | { readonly error: string } {
  if (encoding === 'TEXT') {
    const t = parseLogTemplate(format);
    return 'error' in t ? t : { format: { text: t.parts } };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(format);
  } catch (e) {
    return { error: `with JSON encoding, accessLogFormat must be a JSON object of field names and templates (${(e as Error).message})` };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { error: 'with JSON encoding, accessLogFormat must be a JSON object of field names and templates' };
  const json: JsonLogField[] = [];
  for (const [key, v] of Object.entries(doc)) {
    if (typeof v === 'string') {
      const t = parseLogTemplate(v);
      if ('error' in t) return { error: `field "${key}": ${t.error}` };
      json.push({ key, value: t.parts });
    } else if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
      json.push({ key, value: v });
    } else {
      return { error: `field "${key}": a value is a template string, a number, a boolean or null (Trellis takes no nested objects or arrays)` };
    }
  }
  return { format: { json } };
}

/**
 * The encoding a format is read with: `accessLogEncoding` when given; else
 * JSON when the format is an object (`{…}`), TEXT otherwise, so that an
 * Istio MeshConfig (whose default encoding is TEXT) reads as it was meant.
 */
export function logFormatEncoding(format: string, encoding: 'JSON' | 'TEXT' | undefined): 'JSON' | 'TEXT' {
  return encoding ?? (format.trimStart().startsWith('{') ? 'JSON' : 'TEXT');
}
