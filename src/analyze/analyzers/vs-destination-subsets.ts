/**
 * `virtualservice.destination-subsets` (Istio's DestinationRuleAnalyzer): a
 * destination's subset is defined by the DestinationRule the proxies of the
 * VirtualService's namespace use for that host. The DestinationRule is the
 * one the compiler picks (`drFor`: the caller's namespace, then the
 * service's, then the root namespace), so a subset defined only in a rule
 * that those proxies never read is reported too.
 */
import { drFor, type IndexedDr } from '../../compile/config-index.js';
import { hostMatches, splitClusterHost } from '../../registry/host.js';
import type { AnalysisContext, Analyzer } from '../analyzer.js';
import { fqdn } from '../lookup.js';
import { destinationsOf, indexOf, listOf, scopesOf, type DestinationAt, type VsResource } from './vs-common.js';

function subsetNames(dr: IndexedDr): string[] {
  return (dr.res.body.spec.subsets ?? []).map((s) => s.name);
}

/** The namespace of the service a host names, for the DestinationRule lookup. */
function serviceNamespace(ctx: AnalysisContext, host: string, fallback: string): string {
  return ctx.registry.service(host)?.namespace ?? splitClusterHost(host, ctx.registry.domainSuffix)?.namespace ?? fallback;
}

function checkSubset(ctx: AnalysisContext, vs: VsResource, d: DestinationAt, subset: string): void {
  const index = indexOf(ctx);
  const host = fqdn(ctx, d.destination.host, vs.metadata.namespace);
  const svcNs = serviceNamespace(ctx, host, vs.metadata.namespace);
  const scopes = scopesOf(vs);
  let used: IndexedDr | undefined;
  for (const scope of scopes) {
    const dr = drFor(index, host, scope, svcNs, {});
    if (dr && subsetNames(dr).includes(subset)) return;
    // A DestinationRule with a workloadSelector applies to some proxies of its namespace only: its subsets count too.
    const selected = index.selectorDrs.filter((x) => x.res.metadata.namespace === scope && hostMatches(x.host, host));
    if (selected.some((x) => subsetNames(x).includes(subset))) return;
    used ??= dr;
  }
  const what = d.kind === 'mirror' ? 'mirror subset' : 'subset';
  const hint = used
    ? `: ${used.res.ref}, the DestinationRule that namespace ${listOf(scopes)} uses for ${host}, defines ${subsetNames(used).length ? `only ${listOf(subsetNames(used))}` : 'no subsets'}; add the subset there or fix the name`
    : `: no DestinationRule for ${host} is visible from namespace ${listOf(scopes)}; add one that defines subset ${subset}`;
  ctx.report('ReferencedResourceNotFound', { what, name: `${subset} of ${d.destination.host}`, hint }, { resource: vs, field: [...d.path, 'subset'] });
}

export const destinationSubsetsAnalyzer: Analyzer = {
  name: 'virtualservice.destination-subsets',
  description: 'Every subset a VirtualService routes or mirrors to is defined by the DestinationRule its namespace uses for that host.',
  reads: ['VirtualService', 'DestinationRule', 'MeshConfig'],
  messages: ['ReferencedResourceNotFound'],
  istio: ['virtualservice.DestinationRuleAnalyzer'],
  run(ctx) {
    for (const vs of ctx.ofKind('VirtualService')) {
      for (const d of destinationsOf(vs)) {
        if (d.destination.subset) checkSubset(ctx, vs, d, d.destination.subset);
      }
    }
  },
};
