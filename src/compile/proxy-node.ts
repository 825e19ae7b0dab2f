/** Who a proxy is (its node) and what it serves (inbound listeners), from the registry. */
import { diagnostic, TrellisError } from '../api/diagnostic.js';
import { labelsMatch } from '../policy/route-match.js';
import type { InboundListener, ProxyNode } from '../protocol/snapshot.js';
import type { Registry, Service, Workload } from '../registry/types.js';
import type { ConfigIndex } from './config-index.js';
import { hashText, withHash } from './hash.js';

/** The error for a proxy ref that names no workload: TRL1009, with the workloads that exist. */
export function workloadNotFound(registry: Registry, workload: string, namespace?: string): TrellisError {
  const known = registry.workloads().map((x) => `${x.name}.${x.namespace}`);
  return TrellisError.from(diagnostic('WorkloadNotFound', {
    name: workload,
    where: namespace ? ` in namespace ${namespace}` : '',
    known: known.length ? known.slice(0, 20).join(', ') + (known.length > 20 ? ', …' : '') : '(none)',
  }));
}

/** A workload is a gateway when a Gateway's (non-empty) selector picks it. */
export function isGateway(index: ConfigIndex, w: Workload): boolean {
  return index.gateways.some((g) => {
    const sel = g.body.spec.selector;
    return sel !== undefined && Object.keys(sel).length > 0 && labelsMatch(sel, w.labels);
  });
}

export function makeNode(w: Workload, gateway: boolean): ProxyNode {
  const node: ProxyNode = Object.freeze({
    id: `${w.name}.${w.namespace}`,
    kind: gateway ? 'gateway' : 'sidecar',
    workload: w.name,
    namespace: w.namespace,
    labels: w.labels,
    serviceAccount: w.serviceAccount,
    identity: w.identity,
    locality: w.locality,
  });
  return withHash(node, hashText(JSON.stringify(node)));
}

/** One listener per port of every service that selects the workload; named target ports resolve through the workload's ports. */
export function inboundListeners(services: readonly Service[], w: Workload): readonly InboundListener[] {
  const out: InboundListener[] = [];
  for (const s of services) {
    for (const sp of s.ports) {
      const target = typeof sp.targetPort === 'number' ? sp.targetPort : w.ports[sp.targetPort];
      if (target === undefined) continue;
      out.push(Object.freeze({ name: `inbound|${sp.port}|${s.hostname}`, service: s.hostname, port: sp.port, targetPort: target, protocol: sp.protocol }));
    }
  }
  out.sort((a, b) => (a.name < b.name ? -1 : 1));
  return Object.freeze(out);
}

/**
 * Which DestinationRules with a workloadSelector apply to this proxy: the only
 * way a proxy's labels change its outbound view (sourceLabels matches are
 * decided by the router against the node's labels).
 */
export function selectorSignature(index: ConfigIndex, node: ProxyNode): string {
  let sig = '';
  for (const d of index.selectorDrs) {
    if (d.res.metadata.namespace !== node.namespace) continue;
    const sel = (d.res.body.spec as { workloadSelector?: { matchLabels?: Record<string, string> } }).workloadSelector?.matchLabels ?? {};
    if (labelsMatch(sel, node.labels)) sig += `${d.res.key};`;
  }
  return sig;
}

/** Services by namespace that select workloads, for finding a workload's services without scanning all. */
export function selectingServices(registry: Registry): Map<string, Service[]> {
  const byNs = new Map<string, Service[]>();
  for (const s of registry.services()) {
    // An empty selector (ServiceEntry `workloadSelector: {}`) selects every workload of the namespace.
    if (!s.selector) continue;
    const list = byNs.get(s.namespace);
    if (list) list.push(s);
    else byNs.set(s.namespace, [s]);
  }
  return byNs;
}
