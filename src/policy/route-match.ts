/**
 * Route matches from snapshot data to predicates, built once per snapshot.
 * Conditions that depend only on the proxy itself (sourceLabels, and for
 * sidecars sourceNamespace) are decided at build time.
 */
import type { NamedMatcher, ProxyNode, RouteMatch } from '../protocol/snapshot.js';
import { headerValue, pathOnly, queryParam, type RouteRequest } from './request.js';
import { compileStringMatcher, type StringTest } from './string-match.js';

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
  for (const h of m.headers) tests.push(named(h, (r, n) => headerValue(r, n)));
  for (const h of m.withoutHeaders) { const t = named(h, (r, n) => headerValue(r, n)); tests.push((r) => !t(r)); }
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
