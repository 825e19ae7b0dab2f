/**
 * `trellis.dev/v1alpha1` CompliancePolicy: what the services of a namespace
 * (or of the whole mesh, in the root namespace, or a set of services by name
 * or label) must satisfy, checked by `trellis analyze --compliance`
 * (docs/compliance.md). Istio has no such kind.
 *
 *     spec:
 *       services: [accounts]                  # or selector: { matchLabels: {...} }; neither: the namespace
 *       redundancy: { minInstances: 3 }
 *       highAvailability: { minZones: 2, requireFailover: true }
 *       disasterRecovery: { minRegions: 2 }   # off unless stated
 *       security: { requireStrictMtls: true, requireAllowPolicy: true, requireTlsEgress: true, requireRegistryOnly: true }
 *       runtimeLimits: { maxTimeout: 5s, maxRetries: 3 }
 *       partitioning:                         # the mesh-wide policy only
 *         tenants:
 *         - { name: retail, namespaces: [retail, cards] }
 *         - { name: markets, namespaces: [markets] }
 *
 * Each check is a section; a section that is written is on (`enabled`
 * defaults to true) and its fields default as in `COMPLIANCE_DEFAULTS`. A
 * section no policy states takes the defaults, where disaster recovery and
 * partitioning are off. Which policy decides a section for a service is
 * src/analyze/compliance/policy.ts's business.
 */
import { duration, z, type DeepReadonly } from '../schema.js';
import { parseDuration } from '../duration.js';
import { defineKind } from '../kind.js';
import { isDnsSubdomain, isLowercaseDnsLabel, selectorIssues } from './names.js';

/** What applies where no policy says anything (docs/compliance.md explains each choice). */
export const COMPLIANCE_DEFAULTS = Object.freeze({
  redundancy: Object.freeze({ enabled: true, minInstances: 2 }),
  highAvailability: Object.freeze({ enabled: true, minZones: 2, requireFailover: true }),
  disasterRecovery: Object.freeze({ enabled: false, minRegions: 2 }),
  security: Object.freeze({ enabled: true, requireStrictMtls: true, requireAllowPolicy: true, requireTlsEgress: true, requireRegistryOnly: true }),
  /** No upper latency limit unless one is stated; a timeout on every route, at most 3 retries. */
  runtimeLimits: Object.freeze({ enabled: true, requireTimeout: true, maxRetries: 3 } as { enabled: boolean; requireTimeout: boolean; maxRetries: number; maxTimeout?: string }),
});

const atLeast = (what: string, min: number, off: string) => z.number({ error: `${what} must be a number` })
  .refine((n) => Number.isInteger(n), { message: `${what} must be a whole number` })
  .refine((n) => n >= min, { message: `${what} must be at least ${min}${off}` })
  .refine((n) => n <= 1000, { message: `${what} must be at most 1000` });

const OFF = '; to not check it, set enabled: false';

const redundancy = z.strictObject({
  enabled: z.boolean().optional(),
  /** Instances (registry endpoints: replicas, pods, WorkloadEntries) every service must have. */
  minInstances: atLeast('minInstances', 2, `: one instance is no redundancy${OFF}`).optional(),
});

const highAvailability = z.strictObject({
  enabled: z.boolean().optional(),
  /** Distinct zones the instances of every service must run in. */
  minZones: atLeast('minZones', 2, OFF).optional(),
  /** Whether the DestinationRule callers use must fail over out of a failed zone (outlier detection and locality load balancing). */
  requireFailover: z.boolean().optional(),
});

const disasterRecovery = z.strictObject({
  enabled: z.boolean().optional(),
  /** Distinct regions the instances of every service must run in. */
  minRegions: atLeast('minRegions', 2, OFF).optional(),
});

const security = z.strictObject({
  enabled: z.boolean().optional(),
  /** Every inbound port of every workload is PeerAuthentication STRICT. */
  requireStrictMtls: z.boolean().optional(),
  /** Every workload that serves a service is selected by an ALLOW AuthorizationPolicy. */
  requireAllowPolicy: z.boolean().optional(),
  /** No plaintext to MESH_EXTERNAL ServiceEntry ports: the app speaks TLS, or the DestinationRule originates it. */
  requireTlsEgress: z.boolean().optional(),
  /** MeshConfig outboundTrafficPolicy REGISTRY_ONLY: no traffic to hosts the mesh does not know. */
  requireRegistryOnly: z.boolean().optional(),
});

const runtimeLimits = z.strictObject({
  enabled: z.boolean().optional(),
  /** Every HTTP route has a timeout. */
  requireTimeout: z.boolean().optional(),
  /** The upper latency limit: no route timeout may be longer. Absent: none. */
  maxTimeout: duration({ positive: true }).optional(),
  /** The most retries (VirtualService `retries.attempts`) a route may make. */
  maxRetries: z.number().int({ message: 'maxRetries must be a whole number' }).min(0, { message: 'maxRetries must be 0 or more' }).max(100, { message: 'maxRetries must be at most 100' }).optional(),
});

const tenant = z.strictObject({
  name: z.string().refine(isLowercaseDnsLabel, { message: 'a tenant name must be a lowercase DNS label (a-z, 0-9, "-"), as messages name it' }),
  namespaces: z.array(z.string().refine(isLowercaseDnsLabel, { message: 'a namespace is a lowercase DNS label' }))
    .min(1, { message: 'a tenant needs at least one namespace' }),
});

const partitioning = z.strictObject({
  enabled: z.boolean().optional(),
  /** Which namespaces form each tenant; namespaces of no tenant are shared and not checked. */
  tenants: z.array(tenant).min(2, { message: 'partitioning keeps tenants apart: define at least two tenants' }),
}).superRefine((p, ctx) => {
  const names = new Map<string, number>();
  const owner = new Map<string, string>();
  p.tenants.forEach((t, i) => {
    if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: ['tenants', i, 'name'], message: `tenant "${t.name}" is defined twice (first at tenants[${names.get(t.name)}])` });
    else names.set(t.name, i);
    t.namespaces.forEach((ns, j) => {
      const first = owner.get(ns);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['tenants', i, 'namespaces', j], message: `namespace "${ns}" is already in tenant "${first}": a namespace belongs to one tenant` });
      else owner.set(ns, t.name);
    });
  });
});

const CHECKS = ['redundancy', 'highAvailability', 'disasterRecovery', 'partitioning', 'security', 'runtimeLimits'] as const;

export const compliancePolicySpec = z.strictObject({
  /** Only the services of the policy's namespace (of every namespace, in the root namespace) whose labels match. */
  selector: z.strictObject({ matchLabels: z.record(z.string(), z.string()) }).superRefine((s, ctx) => {
    if (Object.keys(s.matchLabels).length === 0) ctx.addIssue({ code: 'custom', path: ['matchLabels'], message: 'an empty selector selects nothing in particular: leave out selector to cover the whole namespace' });
    selectorIssues(s.matchLabels, ctx, ['matchLabels']);
  }).optional(),
  /** Only these services of the policy's namespace, by name. */
  services: z.array(z.string().refine(isDnsSubdomain, { message: 'a service is named by its name in the policy\'s namespace (such as accounts)' }))
    .min(1, { message: 'services must name at least one service; leave it out to cover the whole namespace' }).optional(),
  redundancy: redundancy.optional(),
  highAvailability: highAvailability.optional(),
  disasterRecovery: disasterRecovery.optional(),
  partitioning: partitioning.optional(),
  security: security.optional(),
  runtimeLimits: runtimeLimits.optional(),
}).superRefine((s, ctx) => {
  if (s.selector && s.services) ctx.addIssue({ code: 'custom', path: ['services'], message: 'a policy picks its services by selector or by name, not both: write two policies' });
  if (!CHECKS.some((c) => s[c] !== undefined)) ctx.addIssue({ code: 'custom', path: [], message: `a CompliancePolicy states at least one check: ${CHECKS.join(', ')}` });
  if (s.partitioning && (s.selector || s.services)) ctx.addIssue({ code: 'custom', path: ['partitioning'], message: 'tenants are defined for the whole mesh: put partitioning in a policy without selector or services' });
  const rl = s.runtimeLimits;
  if (rl?.maxTimeout !== undefined && (parseDuration(rl.maxTimeout) ?? 0) > 86_400_000) ctx.addIssue({ code: 'custom', path: ['runtimeLimits', 'maxTimeout'], message: 'maxTimeout must be at most 24h' });
});

export type CompliancePolicySpec = DeepReadonly<z.infer<typeof compliancePolicySpec>>;
/** The name of one check section. */
export type ComplianceCheck = (typeof CHECKS)[number];
export const COMPLIANCE_CHECKS: readonly ComplianceCheck[] = CHECKS;

export const CompliancePolicy = defineKind({
  kind: 'CompliancePolicy',
  group: 'trellis.dev',
  versions: ['v1alpha1'],
  namespaced: true,
  body: z.strictObject({ spec: compliancePolicySpec, status: z.unknown().optional() }),
  docs: 'What the services of a namespace, of the mesh (root namespace) or of a selection must satisfy: redundancy, zones, regions, tenant partitioning, mTLS and authorization coverage, route timeouts and retries; checked by trellis analyze --compliance.',
});
