/**
 * Which CompliancePolicy decides each check for a service (or a workload, a
 * namespace), section by section, most specific first:
 *
 * 1. a policy of the service's namespace that names it (`services`) or
 *    selects it (`selector`);
 * 2. a policy of the root namespace whose selector selects it (any namespace);
 * 3. the namespace-wide policy of its namespace (no selector, no services);
 * 4. the mesh-wide policy (root namespace, no selector, no services);
 * 5. the defaults (COMPLIANCE_DEFAULTS).
 *
 * A section (redundancy, highAvailability, …) is taken from the first policy
 * in that order that states it; within one level the first loaded wins.
 * Fields a section leaves out take the defaults; a written section is on
 * unless it says `enabled: false`.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { COMPLIANCE_DEFAULTS, type ComplianceCheck, type CompliancePolicySpec } from '../../api/kinds/compliance-policy.js';
import { labelsMatch } from '../../policy/route-match.js';
import type { Service } from '../../registry/types.js';
import type { AnalysisContext, Target } from '../analyzer.js';

export type CompliancePolicyResource = ResourceOf<'CompliancePolicy'>;

type Defaults = typeof COMPLIANCE_DEFAULTS;
/** The sections with defaults (partitioning has none: it is mesh-wide, see `tenancy`). */
export type DefaultedCheck = keyof Defaults;

/** One check's settings as they apply, and who stated them. */
export interface Decided<C extends DefaultedCheck> {
  readonly settings: Defaults[C];
  /** The policy that stated the section; absent: the defaults. */
  readonly policy?: CompliancePolicyResource;
  /** For messages: `CompliancePolicy bank/strict`, or `Trellis's default compliance policy`. */
  readonly by: string;
}

export const DEFAULT_POLICY_NAME = 'Trellis\'s default compliance policy';

const scoped = (p: CompliancePolicyResource) => p.body.spec.selector !== undefined || p.body.spec.services !== undefined;

/** Whether a scoped policy covers a service. */
export function covers(p: CompliancePolicyResource, s: Pick<Service, 'name' | 'namespace' | 'labels'>, rootNamespace: string): boolean {
  const spec = p.body.spec;
  const ns = p.metadata.namespace;
  if (spec.services) return ns === s.namespace && spec.services.includes(s.name);
  if (spec.selector) return (ns === s.namespace || ns === rootNamespace) && labelsMatch(spec.selector.matchLabels, s.labels);
  return ns === s.namespace || ns === rootNamespace;
}

/** The policies in precedence order for a namespace and the services in question (none: the namespace alone). */
export function candidates(ctx: AnalysisContext, namespace: string, services: readonly Pick<Service, 'name' | 'namespace' | 'labels'>[]): CompliancePolicyResource[] {
  const root = ctx.mesh.rootNamespace;
  const all = ctx.ofKind('CompliancePolicy');
  const hits = (p: CompliancePolicyResource) => services.some((s) => covers(p, s, root));
  return [
    ...all.filter((p) => scoped(p) && p.metadata.namespace === namespace && hits(p)),
    ...all.filter((p) => scoped(p) && p.metadata.namespace === root && namespace !== root && p.body.spec.selector !== undefined && hits(p)),
    ...all.filter((p) => !scoped(p) && p.metadata.namespace === namespace && namespace !== root),
    ...all.filter((p) => !scoped(p) && p.metadata.namespace === root),
  ];
}

/** The settings of one check for a namespace and the services in question. */
export function decide<C extends DefaultedCheck>(ctx: AnalysisContext, check: C, namespace: string, services: readonly Pick<Service, 'name' | 'namespace' | 'labels'>[] = []): Decided<C> {
  for (const p of candidates(ctx, namespace, services)) {
    const stated = (p.body.spec as CompliancePolicySpec)[check as ComplianceCheck];
    if (stated !== undefined) {
      return { settings: { ...COMPLIANCE_DEFAULTS[check], enabled: true, ...(stated as object) } as Defaults[C], policy: p, by: p.ref };
    }
  }
  return { settings: COMPLIANCE_DEFAULTS[check], by: DEFAULT_POLICY_NAME };
}

/** Where a message about a policy's section points: the section of the policy, when one stated it. */
export function sectionTarget(d: Decided<DefaultedCheck>, check: ComplianceCheck, field: readonly (string | number)[] = []): Target | undefined {
  return d.policy ? { resource: d.policy, field: ['spec', check, ...field] } : undefined;
}

/** The tenants of the mesh: the partitioning of the first mesh-wide policy that states it (and does not turn it off). */
export interface Tenancy {
  readonly policy: CompliancePolicyResource;
  /** Tenant name by namespace. */
  readonly tenantOf: ReadonlyMap<string, string>;
}

export function tenancy(ctx: AnalysisContext): Tenancy | undefined {
  const root = ctx.mesh.rootNamespace;
  const p = ctx.ofKind('CompliancePolicy').find((x) => x.metadata.namespace === root && !scoped(x) && x.body.spec.partitioning !== undefined);
  const part = p?.body.spec.partitioning;
  if (!p || !part || part.enabled === false) return undefined;
  const tenantOf = new Map<string, string>();
  for (const t of part.tenants) for (const ns of t.namespaces) if (!tenantOf.has(ns)) tenantOf.set(ns, t.name);
  return { policy: p, tenantOf };
}
