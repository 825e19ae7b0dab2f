/**
 * `gateway.ports` (Istio's IngressGatewayPortAnalyzer): each server port of a
 * Gateway must be reachable through a Kubernetes Service in front of the
 * gateway workloads. A Service fronts a workload when it is in the
 * workload's namespace and its selector picks the workload's labels. A
 * server port is exposed when it is such a Service's `port` or its
 * `targetPort` (Istio accepts both: a server port equal to the Service port
 * is translated to the target port), on a TCP service port.
 *
 * Gateway workloads that no Service fronts and that are not Kubernetes
 * workloads (a WorkloadEntry, an App service: the hosts and local modes) are
 * reached on their own address and port, so they expose every server port.
 */
import type { Service, Workload } from '../../registry/types.js';
import { selects, targetPortOf } from '../../registry/endpoints.js';
import type { AnalysisContext, Analyzer } from '../analyzer.js';
import { gatewaySelector, gatewayWorkloads, selectorText } from './gw-common.js';

/** Kubernetes Services (not ServiceEntries) that select the workload. */
function frontingServices(ctx: AnalysisContext, w: Workload): Service[] {
  return ctx.registry.services().filter((s) => s.source.startsWith('Service ') && s.namespace === w.namespace && selects(s.selector, w.labels));
}

/** The ports clients can reach the workloads on, or `'any'` when one of them is reached directly. */
function exposedPorts(ctx: AnalysisContext, workloads: readonly Workload[]): { ports: Set<number> | 'any'; services: string[] } {
  const ports = new Set<number>();
  const services = new Set<string>();
  for (const w of workloads) {
    const fronting = frontingServices(ctx, w);
    if (!fronting.length && w.kind !== 'Pod' && w.kind !== 'Deployment') return { ports: 'any', services: [] };
    for (const s of fronting) {
      services.add(`${s.namespace}/${s.name}`);
      for (const sp of s.ports) {
        if (sp.protocol === 'UDP') continue;
        ports.add(sp.port);
        const target = targetPortOf(sp, w);
        if (target !== undefined) ports.add(target);
      }
    }
  }
  return { ports, services: [...services].sort() };
}

export const gatewayPortsAnalyzer: Analyzer = {
  name: 'gateway.ports',
  description: 'Every Gateway server port is exposed by a Service in front of the gateway workloads.',
  reads: ['Gateway', 'Service', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['GatewayPortNotDefinedOnService'],
  istio: ['gateway.IngressGatewayPortAnalyzer'],
  run(ctx) {
    for (const gw of ctx.ofKind('Gateway')) {
      const workloads = gatewayWorkloads(ctx, gw);
      if (!workloads.length) continue; // gateway.selector reports it
      const { ports, services } = exposedPorts(ctx, workloads);
      if (ports === 'any') continue;
      gw.body.spec.servers.forEach((server, i) => {
        if (server.bind?.startsWith('unix://') || ports.has(server.port.number)) return;
        ctx.report('GatewayPortNotDefinedOnService', {
          port: server.port.number,
          selector: selectorText(gatewaySelector(gw)),
          services: services.length ? `Service ${services.join(', Service ')}` : 'no Service selects them',
        }, { resource: gw, field: ['spec', 'servers', i, 'port', 'number'] });
      });
    }
  },
};
