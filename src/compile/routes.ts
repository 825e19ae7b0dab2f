/**
 * VirtualService HTTP routes → snapshot routes. Pure: the destinations' hosts
 * and ports are resolved through the function passed in.
 */
import { parseDuration } from '../api/duration.js';
import type { HTTPMatchRequest, HTTPRoute, Headers, StringMatch } from '../api/kinds/virtual-service.js';
import type {
  CorsPolicy, FaultPolicy, ForwardAction, HeaderOps, MirrorPolicy, NamedMatcher, RetryPolicy, Route, RouteAction, RouteMatch, StringMatcher, WeightedCluster,
} from '../protocol/snapshot.js';
import { DEFAULTS } from './defaults.js';

/** Resolves a destination (host as written, optional port, optional subset) to a cluster name. */
export type ClusterNamer = (host: string, port: number | undefined, subset: string | undefined) => string;

export function clusterName(port: number, subset: string | undefined, host: string): string {
  return `outbound|${port}|${subset ?? ''}|${host}`;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ ...DEFAULTS.retry });

/** The route for a service without a VirtualService: everything to its cluster. */
export function defaultRoute(cluster: string): Route {
  return Object.freeze({
    name: 'default',
    match: Object.freeze([]),
    action: Object.freeze({
      kind: 'forward', clusters: Object.freeze([Object.freeze({ cluster, weight: 100 })]),
      timeoutMs: DEFAULTS.routeTimeoutMs, retry: DEFAULT_RETRY,
    }) satisfies ForwardAction,
  });
}

/** Compiles a VirtualService's http routes; `vsNamespace` resolves short Gateway names in matches to `namespace/name`. */
export function compileHttpRoutes(vsName: string, routes: readonly HTTPRoute[], name: ClusterNamer, vsNamespace = 'default'): Route[] {
  return routes.map((r, i) => {
    const cors = compileCors(r.corsPolicy);
    return Object.freeze({
      name: r.name ?? `${vsName}.${i}`,
      match: Object.freeze((r.match ?? []).map((m) => compileMatch(m, vsNamespace))),
      action: compileAction(r, name),
      ...(cors ? { cors } : {}),
    });
  });
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const NONE: readonly never[] = Object.freeze([]);

function compileMatch(m: HTTPMatchRequest, vsNamespace: string): RouteMatch {
  const out: Mutable<RouteMatch> = { headers: named(m.headers), withoutHeaders: named(m.withoutHeaders), queryParams: named(m.queryParams) };
  if (m.name !== undefined) out.name = m.name;
  // ignoreUriCase applies to exact and prefix URI matches only (Istio's docs; Envoy ignores case_sensitive for regexes).
  if (m.uri) out.uri = matcher(m.uri, m.ignoreUriCase === true && m.uri.regex === undefined);
  if (m.scheme) out.scheme = matcher(m.scheme);
  if (m.method) out.method = matcher(m.method);
  if (m.authority) out.authority = matcher(m.authority);
  if (m.port !== undefined) out.port = m.port;
  if (m.sourceLabels) out.sourceLabels = m.sourceLabels;
  if (m.sourceNamespace !== undefined) out.sourceNamespace = m.sourceNamespace;
  if (m.gateways?.length) out.gateways = Object.freeze(m.gateways.map((g) => (g === 'mesh' || g.includes('/') ? g : `${vsNamespace}/${g}`)));
  return Object.freeze(out);
}

function matcher(m: StringMatch, ignoreCase = false): StringMatcher {
  const kind = m.exact !== undefined ? 'exact' : m.prefix !== undefined ? 'prefix' : 'regex';
  const value = (m.exact ?? m.prefix ?? m.regex)!;
  return Object.freeze(ignoreCase ? { kind, value, ignoreCase } : { kind, value });
}

/** Header / query matches; an empty StringMatch (`{}`) means "present". Sorted by name for determinism. */
function named(m: Readonly<Record<string, StringMatch>> | undefined): readonly NamedMatcher[] {
  if (!m) return NONE;
  return Object.freeze(Object.keys(m).sort().map((name) => {
    const sm = m[name]!;
    const hasValue = sm.exact !== undefined || sm.prefix !== undefined || sm.regex !== undefined;
    return Object.freeze(hasValue ? { name, match: matcher(sm) } : { name });
  }));
}

function compileAction(r: HTTPRoute, name: ClusterNamer): RouteAction {
  if (r.directResponse) {
    const body = r.directResponse.body;
    if (body?.bytes !== undefined) {
      const bytes = Buffer.from(body.bytes, 'base64');
      const text = bytes.toString('utf8');
      // Bytes that are not UTF-8 would not survive as text: they travel as base64 and are sent as they are.
      const exact = Buffer.from(text, 'utf8').equals(bytes);
      return Object.freeze({ kind: 'direct', status: r.directResponse.status, ...(exact ? { body: text } : { bodyBase64: bytes.toString('base64') }) });
    }
    return Object.freeze({ kind: 'direct', status: r.directResponse.status, ...(body?.string !== undefined ? { body: body.string } : {}) });
  }
  if (r.redirect) {
    const d = r.redirect;
    return Object.freeze({
      kind: 'redirect',
      ...(d.uri !== undefined ? { uri: d.uri } : {}),
      ...(d.authority !== undefined ? { authority: d.authority } : {}),
      ...(d.port !== undefined ? { port: d.port } : {}),
      ...(d.derivePort !== undefined ? { derivePort: d.derivePort } : {}),
      ...(d.scheme !== undefined ? { scheme: d.scheme } : {}),
      status: d.redirectCode ?? DEFAULTS.redirectCode,
    });
  }
  const dests = r.route ?? [];
  const clusters: WeightedCluster[] = dests.map((d) => {
    const wc: Mutable<WeightedCluster> = {
      cluster: name(d.destination.host, d.destination.port?.number, d.destination.subset),
      weight: d.weight ?? (dests.length === 1 ? DEFAULTS.singleDestinationWeight : 0),
    };
    const req = headerOps(d.headers?.request);
    const res = headerOps(d.headers?.response);
    if (req) wc.requestHeaders = req;
    if (res) wc.responseHeaders = res;
    return Object.freeze(wc);
  });
  const action: Mutable<ForwardAction> = {
    kind: 'forward',
    clusters: Object.freeze(clusters),
    timeoutMs: r.timeout !== undefined ? parseDuration(r.timeout)! : DEFAULTS.routeTimeoutMs,
    retry: compileRetry(r.retries),
  };
  const rw = r.rewrite;
  if (rw && (rw.uri !== undefined || rw.authority !== undefined || rw.uriRegexRewrite)) {
    const rewrite: Mutable<NonNullable<ForwardAction['rewrite']>> = {};
    if (rw.uri !== undefined) rewrite.uri = rw.uri;
    if (rw.authority !== undefined) rewrite.authority = rw.authority;
    if (rw.uriRegexRewrite) rewrite.uriRegex = Object.freeze({ match: rw.uriRegexRewrite.match, rewrite: rw.uriRegexRewrite.rewrite });
    action.rewrite = Object.freeze(rewrite);
  }
  const fault = compileFault(r.fault);
  if (fault) action.fault = fault;
  const mirrors = compileMirrors(r, name);
  if (mirrors) action.mirrors = mirrors;
  const reqOps = headerOps(r.headers?.request);
  const resOps = headerOps(r.headers?.response);
  if (reqOps) action.requestHeaders = reqOps;
  if (resOps) action.responseHeaders = resOps;
  return Object.freeze(action);
}

function compileRetry(r: HTTPRoute['retries']): RetryPolicy {
  if (!r) return DEFAULT_RETRY;
  const on = r.retryOn !== undefined ? r.retryOn.split(',').map((s) => s.trim()).filter(Boolean) : DEFAULTS.retry.retryOn;
  // Numeric entries in retryOn are retriable status codes, as in Istio.
  const codes = on.filter((s) => /^\d{3}$/.test(s)).map(Number);
  const conditions = on.filter((s) => !/^\d{3}$/.test(s));
  return Object.freeze({
    attempts: r.attempts ?? DEFAULTS.retry.attempts,
    perTryTimeoutMs: r.perTryTimeout !== undefined ? parseDuration(r.perTryTimeout)! : DEFAULTS.retry.perTryTimeoutMs,
    retryOn: Object.freeze(codes.length && !conditions.includes('retriable-status-codes') ? [...conditions, 'retriable-status-codes'] : conditions),
    retriableStatusCodes: Object.freeze(r.retryOn !== undefined ? codes : [...DEFAULTS.retry.retriableStatusCodes]),
    retryRemoteLocalities: r.retryRemoteLocalities ?? DEFAULTS.retry.retryRemoteLocalities,
    backoffBaseMs: r.backoff !== undefined ? parseDuration(r.backoff)! : DEFAULTS.retry.backoffBaseMs,
  });
}

function compileFault(f: HTTPRoute['fault']): FaultPolicy | undefined {
  if (!f || (!f.delay && !f.abort)) return undefined;
  const pct = (p: { value: number } | undefined, legacy?: number) => p?.value ?? legacy ?? DEFAULTS.faultPercentage;
  const out: FaultPolicy = {
    ...(f.delay ? { delay: Object.freeze({ fixedDelayMs: parseDuration(f.delay.fixedDelay ?? f.delay.exponentialDelay!)!, percentage: pct(f.delay.percentage, f.delay.percent) }) } : {}),
    ...(f.abort ? { abort: Object.freeze({
      ...(f.abort.httpStatus !== undefined ? { httpStatus: f.abort.httpStatus } : {}),
      ...(f.abort.grpcStatus !== undefined ? { grpcStatus: f.abort.grpcStatus } : {}),
      percentage: pct(f.abort.percentage),
    }) } : {}),
  };
  return Object.freeze(out);
}

function headerOps(h: NonNullable<Headers['request']> | undefined): HeaderOps | undefined {
  if (!h || (!h.set && !h.add && !h.remove)) return undefined;
  const pairs = (m: Readonly<Record<string, string>> | undefined) =>
    Object.freeze(Object.keys(m ?? {}).sort().map((k) => Object.freeze([k.toLowerCase(), m![k]!] as const)));
  return Object.freeze({ set: pairs(h.set), add: pairs(h.add), remove: Object.freeze((h.remove ?? []).map((s) => s.toLowerCase())) });
}

/** `mirror` + `mirrorPercentage` (one shadow) or `mirrors` (several, each with its own percentage); 100 % when unsaid. */
function compileMirrors(r: HTTPRoute, name: ClusterNamer): readonly MirrorPolicy[] | undefined {
  const shadow = (d: NonNullable<HTTPRoute['mirror']>, p: { value: number } | undefined): MirrorPolicy =>
    Object.freeze({ cluster: name(d.host, d.port?.number, d.subset), percentage: p?.value ?? 100 });
  if (r.mirror) return Object.freeze([shadow(r.mirror, r.mirrorPercentage)]);
  if (r.mirrors?.length) return Object.freeze(r.mirrors.map((m) => shadow(m.destination, m.percentage)));
  return undefined;
}

/** Istio's CorsPolicy as Envoy's: `allowOrigins` (and the deprecated exact `allowOrigin`), lists kept, maxAge in seconds. */
function compileCors(c: HTTPRoute['corsPolicy']): CorsPolicy | undefined {
  if (!c) return undefined;
  const origins = [...(c.allowOrigins ?? []).map((m) => matcher(m)), ...(c.allowOrigin ?? []).map((value) => Object.freeze({ kind: 'exact' as const, value }))];
  const maxAgeMs = c.maxAge !== undefined ? parseDuration(c.maxAge) : undefined;
  return Object.freeze({
    allowOrigins: Object.freeze(origins),
    allowMethods: Object.freeze([...(c.allowMethods ?? [])]),
    allowHeaders: Object.freeze([...(c.allowHeaders ?? [])]),
    exposeHeaders: Object.freeze([...(c.exposeHeaders ?? [])]),
    ...(maxAgeMs !== undefined ? { maxAgeSeconds: Math.floor(maxAgeMs / 1000) } : {}),
    allowCredentials: c.allowCredentials === true,
    unmatchedPreflights: c.unmatchedPreflights === 'IGNORE' ? 'IGNORE' : 'FORWARD',
  });
}
