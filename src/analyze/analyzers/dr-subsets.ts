/**
 * DestinationRule hosts and subsets against the registry (Istio's
 * `destinationrule.SubsetSelectPodAnalyzer`):
 *
 * - TRL0174: the host names no Service or ServiceEntry that a namespace the
 *   rule applies in can see (its own, or one it is exported to);
 * - TRL0173: a subset's labels match no endpoint (or selected workload) of
 *   the host, so the compiler gives the subset's cluster no endpoints
 *   (compile/slices.ts filters the host's endpoints by the subset labels).
 *
 * Topology labels are read as Istio's registry adds them to endpoints: the
 * endpoint's locality supplies `topology.kubernetes.io/region`, `…/zone` and
 * `topology.istio.io/subzone`; where the locality is unknown (a Pod whose
 * Node is not part of the configuration) a non-empty topology label is not
 * held against the subset, and an empty one never matches.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { visibility, visibleIn } from '../../compile/config-index.js';
import type { Locality, Service } from '../../registry/types.js';
import type { Analyzer, AnalysisContext } from '../analyzer.js';
import { fqdn, servicesFor, workloadsSelected } from '../lookup.js';

/** Node topology labels Istio's registry puts on endpoints, and how to read them from a locality. */
const TOPOLOGY: Readonly<Record<string, (l: Locality) => string>> = {
  'topology.kubernetes.io/region': (l) => l.region,
  'topology.kubernetes.io/zone': (l) => l.zone,
  'topology.istio.io/subzone': (l) => l.subzone,
  /** The node name: never known to the configuration. */
  'kubernetes.io/hostname': () => '',
};

interface Candidate {
  readonly labels: Readonly<Record<string, string>>;
  readonly locality: Locality;
}

/** Whether a subset's labels pick this endpoint (see the module comment for topology labels). */
export function subsetSelects(wanted: Readonly<Record<string, string>>, c: Candidate): boolean {
  for (const [k, v] of Object.entries(wanted)) {
    if (k in c.labels) {
      if (c.labels[k] !== v) return false;
      continue;
    }
    const topo = TOPOLOGY[k];
    if (!topo) return false;
    if (v === '') return false;
    const known = topo(c.locality);
    if (known !== '' && known !== v) return false;
  }
  return true;
}

/** Every namespace that can matter for visibility: the registry's, and those named by a service's exportTo. */
function knownNamespaces(ctx: AnalysisContext): Set<string> {
  const out = new Set(ctx.registry.namespaces());
  for (const s of ctx.registry.services()) for (const n of s.exportTo) if (n !== '*') out.add(n);
  return out;
}

/** The services the rule's host names, seen from its namespace or any namespace it is exported to. */
function servicesOfRule(ctx: AnalysisContext, r: ResourceOf<'DestinationRule'>, namespaces: ReadonlySet<string>): Service[] {
  const ns = r.metadata.namespace;
  const host = fqdn(ctx, r.body.spec.host, ns);
  const own = servicesFor(ctx, host, ns);
  if (own.length) return own;
  const exported = visibility(r.body.spec.exportTo, ns);
  const found = new Map<string, Service>();
  for (const other of namespaces) {
    if (other === ns || !visibleIn(exported, other)) continue;
    for (const s of servicesFor(ctx, host, other)) found.set(s.hostname, s);
  }
  return [...found.values()];
}

/** Everything a subset could select on these services: their endpoints, and the workloads their selectors pick. */
function candidates(ctx: AnalysisContext, services: readonly Service[]): Candidate[] {
  const out: Candidate[] = [];
  for (const s of services) {
    for (const sp of s.ports) out.push(...ctx.registry.endpoints(s.hostname, sp.port));
    if (s.selector) {
      for (const w of workloadsSelected(ctx, s.selector, s.namespace)) {
        for (const locality of w.instanceLocalities ?? [w.locality]) out.push({ labels: w.labels, locality });
      }
    }
  }
  return out;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

export const subsetsAnalyzer: Analyzer = {
  name: 'destinationrule.subsets',
  description: 'DestinationRule hosts that match no visible service, and subsets whose labels select no endpoint of the host.',
  reads: ['DestinationRule', 'Service', 'ServiceEntry', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['UnknownDestinationRuleHost', 'DestinationRuleSubsetNotSelectPods'],
  istio: ['destinationrule.SubsetSelectPodAnalyzer'],
  run(ctx) {
    const rules = ctx.ofKind('DestinationRule');
    if (rules.length === 0) return;
    const namespaces = knownNamespaces(ctx);
    for (const r of rules) {
      const spec = r.body.spec;
      const services = servicesOfRule(ctx, r, namespaces);
      if (services.length === 0) {
        ctx.report('UnknownDestinationRuleHost', { host: spec.host, namespace: r.metadata.namespace }, { resource: r, field: ['spec', 'host'] });
        continue;
      }
      const subsets = spec.subsets ?? [];
      if (subsets.length === 0) continue;
      const eps = candidates(ctx, services);
      const hosts = services.map((s) => s.hostname).join(', ');
      subsets.forEach((s, i) => {
        const labels = s.labels ?? {};
        // No labels: the subset is the whole host, whatever its endpoints.
        if (Object.keys(labels).length === 0) return;
        if (eps.some((e) => subsetSelects(labels, e))) return;
        ctx.report('DestinationRuleSubsetNotSelectPods', { subset: s.name, labels: labelText(labels), host: hosts }, {
          resource: r, field: ['spec', 'subsets', i, 'labels'],
        });
      });
    }
  },
};
