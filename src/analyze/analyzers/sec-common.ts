/**
 * What the security analyzers share: the compiler's own answer to "which
 * workloads does this AuthorizationPolicy apply to", labels as text, and
 * field paths in the compiler's dotted form turned back into paths.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { compileAuthz, selects, type AuthzInput } from '../../compile/authorization.js';
import type { WorkloadAuthz } from '../../protocol/authz.js';
import type { Workload } from '../../registry/types.js';
import type { AnalysisContext } from '../analyzer.js';

export type AuthorizationPolicyResource = ResourceOf<'AuthorizationPolicy'>;

/** `app=web,version=v1`, as the compiler writes a label set; `{}` for none. */
export function labelsText(labels: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '{}';
}

/** `spec.rules[0].from[1].source.labels` → `['spec', 'rules', 0, 'from', 1, 'source', 'labels']` (diagnostic.ts `parsePath`). */
export { parsePath as parseFieldPath } from '../../api/diagnostic.js';

/** The compiler's mesh input for AuthorizationPolicies (the same fields compiler.ts passes). */
export function authzMesh(ctx: AnalysisContext): AuthzInput['mesh'] {
  return { rootNamespace: ctx.mesh.rootNamespace, trustDomain: ctx.mesh.trustDomain };
}

/** The registry workloads an AuthorizationPolicy applies to, decided by the compiler's `selects`. */
export function authzWorkloads(ctx: AnalysisContext, p: AuthorizationPolicyResource): Workload[] {
  const mesh = authzMesh(ctx);
  return ctx.registry.workloads().filter((w) => selects(p, { policies: [p], workload: w, mesh, registry: ctx.registry }));
}

/**
 * The policy compiled by the compiler for one workload it applies to: the
 * workload its selector describes (its namespace and labels, so a policy is
 * compiled even while no such workload is declared), else the first registry
 * workload it selects (targetRefs). Undefined when it applies to none.
 */
export function compileAlone(ctx: AnalysisContext, p: AuthorizationPolicyResource): WorkloadAuthz | undefined {
  const mesh = authzMesh(ctx);
  const described = { namespace: p.metadata.namespace, labels: { ...(p.body.spec.selector?.matchLabels ?? {}) } };
  const input = (workload: AuthzInput['workload']): AuthzInput => ({ policies: [p], workload, mesh, registry: ctx.registry });
  if (selects(p, input(described))) return compileAuthz(input(described));
  const w = ctx.registry.workloads().find((x) => selects(p, input(x)));
  return w ? compileAuthz(input(w)) : undefined;
}

/** `a, b and c`. */
export function listText(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Up to `max` items, then `and N more`. */
export function shortList(items: readonly string[], max = 5): string {
  if (items.length <= max) return listText(items);
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}
