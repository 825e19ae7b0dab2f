/**
 * Asking the proxies' own authorization engine (src/policy/authorize.ts, over
 * the WorkloadAuthz the compiler puts in a snapshot) whether a caller gets
 * in. A caller "gets in" when one of a few probe requests is allowed: the
 * methods and paths the workload's policies name (so a rule narrowed to
 * `POST /transfer` is tried with exactly that), plus GET and POST of `/`.
 * "Anyone gets in" is the same question for an outsider: an mTLS identity
 * of the mesh's trust domain in a namespace no workload has, which no
 * policy can have meant.
 */
import { buildAuthorizer, type AuthzDecision, type AuthzRequest, type Authorizer } from '../../policy/authorize.js';
import type { WorkloadAuthz } from '../../protocol/authz.js';

/** The request attributes of one probe, without who sends it. */
export type ProbeRequest = Omit<AuthzRequest, 'principal'>;

const authorizers = new WeakMap<WorkloadAuthz, Authorizer>();
const ALLOW_ALL = buildAuthorizer(undefined);

/** The workload's authorizer, built once per compiled authz. */
export function authorizerOf(authz: WorkloadAuthz | undefined): Authorizer {
  if (!authz) return ALLOW_ALL;
  let a = authorizers.get(authz);
  if (!a) authorizers.set(authz, (a = buildAuthorizer(authz)));
  return a;
}

/** A concrete path a path pattern matches: `/api/*` → `/api/`, `*.png` → `/x.png`, `/a/{*}/b` → `/a/x/b`. */
function samplePath(p: string): string {
  if (p === '*') return '/';
  if (p.endsWith('*') && !p.endsWith('{**}') && !p.endsWith('{*}')) return p.slice(0, -1) || '/';
  if (p.startsWith('*')) return `/x${p.slice(1)}`;
  return p.replace(/\{\*\*\}|\{\*\}/g, 'x');
}

const HTTP = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-Web', 'UNSPECIFIED']);

/** Whether an inbound listener's protocol is authorized as HTTP (else as a TCP connection). */
export const isHttp = (protocol: string): boolean => HTTP.has(protocol);

const MAX_PROBES = 64;

/** Probe requests for one target port of a workload. */
export function probes(authz: WorkloadAuthz | undefined, host: string, targetPort: number, http: boolean): ProbeRequest[] {
  const base: ProbeRequest = { tcp: !http, sourceIp: '240.0.0.1', destinationPort: targetPort };
  if (!http) return [base];
  const methods = new Set(['GET', 'POST']);
  const paths = new Set(['/']);
  for (const p of authz?.policies ?? []) {
    for (const r of p.rules) {
      for (const o of r.to ?? []) {
        for (const m of o.methods ?? []) if (m !== '*') methods.add(m.toUpperCase());
        for (const path of o.paths ?? []) paths.add(samplePath(path));
      }
    }
  }
  const out: ProbeRequest[] = [];
  for (const method of methods) for (const path of paths) if (out.length < MAX_PROBES) out.push({ ...base, method, path, host: `${host}:${targetPort}` });
  return out;
}

/** The first probe the principal (undefined: plaintext) is allowed, with the decision. */
export function firstAllowed(authorize: Authorizer, reqs: readonly ProbeRequest[], principal: string | undefined): { req: ProbeRequest; decision: AuthzDecision } | undefined {
  for (const req of reqs) {
    const decision = authorize(principal !== undefined ? { ...req, principal } : req);
    if (decision.allowed) return { req, decision };
  }
  return undefined;
}

/** An identity of the mesh's trust domain that no workload has (Istio form, no `spiffe://`). */
export function outsider(trustDomain: string, namespaces: readonly string[]): string {
  let ns = 'trellis-compliance-outsider';
  while (namespaces.includes(ns)) ns += '-x';
  return `${trustDomain}/ns/${ns}/sa/outsider`;
}

/** A SPIFFE ID in Istio's principal form. */
export const principalOf = (identity: string): string => identity.replace(/^spiffe:\/\//, '');

/** `GET /transfer on port 8080`, `a TCP connection to port 5432`. */
export function describeProbe(r: ProbeRequest): string {
  return r.tcp ? `a TCP connection to port ${r.destinationPort}` : `${r.method} ${r.path} on port ${r.destinationPort}`;
}

/** `allowed by AuthorizationPolicy bank/x rule 0` from a decision, for messages. */
export function describeDecision(d: AuthzDecision): string {
  return d.policy !== undefined ? `AuthorizationPolicy ${d.policy} rule ${d.rule ?? 0}` : 'no ALLOW policy';
}
