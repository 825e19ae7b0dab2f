/**
 * PeerAuthentication, RequestAuthentication and RateLimitPolicy resources
 * that apply to no workload (TRL0127, as for AuthorizationPolicies), each
 * decided by the rule its compiler applies:
 *
 * - PeerAuthentication (peer-authn.ts): a selector picks workloads of the
 *   policy's own namespace (in the root namespace too); without one the
 *   policy covers its namespace, or the mesh from the root namespace.
 * - RequestAuthentication: `requestAuthnApplies`, the compiler's predicate.
 * - RateLimitPolicy: `compileRateLimits` for the workload, the compiler
 *   itself. A target Service the registry does not have is another message
 *   (an unknown target), not this one.
 *
 * Nothing is said when the registry knows no workload at all.
 */
import { requestAuthnApplies } from '../../compile/request-authentication.js';
import { compileRateLimits, targetService } from '../../compile/rate-limits.js';
import type { Analyzer, AnalysisContext } from '../analyzer.js';
import { workloadsSelected } from '../lookup.js';
import { labelsText } from './sec-common.js';

function peerAuthentications(ctx: AnalysisContext): void {
  for (const p of ctx.ofKind('PeerAuthentication')) {
    const ns = p.metadata.namespace;
    const sel = p.body.spec.selector?.matchLabels;
    const hasSelector = sel !== undefined && Object.keys(sel).length > 0;
    const meshWide = !hasSelector && ns === ctx.mesh.rootNamespace;
    if (workloadsSelected(ctx, hasSelector ? sel : {}, meshWide ? undefined : ns).length > 0) continue;
    ctx.report('NoMatchingWorkloadsFound', {
      scope: meshWide ? 'in the mesh' : `in namespace ${ns}`,
      labels: hasSelector ? `carries the labels ${labelsText(sel)}` : 'exists (the policy has no selector, so it takes the whole namespace)',
    }, { resource: p, field: hasSelector ? ['spec', 'selector', 'matchLabels'] : ['metadata', 'namespace'] });
  }
}

function requestAuthentications(ctx: AnalysisContext): void {
  const root = ctx.mesh.rootNamespace;
  for (const p of ctx.ofKind('RequestAuthentication')) {
    if (ctx.registry.workloads().some((w) => requestAuthnApplies(p, root, w))) continue;
    const spec = p.body.spec;
    const ns = p.metadata.namespace;
    const sel = spec.selector?.matchLabels;
    // targetRefs are accepted but not enforced for RequestAuthentication; the loader already says so.
    if (spec.targetRefs?.length || spec.targetRef) continue;
    const any = sel === undefined || Object.keys(sel).length === 0;
    ctx.report('NoMatchingWorkloadsFound', { scope: ns === root ? 'in the mesh' : `in namespace ${ns}`, labels: any ? 'exists (the policy has no selector, so it takes the whole namespace)' : `carries the labels ${labelsText(sel)}` }, {
      resource: p, field: any ? ['metadata', 'namespace'] : ['spec', 'selector', 'matchLabels'],
    });
  }
}

function rateLimitPolicies(ctx: AnalysisContext): void {
  const trustDomain = ctx.mesh.trustDomain;
  for (const p of ctx.ofKind('RateLimitPolicy')) {
    const svc = targetService(p, ctx.registry);
    if (!svc) continue; // an unknown target: reported as such elsewhere
    const applies = ctx.registry.workloads().some((w) => compileRateLimits({ policies: [p], workload: w, trustDomain, registry: ctx.registry }) !== undefined);
    if (applies) continue;
    ctx.report('NoMatchingWorkloadsFound', {
      scope: `behind Service ${svc.name}.${svc.namespace}`,
      labels: svc.selector ? `carries the labels ${labelsText(svc.selector)} (the Service's selector)` : 'is selected (the Service has no selector)',
    }, { resource: p, field: ['spec', 'targetRef', 'name'] });
  }
}

export const policyWorkloadsAnalyzer: Analyzer = {
  name: 'security.policy-workloads',
  description: 'PeerAuthentication, RequestAuthentication and RateLimitPolicy resources that apply to no workload.',
  reads: ['PeerAuthentication', 'RequestAuthentication', 'RateLimitPolicy', 'MeshConfig', 'Service', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['NoMatchingWorkloadsFound'],
  run(ctx) {
    if (ctx.registry.workloads().length === 0) return;
    peerAuthentications(ctx);
    requestAuthentications(ctx);
    rateLimitPolicies(ctx);
  },
};
