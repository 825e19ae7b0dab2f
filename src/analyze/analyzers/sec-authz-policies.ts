/**
 * Istio's AuthorizationPoliciesAnalyzer, decided the Trellis way:
 *
 * - TRL0101 for each `source.namespaces` / `notNamespaces` entry that names
 *   no namespace of the mesh (the registry's, or one a resource of the
 *   configuration is in), one message per entry as Istio does. Whether a
 *   namespace matches is asked of the proxy's own matcher (`namespaceTest`),
 *   so an entry that differs from a namespace only in letter case is
 *   reported (Istio's analyzer compares without case, its proxies with case).
 * - TRL0127 for a policy that applies to no workload: the compiler's
 *   `selects` over every registry workload (root-namespace policies mesh-wide,
 *   selectors, targetRefs). A mesh-wide policy without a selector applies to
 *   every workload and is never reported. When the registry knows no workload
 *   at all (configuration analysed without workloads) nothing is said.
 */
import { namespaceTest } from '../../policy/authz-match.js';
import type { Analyzer, AnalysisContext } from '../analyzer.js';
import { authzWorkloads, labelsText, type AuthorizationPolicyResource } from './sec-common.js';

function namespaceRefs(ctx: AnalysisContext, p: AuthorizationPolicyResource): void {
  // A namespace holding any resource of the configuration exists too (Kubernetes keeps no resource in a missing one).
  const known = [...new Set([...ctx.registry.namespaces(), ...ctx.config.resources.map((r) => r.metadata.namespace).filter((ns) => ns !== '')])];
  const principalIn = (ns: string) => `${ctx.mesh.trustDomain}/ns/${ns}/sa/default`;
  p.body.spec.rules?.forEach((rule, i) => rule.from?.forEach((f, j) => {
    for (const field of ['namespaces', 'notNamespaces'] as const) {
      f.source[field]?.forEach((pattern, k) => {
        const test = namespaceTest(pattern);
        if (known.some((ns) => test(principalIn(ns)))) return;
        const sameButCase = known.find((ns) => ns.toLowerCase() === pattern.toLowerCase());
        const effect = field === 'namespaces' ? 'this source never matches a caller from it' : 'excluding it excludes no caller';
        const hint = sameButCase
          ? `; namespace names are matched with case: write "${sameButCase}"`
          : `: ${effect}; fix the name (a "*" may open or close it) or declare the namespace`;
        ctx.report('ReferencedResourceNotFound', { what: pattern.includes('*') ? 'namespace matching' : 'namespace', name: pattern, hint }, {
          resource: p, field: ['spec', 'rules', i, 'from', j, 'source', field, k],
        });
      });
    }
  }));
}

function noWorkloads(ctx: AnalysisContext, p: AuthorizationPolicyResource): void {
  if (authzWorkloads(ctx, p).length > 0) return;
  const spec = p.body.spec;
  const ns = p.metadata.namespace;
  const meshWide = ns === ctx.mesh.rootNamespace;
  const sel = spec.selector?.matchLabels;
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : undefined);
  if (sel && Object.keys(sel).length > 0) {
    ctx.report('NoMatchingWorkloadsFound', { scope: meshWide ? 'in the mesh' : `in namespace ${ns}`, labels: `carries the labels ${labelsText(sel)}` }, {
      resource: p, field: ['spec', 'selector', 'matchLabels'],
    });
  } else if (refs && refs.length > 0) {
    const names = refs.map((r) => `${r.kind} ${r.name}`).join(', ');
    ctx.report('NoMatchingWorkloadsFound', { scope: `behind the targets (${names})`, labels: 'carries the labels of their selectors' }, {
      resource: p, field: spec.targetRefs ? ['spec', 'targetRefs'] : ['spec', 'targetRef'],
    });
  } else if (!meshWide) {
    ctx.report('NoMatchingWorkloadsFound', { scope: `in namespace ${ns}`, labels: 'exists (the policy has no selector, so it takes the whole namespace)' }, {
      resource: p, field: ['metadata', 'namespace'],
    });
  }
}

export const authorizationPoliciesAnalyzer: Analyzer = {
  name: 'authorizationpolicy.references',
  description: 'AuthorizationPolicy source namespaces that name no namespace, and policies that apply to no workload.',
  reads: ['AuthorizationPolicy', 'MeshConfig', 'Namespace', 'Pod', 'Deployment', 'WorkloadEntry', 'App', 'Service', 'ServiceEntry'],
  messages: ['ReferencedResourceNotFound', 'NoMatchingWorkloadsFound'],
  istio: ['auth.AuthorizationPoliciesAnalyzer'],
  run(ctx) {
    const anyWorkload = ctx.registry.workloads().length > 0;
    for (const p of ctx.ofKind('AuthorizationPolicy')) {
      if (anyWorkload) noWorkloads(ctx, p);
      namespaceRefs(ctx, p);
    }
  },
};
