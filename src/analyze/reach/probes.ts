/**
 * Which requests the matrix sends to a destination: one per distinct method
 * and path condition that the destination's AuthorizationPolicies (and the
 * routes of the callers' VirtualServices for it) name, crossed, plus a
 * representative "any other" method and path that match none of them. Since
 * every rule is built from those conditions, the answers to these requests
 * are the answers to every request that differs only in method and path.
 * The representatives are checked with the policies' own matchers
 * (src/policy/authz-match.ts), so "/accounts/*" is stood for by a path that
 * pattern really matches, and "other paths" by one no pattern matches.
 */
import { pathTest } from '../../policy/authz-match.js';
import { compileStringMatcher } from '../../policy/string-match.js';
import type { AuthzPolicy } from '../../protocol/authz.js';
import type { StringMatcher, VirtualHost } from '../../protocol/snapshot.js';
import type { ProbeSpec } from './model.js';

/** Protocols whose requests the inbound proxy sees as HTTP; the others are authorized as TCP connections. */
const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-Web', 'UNSPECIFIED']);

export function isHttpProtocol(protocol: string): boolean {
  return HTTP_PROTOCOLS.has(protocol);
}

export const OTHER_METHODS = 'other methods';
export const OTHER_PATHS = 'other paths';
export const ANY = '*';

const METHOD_CANDIDATES = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const PATH_CANDIDATES = ['/', '/reach-probe', '/reach-probe/other/path', '/reach-probe.txt', '/_/reach-probe'];

/** What probes are made from: conditions gathered from policies and routes. */
export interface ProbeConditions {
  readonly methods: Set<string>;
  /** Path patterns in AuthorizationPolicy syntax (exact, `prefix*`, `*suffix`, `*`, `{*}` templates). */
  readonly policyPaths: Set<string>;
  /** URI matchers of routes (exact and prefix; regexes are only checked against, never stood for). */
  readonly routeUris: StringMatcher[];
}

export function emptyConditions(): ProbeConditions {
  return { methods: new Set(), policyPaths: new Set(), routeUris: [] };
}

/** Adds the methods and paths named by policies' operations. */
export function addPolicyConditions(c: ProbeConditions, policies: readonly AuthzPolicy[]): void {
  for (const p of policies) {
    for (const r of p.rules) {
      for (const o of r.to ?? []) {
        for (const m of [...(o.methods ?? []), ...(o.notMethods ?? [])]) c.methods.add(m);
        for (const q of [...(o.paths ?? []), ...(o.notPaths ?? [])]) c.policyPaths.add(q);
      }
    }
  }
}

/** Adds the method and URI matches of the routes of a caller's virtual host for the destination. */
export function addRouteConditions(c: ProbeConditions, vh: VirtualHost): void {
  for (const r of vh.routes) {
    for (const m of r.match) {
      if (m.method && m.method.kind === 'exact' && !m.method.ignoreCase) c.methods.add(m.method.value);
      if (m.uri && !(m.uri.kind === 'prefix' && m.uri.value === '/') && !c.routeUris.some((u) => u.kind === m.uri!.kind && u.value === m.uri!.value)) c.routeUris.push(m.uri);
    }
  }
}

/** A concrete path that `pattern` (AuthorizationPolicy syntax) matches, or undefined. */
function representative(pattern: string): string | undefined {
  let p: string;
  if (pattern === '*') p = '/';
  else if (pattern.includes('{*}') || pattern.includes('{**}')) p = pattern.replace(/\{\*\*\}|\{\*\}/g, 'x');
  else if (pattern.endsWith('*')) { const pre = pattern.slice(0, -1); p = pre + (pre.endsWith('/') ? 'x' : '/x'); }
  else if (pattern.startsWith('*')) { const suf = pattern.slice(1); p = `/x${suf}`; }
  else p = pattern;
  if (!p.startsWith('/')) p = `/${p}`;
  return pathTest(pattern)(p) ? p : undefined;
}

function routeRepresentative(m: StringMatcher): string | undefined {
  if (m.kind === 'regex' || m.ignoreCase) return undefined;
  const p = m.kind === 'prefix' ? m.value + (m.value.endsWith('/') ? 'x' : '/x') : m.value;
  return p.startsWith('/') && compileStringMatcher(m)(p) ? p : undefined;
}

/** The probes of a destination: HTTP methods × paths, or one TCP connection. */
export function probesOf(c: ProbeConditions, http: boolean): ProbeSpec[] {
  if (!http) return [{ method: '', path: '', tcp: true, methodLabel: 'TCP', pathLabel: 'connection' }];
  const methods = [...c.methods].sort();
  const methodProbes: [string, string][] = methods.map((m) => [m, m]);
  if (methods.length === 0) methodProbes.push(['GET', ANY]);
  else {
    const other = METHOD_CANDIDATES.find((m) => !c.methods.has(m)) ?? 'PURGE';
    methodProbes.push([other, OTHER_METHODS]);
  }
  const paths = new Map<string, string>(); // concrete path → label
  for (const pattern of [...c.policyPaths].sort()) {
    const r = representative(pattern);
    if (r !== undefined && !paths.has(r)) paths.set(r, pattern);
  }
  for (const u of c.routeUris) {
    const r = routeRepresentative(u);
    if (r !== undefined && ![...paths.keys()].includes(r)) paths.set(r, u.kind === 'prefix' ? `${u.value}*` : u.value);
  }
  const tests = [...[...c.policyPaths].map((p) => pathTest(p)), ...c.routeUris.map((u) => compileStringMatcher(u))];
  const pathProbes: [string, string][] = [...paths.entries()];
  if (tests.length === 0) pathProbes.push(['/', ANY]);
  else {
    const other = PATH_CANDIDATES.find((p) => !tests.some((t) => t(p)));
    if (other !== undefined) pathProbes.push([other, OTHER_PATHS]);
  }
  const out: ProbeSpec[] = [];
  for (const [method, methodLabel] of methodProbes) {
    for (const [path, pathLabel] of pathProbes) out.push({ method, path, tcp: false, methodLabel, pathLabel });
  }
  return out;
}

/** The conditions of both, each once: two matrices compared on the same requests. */
export function mergeConditions(a: ProbeConditions, b: ProbeConditions): ProbeConditions {
  const out = emptyConditions();
  for (const c of [a, b]) {
    for (const m of c.methods) out.methods.add(m);
    for (const p of c.policyPaths) out.policyPaths.add(p);
    for (const u of c.routeUris) if (!out.routeUris.some((x) => x.kind === u.kind && x.value === u.value)) out.routeUris.push(u);
  }
  return out;
}
