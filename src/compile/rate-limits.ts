/**
 * RateLimitPolicies → the limits one workload enforces on its inbound side
 * (`WorkloadRateLimits`, carried in `snapshot.rateLimits`). Pure: the same
 * policies, workload and registry give an equal, deeply frozen result.
 *
 * A policy applies to the workloads its target Service selects (same
 * namespace, the Service's selector matches the workload's labels). What is
 * resolved here so that the proxy needs nothing else:
 *
 * - caller groups (`callers.labels`) become the identities of every workload
 *   that carries the labels (in any namespace), as principals without
 *   `spiffe://` — the form the inbound listener reads from the peer
 *   certificate. An identity shared with a workload outside the group is
 *   limited too: a limit errs on the side of limiting;
 * - principals written in `cluster.local` also stand for the mesh's trust domain;
 * - durations become milliseconds, defaults are filled in (`by: Caller`,
 *   `scope: Local`, `burst = requests`, `per: 1s`, store timeout 50 ms, fail open).
 *
 * `compileOutboundRateLimits` gives a CALLER the limits it sheds load with
 * on its outbound side (`snapshot.outboundRateLimits`): those of every policy
 * with `enforce: InboundAndOutbound` whose target Service the caller can
 * reach and whose `callers` include it, resolved exactly as above.
 *
 * `rateLimitIssues` reports what the schema cannot see: a target Service the
 * registry does not have, with the policy's file and line.
 */
import type { ResourceOf } from '../api/config-set.js';
import { diagnostic, type Diagnostic } from '../api/diagnostic.js';
import { parseWindow, type RateLimitSpec } from '../api/kinds/rate-limit-policy.js';
import { labelsMatch } from '../policy/route-match.js';
import type { RateLimitAlgorithm, RateLimitCallers, RateLimitConfig, RateLimitPolicyConfig, RateLimitStore, WorkloadRateLimits } from '../protocol/rate-limit.js';
import type { Registry, Service } from '../registry/types.js';
import { deepFreeze } from '../api/validate.js';

export type RateLimitPolicyResource = ResourceOf<'RateLimitPolicy'>;

/** What `compileRateLimits` reads. */
export interface RateLimitInput {
  /** Every RateLimitPolicy of the configuration. */
  readonly policies: readonly RateLimitPolicyResource[];
  /** The workload the proxy serves. */
  readonly workload: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> };
  readonly trustDomain: string;
  readonly registry: Registry;
}

/** The store timeout when the policy gives none: short, so that a slow Redis costs a request little. */
export const DEFAULT_STORE_TIMEOUT_MS = 50;
const SPIFFE = 'spiffe://';
const LOCAL_TRUST_DOMAIN = 'cluster.local';

/** The target Service of a policy, or undefined when the registry has none of that name. */
export function targetService(p: RateLimitPolicyResource, registry: Registry): Service | undefined {
  return registry.service(`${p.body.spec.targetRef.name}.${p.metadata.namespace}.svc.${registry.domainSuffix}`);
}

/** The workload's compiled rate limits, or undefined when no policy targets a service it serves. */
export function compileRateLimits(input: RateLimitInput): WorkloadRateLimits | undefined {
  const { workload: w, registry } = input;
  const out: RateLimitPolicyConfig[] = [];
  const groups = new Map<string, string[]>();
  for (const p of input.policies) {
    if (p.metadata.namespace !== w.namespace) continue;
    const svc = targetService(p, registry);
    if (!svc || svc.namespace !== w.namespace || !svc.selector || !labelsMatch(svc.selector, w.labels)) continue;
    out.push(policy(p, svc, input, groups));
  }
  if (out.length === 0) return undefined;
  out.sort((a, b) => cmp(a.name, b.name));
  return deepFreeze({ policies: out });
}

function policy(p: RateLimitPolicyResource, svc: Service, input: RateLimitInput, groups: Map<string, string[]>): RateLimitPolicyConfig {
  const spec = p.body.spec;
  const store: RateLimitStore | undefined = spec.store && spec.limits.some((l) => l.scope === 'Global')
    ? {
      redis: spec.store.redis,
      timeoutMs: spec.store.timeout ? parseWindow(spec.store.timeout)! : DEFAULT_STORE_TIMEOUT_MS,
      failureMode: spec.store.failureMode === 'Closed' ? 'closed' : 'open',
    }
    : undefined;
  return {
    name: `${p.metadata.namespace}/${p.metadata.name}`,
    service: svc.hostname,
    ...(store ? { store } : {}),
    limits: spec.limits.map((l) => limit(l, input, groups)),
  };
}

function limit(l: RateLimitSpec, input: RateLimitInput, groups: Map<string, string[]>): RateLimitConfig {
  const by = l.by === 'All' ? 'all' : l.by === 'Header' ? 'header' : 'caller';
  const algorithm: RateLimitAlgorithm = l.rate
    ? { kind: 'token-bucket', requests: l.rate.requests, periodMs: l.rate.per ? parseWindow(l.rate.per)! : 1000, burst: l.rate.burst ?? l.rate.requests }
    : { kind: 'window', requests: l.quota!.requests, windowMs: parseWindow(l.quota!.per)! };
  return {
    name: l.name,
    ...(l.match ? { match: l.match.map((m) => ({ paths: [...(m.paths ?? [])], methods: (m.methods ?? []).map((x) => x.toUpperCase()) })) } : {}),
    ...(l.callers ? { callers: callers(l.callers, input, groups) } : {}),
    by,
    ...(by === 'header' ? { header: l.header! } : {}),
    scope: l.scope === 'Global' ? 'global' : 'local',
    algorithm,
  };
}

function callers(c: NonNullable<RateLimitSpec['callers']>, input: RateLimitInput, groups: Map<string, string[]>): RateLimitCallers {
  const principals = new Set<string>();
  for (const p of c.principals ?? []) {
    principals.add(p);
    if (p.startsWith(`${LOCAL_TRUST_DOMAIN}/`)) principals.add(input.trustDomain + p.slice(LOCAL_TRUST_DOMAIN.length));
  }
  if (c.labels) for (const p of group(c.labels, input.registry, groups)) principals.add(p);
  return { principals: [...principals].sort(), namespaces: [...new Set(c.namespaces ?? [])].sort() };
}

/** Principals of every workload with the labels, memoized per compile. */
function group(labels: Readonly<Record<string, string>>, registry: Registry, memo: Map<string, string[]>): readonly string[] {
  const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => cmp(a, b)));
  let ids = memo.get(key);
  if (!ids) {
    const set = new Set<string>();
    for (const w of registry.workloads()) if (w.identity.startsWith(SPIFFE) && labelsMatch(labels, w.labels)) set.add(w.identity.slice(SPIFFE.length));
    memo.set(key, (ids = [...set].sort()));
  }
  return ids;
}

/** What `compileOutboundRateLimits` reads. */
export interface OutboundRateLimitInput {
  readonly policies: readonly RateLimitPolicyResource[];
  /** The calling workload: its SPIFFE identity (`spiffe://td/ns/x/sa/y`), namespace and labels. */
  readonly caller: { readonly identity: string; readonly namespace: string; readonly labels: Readonly<Record<string, string>> };
  /** Hosts of the services the caller can reach (those its snapshot has clusters for). */
  readonly reachable: ReadonlySet<string>;
  readonly trustDomain: string;
  readonly registry: Registry;
}

/** Whether a policy asks callers' sidecars to enforce its limits too. */
export const enforcedOutbound = (p: RateLimitPolicyResource): boolean => p.body.spec.enforce === 'InboundAndOutbound';

/**
 * The limits a caller enforces on its outbound side, or undefined when none
 * applies. Each policy keeps only the limits whose `callers` include the
 * caller's principal (or its namespace), without `callers`; a policy left
 * with no limit is left out, and its store when no remaining limit is global.
 */
export function compileOutboundRateLimits(input: OutboundRateLimitInput): WorkloadRateLimits | undefined {
  const principal = input.caller.identity.startsWith(SPIFFE) ? input.caller.identity.slice(SPIFFE.length) : undefined;
  const out: RateLimitPolicyConfig[] = [];
  const groups = new Map<string, string[]>();
  const rl: RateLimitInput = { policies: input.policies, workload: input.caller, trustDomain: input.trustDomain, registry: input.registry };
  for (const p of input.policies) {
    if (!enforcedOutbound(p)) continue;
    const svc = targetService(p, input.registry);
    if (!svc || !input.reachable.has(svc.hostname)) continue;
    const full = policy(p, svc, rl, groups);
    const limits = full.limits.filter((l) => !l.callers || (principal !== undefined && callerIn(l.callers, principal))).map(({ callers: _, ...l }) => l);
    if (limits.length === 0) continue;
    const { store, ...rest } = full;
    out.push({ ...rest, ...(store && limits.some((l) => l.scope === 'global') ? { store } : {}), limits });
  }
  if (out.length === 0) return undefined;
  out.sort((a, b) => cmp(a.name, b.name));
  return deepFreeze({ policies: out });
}

/** The inbound side's caller test (src/policy/rate-limit.ts), for one known principal. */
function callerIn(c: RateLimitCallers, principal: string): boolean {
  return c.principals.includes(principal) || c.namespaces.some((ns) => principal.includes(`/ns/${ns}/`));
}

/** Errors the schema cannot see: a policy whose target Service is not in the registry (it would limit nothing). */
export function rateLimitIssues(policies: readonly RateLimitPolicyResource[], registry: Registry): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const p of policies) {
    if (targetService(p, registry)) continue;
    const name = p.body.spec.targetRef.name;
    out.push(diagnostic('SchemaValidationError', {
      detail: `targetRef names Service "${name}", which namespace ${p.metadata.namespace} does not have; the policy would limit nothing. Name a Service of the policy's namespace`,
    }, { resource: p.ref, position: p.locator.locate(['spec', 'targetRef', 'name'], { key: false }), field: 'spec.targetRef.name' }));
  }
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
