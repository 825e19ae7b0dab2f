/**
 * Route matches from snapshot data to predicates, built once per snapshot.
 * Conditions that depend only on the proxy itself (sourceLabels, and for
 * sidecars sourceNamespace) are decided at build time.
 *
 * A `headers` / `withoutHeaders` key on a JWT claim (`@request.auth.claims.a.b`
 * or `@request.auth.claims[a][b]`, Istio's forms) is no header: it reads
 * `RouteRequest.claims`, the payload the proxy's RequestAuthentication
 * verified before routing — only a gateway has one (a sidecar routes the
 * app's outbound calls, and tokens are validated at the destination's
 * inbound). At a sidecar such a condition is decided when the snapshot is
 * applied: a claim match never holds, a claim in `withoutHeaders` always
 * does. A route without claim conditions gets no claim test at all.
 */
import type { NamedMatcher, ProxyNode, RouteMatch } from '../protocol/snapshot.js';
import { headerValue, pathOnly, queryParam, type RouteRequest } from './request.js';
import { compileStringMatcher, type StringTest } from './string-match.js';

const CLAIM_KEY = '@request.auth.claims';

/**
 * The claim path of a match key on a JWT claim, read as Istio reads it: the
 * prefix `@request.auth.claims` (any case), then `.a.b` (`.` separates nested
 * claims) or `[a][b]` (for claim names with dots). `undefined` for any other
 * key, which is a header name. Examples: `@request.auth.claims.group` →
 * `['group']`; `@request.auth.claims[iss.example][role]` → `['iss.example', 'role']`.
 */
export function routeClaimPath(key: string): readonly string[] | undefined {
  if (key.length <= CLAIM_KEY.length || key.slice(0, CLAIM_KEY.length).toLowerCase() !== CLAIM_KEY) return undefined;
  const rest = key.slice(CLAIM_KEY.length);
  if (rest[0] === '.' && rest.length > 1) return rest.slice(1).split('.');
  if (rest[0] === '[' && rest.endsWith(']') && rest.length > 2) return rest.slice(1, -1).split('][');
  return undefined;
}

export type RequestTest = (req: RouteRequest) => boolean;

const always: RequestTest = () => true;

/** Whether `labels` contains every pair of `required`. */
export function labelsMatch(required: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const k in required) if (labels[k] !== required[k]) return false;
  return true;
}

/**
 * A predicate for one match block, or `undefined` when the block can never
 * apply to this proxy (its sourceLabels or sourceNamespace exclude it).
 */
export function compileRouteMatch(m: RouteMatch, node: ProxyNode, tableGateways?: readonly string[]): RequestTest | undefined {
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, node.labels)) return undefined;
  const sidecar = node.kind === 'sidecar';
  if (m.sourceNamespace !== undefined && sidecar && m.sourceNamespace !== node.namespace) return undefined;
  if (m.gateways && m.gateways.length > 0 && sidecar && !m.gateways.includes('mesh')) return undefined;
  const tests: RequestTest[] = [];
  if (m.uri) { const t = compileStringMatcher(m.uri); tests.push((r) => t(pathOnly(r.path))); }
  if (m.method) { const t = compileStringMatcher(m.method); tests.push((r) => t(r.method)); }
  if (m.scheme) { const t = compileStringMatcher(m.scheme); tests.push((r) => t(r.scheme)); }
  if (m.authority) { const t = compileStringMatcher(m.authority); tests.push((r) => t(r.host)); }
  if (m.port !== undefined) { const p = m.port; tests.push((r) => r.port === p); }
  if (!sidecar && m.sourceNamespace !== undefined) { const ns = m.sourceNamespace; tests.push((r) => r.sourceNamespace === ns); }
  if (!sidecar && m.gateways && m.gateways.length > 0) {
    // A gateway's route table knows which Gateways listen on its port: decide now.
    if (tableGateways) {
      if (!m.gateways.some((g) => tableGateways.includes(g))) return undefined;
    } else {
      const gws = new Set(m.gateways);
      tests.push((r) => r.gateway !== undefined && gws.has(r.gateway));
    }
  }
  for (const h of m.headers) {
    const claim = routeClaimPath(h.name);
    if (!claim) tests.push(named(h, (r, n) => headerValue(r, n)));
    else if (sidecar) return undefined; // no token is validated before a sidecar routes
    else tests.push(claimTest(claim, h));
  }
  for (const h of m.withoutHeaders) {
    const claim = routeClaimPath(h.name);
    if (claim && sidecar) continue; // holds: a sidecar never knows claims
    const t = claim ? claimTest(claim, h) : named(h, (r, n) => headerValue(r, n));
    tests.push((r) => !t(r));
  }
  for (const q of m.queryParams) tests.push(named(q, (r, n) => queryParam(r.path, n)));
  if (tests.length === 0) return always;
  if (tests.length === 1) return tests[0];
  return (r) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(r)) return false;
    return true;
  };
}

function named(n: NamedMatcher, read: (r: RouteRequest, name: string) => string | undefined): RequestTest {
  const name = n.name;
  const t: StringTest | undefined = n.match ? compileStringMatcher(n.match) : undefined;
  return (r) => {
    const v = read(r, name);
    if (v === undefined) return false;
    return t ? t(v) : true;
  };
}

/**
 * A claim condition, as Envoy's metadata matcher on the JWT payload that
 * Istio generates: a string claim matches when the string does, a list claim
 * when one of its strings does; `{}` holds when the claim is there. No
 * claims (no valid token) or no such claim: false. Numbers, booleans and
 * objects match no string.
 */
function claimTest(path: readonly string[], n: NamedMatcher): RequestTest {
  const t: StringTest | undefined = n.match ? compileStringMatcher(n.match) : undefined;
  return (r) => {
    const v = claimAt(r.claims, path);
    if (v === undefined || v === null) return false;
    if (!t) return true;
    if (typeof v === 'string') return t(v);
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'string' && t(x)) return true;
    }
    return false;
  };
}

/** The value at a claim path; own properties only, so `__proto__` or `constructor` find nothing a token did not carry. */
function claimAt(claims: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): unknown {
  let v: unknown = claims;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

/**
 * A predicate for a route's list of alternatives: any matches. `undefined`
 * when no alternative can apply to this proxy. An empty list matches all.
 */
export function compileMatchList(ms: readonly RouteMatch[], node: ProxyNode, tableGateways?: readonly string[]): RequestTest | undefined {
  if (ms.length === 0) return always;
  const alts = ms.map((m) => compileRouteMatch(m, node, tableGateways)).filter((t): t is RequestTest => t !== undefined);
  if (alts.length === 0) return undefined;
  if (alts.length === 1) return alts[0];
  return (r) => alts.some((t) => t(r));
}
