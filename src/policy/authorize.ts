/**
 * The authorization decision, built once per snapshot from the compiled
 * policies of the workload (`WorkloadAuthz`) into plain predicates: no
 * per-request lookups, parsing or regex compilation. Istio's semantics:
 *
 * 1. a matching CUSTOM policy denies (Trellis has no external authorizer and
 *    fails closed);
 * 2. a matching DENY policy denies;
 * 3. when no ALLOW policy selects the workload, the request is allowed;
 * 4. a matching ALLOW policy allows; otherwise it is denied.
 * AUDIT policies never change the decision; the ones that match are listed.
 *
 * TCP connections have no HTTP attributes. A rule that uses one (hosts,
 * methods, paths, request principals, `request.*` conditions) is dropped
 * from an ALLOW policy (a smaller allow) and loses only that part in a DENY,
 * AUDIT or CUSTOM policy (a wider deny), as Istio does. Conditions on Envoy
 * filter metadata (`experimental.envoy.filters.*`) cannot be evaluated by
 * Trellis and are treated the same way on both protocols: an ALLOW rule
 * with one never matches, a DENY rule acts as if it held.
 */
import type { AuthzCondition, AuthzOperation, AuthzPolicy, AuthzRule, AuthzSource, WorkloadAuthz } from '../protocol/authz.js';
import {
  anyPattern, claimPath, claimStrings, namespaceTest, pathTest, requestPrincipalTest, serviceAccountTest, trustDomainOf,
  type StringTest, type TokenIdentity, type TokenTest,
} from './authz-match.js';
import { compileIpBlocks } from './ip-match.js';

/** What authorization reads of a connection or request. */
export interface AuthzRequest {
  /** A TCP connection (no HTTP attributes) rather than an HTTP request. */
  readonly tcp: boolean;
  /** The peer's identity from its mTLS certificate, Istio form `cluster.local/ns/x/sa/y`; absent for plaintext. */
  readonly principal?: string;
  /** The direct peer's address. */
  readonly sourceIp: string;
  /** The original client's address (X-Forwarded-For, PROXY protocol); the peer's when absent. */
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  /** The port the workload received on (the target port). */
  readonly destinationPort: number;
  readonly sni?: string;
  readonly method?: string;
  /** The normalized path, without query (anything from `?` is ignored all the same). */
  readonly path?: string;
  /** Host or authority as sent, port included. */
  readonly host?: string;
  /** Header values by lowercase name; a repeated header as a list, each value matched on its own. */
  readonly headers?: (name: string) => string | readonly string[] | undefined;
  /** `iss/sub` of a validated JWT. */
  readonly requestPrincipal?: string;
  /** Claims of the validated JWT. */
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly audiences?: readonly string[];
  readonly presenter?: string;
}

export interface AuthzDecision {
  readonly allowed: boolean;
  /** `namespace/name` of the policy that decided, when one did. */
  readonly policy?: string;
  /** Index of the rule that matched in that policy's `spec.rules`. */
  readonly rule?: number;
  /** For logs and `simulate`: "denied by DENY policy ns/x rule 0", "no ALLOW policy matched", … */
  readonly reason: string;
  /** AUDIT policies that matched (`namespace/name`). */
  readonly audit?: readonly string[];
}

export type Authorizer = (req: AuthzRequest) => AuthzDecision;

type Pred = (r: AuthzRequest) => boolean;

interface BuiltRule { readonly index: number; readonly http?: Pred; readonly tcp?: Pred; /** The decision when this rule decides. */ readonly decision: AuthzDecision }
interface BuiltPolicy { readonly name: string; readonly rules: readonly BuiltRule[] }

const NO_POLICY: AuthzDecision = Object.freeze({ allowed: true, reason: 'no policy selects this workload' });

/** The authorizer of a workload; undefined authz (no policy selects it) allows everything. */
export function buildAuthorizer(authz: WorkloadAuthz | undefined): Authorizer {
  if (!authz || authz.policies.length === 0) return () => NO_POLICY;
  const of = (action: string) => authz.policies.filter((p) => p.action === action).map((p) => buildPolicy(p));
  const custom = of('CUSTOM');
  const deny = of('DENY');
  const allow = of('ALLOW');
  const audit = of('AUDIT');
  const noAllow: AuthzDecision = Object.freeze({ allowed: true, reason: 'no DENY policy matched and no ALLOW policy selects this workload' });
  const noMatch: AuthzDecision = Object.freeze({ allowed: false, reason: 'no ALLOW policy matched' });
  const withAudit = (d: AuthzDecision, r: AuthzRequest): AuthzDecision => {
    if (audit.length === 0) return d;
    const hits = audit.filter((p) => firstMatch(p, r) !== undefined).map((p) => p.name);
    return hits.length === 0 ? d : Object.freeze({ ...d, audit: Object.freeze(hits) });
  };
  const denying = [...custom, ...deny];
  return (r) => {
    for (const p of denying) {
      const hit = firstMatch(p, r);
      if (hit) return withAudit(hit.decision, r);
    }
    if (allow.length === 0) return withAudit(noAllow, r);
    for (const p of allow) {
      const hit = firstMatch(p, r);
      if (hit) return withAudit(hit.decision, r);
    }
    return withAudit(noMatch, r);
  };
}

/** The first rule of `p` that matches, if any. */
function firstMatch(p: BuiltPolicy, r: AuthzRequest): BuiltRule | undefined {
  for (const rule of p.rules) {
    const t = r.tcp ? rule.tcp : rule.http;
    if (t && t(r)) return rule;
  }
  return undefined;
}

function buildPolicy(p: AuthzPolicy): BuiltPolicy {
  const allow = p.action === 'ALLOW';
  return {
    name: p.name,
    rules: p.rules.map((rule) => {
      const http = buildRule(rule, new Scope(false, allow));
      const tcp = buildRule(rule, new Scope(true, allow));
      return { index: rule.index, ...(http ? { http } : {}), ...(tcp ? { tcp } : {}), decision: decisionOf(p, rule.index) };
    }),
  };
}

function decisionOf(p: AuthzPolicy, rule: number): AuthzDecision {
  const reason = p.action === 'ALLOW' ? `allowed by ${p.name} rule ${rule}`
    : p.action === 'CUSTOM' ? `denied by CUSTOM policy ${p.name} rule ${rule} (no external authorizer in Trellis: fails closed)`
      : p.action === 'AUDIT' ? `audited by ${p.name} rule ${rule}` // never a decision: AUDIT only lists
        : `denied by DENY policy ${p.name} rule ${rule}`;
  return Object.freeze({ allowed: p.action !== 'DENY' && p.action !== 'CUSTOM', policy: p.name, rule, reason });
}

/** How a rule is built: for HTTP or TCP, in an ALLOW policy or not; whether it was dropped. */
class Scope {
  dropped = false;
  constructor(readonly tcp: boolean, readonly allow: boolean) {}
  /** A part that cannot be evaluated here: drops the rule in an ALLOW policy, the part elsewhere. */
  cannot(): undefined {
    if (this.allow) this.dropped = true;
    return undefined;
  }
  /** A part on HTTP attributes: built for HTTP, `cannot()` for TCP. */
  http(make: () => Pred | undefined): Pred | undefined {
    return this.tcp ? this.cannot() : make();
  }
}

/** The predicate of one rule, or undefined when it can never match. */
function buildRule(rule: AuthzRule, s: Scope): Pred | undefined {
  const parts: Pred[] = [];
  if (rule.from) parts.push(or(rule.from.map((f) => and(sourceParts(f, s)))));
  if (rule.to) parts.push(or(rule.to.map((o) => and(operationParts(o, s)))));
  for (const c of rule.when ?? []) {
    const p = conditionPart(c, s);
    if (p) parts.push(p);
  }
  return s.dropped ? undefined : and(parts);
}

const always: Pred = () => true;

function and(ps: readonly Pred[]): Pred {
  if (ps.length === 0) return always;
  if (ps.length === 1) return ps[0]!;
  return (r) => { for (let i = 0; i < ps.length; i++) if (!ps[i]!(r)) return false; return true; };
}

function or(ps: readonly Pred[]): Pred {
  if (ps.length === 1) return ps[0]!;
  return (r) => { for (let i = 0; i < ps.length; i++) if (ps[i]!(r)) return true; return false; };
}

/** `values` (any matches) and `notValues` (none matches) of one attribute, read by `get`. */
function field<T>(values: readonly string[] | undefined, notValues: readonly string[] | undefined, test: (vs: readonly string[]) => (v: T) => boolean, get: (r: AuthzRequest) => T): Pred[] {
  const out: Pred[] = [];
  if (values?.length) { const t = test(values); out.push((r) => t(get(r))); }
  if (notValues?.length) { const t = test(notValues); out.push((r) => !t(get(r))); }
  return out;
}

const principalOf = (r: AuthzRequest) => r.principal ?? '';
const strings = (ignoreCase = false) => (vs: readonly string[]): StringTest => anyPattern(vs, ignoreCase);
const each = (make: (v: string) => StringTest) => (vs: readonly string[]): StringTest => {
  const ts = vs.map(make);
  return (s) => ts.some((t) => t(s));
};
const ips = (vs: readonly string[]) => compileIpBlocks(vs);
const tokens = (vs: readonly string[]): TokenTest => { const ts = vs.map(requestPrincipalTest); return (t) => ts.some((x) => x(t)); };
const ports = (vs: readonly string[]) => { const set = new Set(vs.map(Number)); return (p: number) => set.has(p); };
const group = (principals: readonly string[]) => { const set = new Set(principals); return (p: string) => p !== '' && set.has(p); };

/** The token identity of a request: from its claims, else from `requestPrincipal` split at the last `/`. */
function tokenOf(r: AuthzRequest): TokenIdentity | undefined {
  const iss = r.claims?.iss;
  const sub = r.claims?.sub;
  if (typeof iss === 'string' && typeof sub === 'string') return { iss, sub };
  const rp = r.requestPrincipal;
  if (rp === undefined) return undefined;
  const i = rp.lastIndexOf('/');
  return i < 0 ? { iss: rp, sub: '' } : { iss: rp.slice(0, i), sub: rp.slice(i + 1) };
}

function sourceParts(f: AuthzSource, s: Scope): Pred[] {
  const out: Pred[] = [
    ...field(f.principals, f.notPrincipals, strings(), principalOf),
    ...field(f.namespaces, f.notNamespaces, each(namespaceTest), principalOf),
    ...field(f.serviceAccounts, f.notServiceAccounts, each(serviceAccountTest), principalOf),
    ...field(f.trustDomains, f.notTrustDomains, strings(), (r) => trustDomainOf(principalOf(r))),
    ...field(f.ipBlocks, f.notIpBlocks, ips, (r) => r.sourceIp),
    ...field(f.remoteIpBlocks, f.notRemoteIpBlocks, ips, (r) => r.remoteIp ?? r.sourceIp),
  ];
  if (f.callers) { const t = group(f.callers.principals); out.push((r) => t(principalOf(r))); }
  if (f.notCallers) { const t = group(f.notCallers.principals); out.push((r) => !t(principalOf(r))); }
  if (f.requestPrincipals?.length || f.notRequestPrincipals?.length) {
    const ps = s.http(() => and(field(f.requestPrincipals, f.notRequestPrincipals, tokens, tokenOf)));
    if (ps) out.push(ps);
  }
  return out;
}

/** The path without anything from `?` (a caller that forgot to split the query cannot widen a match). */
const pathOf = (r: AuthzRequest) => { const p = r.path ?? ''; const q = p.indexOf('?'); return q < 0 ? p : p.slice(0, q); };

function operationParts(o: AuthzOperation, s: Scope): Pred[] {
  const out: Pred[] = [...field(o.ports?.map(String), o.notPorts?.map(String), ports, (r) => r.destinationPort)];
  const httpOnly: [readonly string[] | undefined, readonly string[] | undefined, (vs: readonly string[]) => StringTest, (r: AuthzRequest) => string][] = [
    [o.hosts, o.notHosts, strings(true), (r) => r.host ?? ''],
    [o.methods, o.notMethods, strings(), (r) => r.method ?? ''],
    [o.paths, o.notPaths, each(pathTest), pathOf],
  ];
  for (const [values, notValues, test, get] of httpOnly) {
    if (!values?.length && !notValues?.length) continue;
    const p = s.http(() => and(field(values, notValues, test, get)));
    if (p) out.push(p);
  }
  return out;
}

/** Header values by name, each trimmed of surrounding whitespace. */
function headerValues(r: AuthzRequest, name: string): readonly string[] {
  const v = r.headers?.(name);
  if (v === undefined) return [];
  return typeof v === 'string' ? [v.trim()] : v.map((x) => x.trim());
}

/** A test over a list of values: any value matches any pattern; `*` = present. */
function listTest(patterns: readonly string[], presence: boolean): (vs: readonly string[]) => boolean {
  const t = anyPattern(patterns.filter((p) => !(presence && p === '*')));
  const present = presence && patterns.includes('*');
  return (vs) => (present && vs.length > 0) || vs.some(t);
}

function conditionPart(c: AuthzCondition, s: Scope): Pred | undefined {
  const k = c.key;
  const build = (): Pred[] => {
    switch (k) {
      case 'source.ip': return field(c.values, c.notValues, ips, (r) => r.sourceIp);
      case 'remote.ip': return field(c.values, c.notValues, ips, (r) => r.remoteIp ?? r.sourceIp);
      case 'destination.ip': return field(c.values, c.notValues, ips, (r) => r.destinationIp);
      case 'destination.port': return field(c.values, c.notValues, ports, (r) => r.destinationPort);
      case 'connection.sni': return field(c.values, c.notValues, strings(), (r) => r.sni ?? '');
      case 'source.namespace': return field(c.values, c.notValues, each(namespaceTest), principalOf);
      case 'source.principal': return field(c.values, c.notValues, strings(), principalOf);
      case 'source.serviceAccount': return field(c.values, c.notValues, each(serviceAccountTest), principalOf);
      case 'source.trustDomain': return field(c.values, c.notValues, strings(), (r) => trustDomainOf(principalOf(r)));
      case 'request.auth.principal': return field(c.values, c.notValues, tokens, tokenOf);
      case 'request.auth.audiences':
        return field(c.values, c.notValues, (vs) => listTest(vs, false), (r) => r.audiences ?? claimStrings(r.claims, ['aud']));
      case 'request.auth.presenter':
        return field(c.values, c.notValues, (vs) => listTest(vs, false), (r) => (r.presenter !== undefined ? [r.presenter] : claimStrings(r.claims, ['azp'])));
    }
    if (k.startsWith('request.headers[')) {
      const name = k.slice('request.headers['.length, -1).toLowerCase();
      return field(c.values, c.notValues, (vs) => listTest(vs, true), (r) => headerValues(r, name));
    }
    if (k.startsWith('request.auth.claims[')) {
      const path = claimPath(k);
      return field(c.values, c.notValues, (vs) => listTest(vs, false), (r) => claimStrings(r.claims, path));
    }
    return [];
  };
  const known = KNOWN.has(k) || k.startsWith('request.headers[') || k.startsWith('request.auth.claims[');
  if (!known) return s.cannot(); // experimental.envoy.filters.*: no Envoy metadata in Trellis
  if (k.startsWith('request.')) return s.http(() => and(build()));
  return and(build());
}

const KNOWN = new Set([
  'source.ip', 'remote.ip', 'destination.ip', 'destination.port', 'connection.sni', 'source.namespace', 'source.principal',
  'source.serviceAccount', 'source.trustDomain', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter',
]);
