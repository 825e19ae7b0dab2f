/**
 * `gateway.conflicts` (Istio's ConflictingGatewayAnalyzer): two Gateways on
 * the same gateway workloads that serve overlapping hosts on the same port.
 * "The same workloads" is decided through the registry, as Istio decides it
 * through pods: equal selectors, or selectors that both pick some workload
 * (`{istio: ingressgateway}` and `{istio: ingressgateway, app: x}` when a
 * workload carries both labels). Each conflicting server gets one message
 * naming the other Gateways.
 */
import type { Workload } from '../../registry/types.js';
import type { Analyzer } from '../analyzer.js';
import { gatewaySelector, gatewayWorkloads, nsName, selectorText, serverHostsOverlap, shareWorkload, type GatewayResource } from './gw-common.js';

export const gatewayConflictsAnalyzer: Analyzer = {
  name: 'gateway.conflicts',
  description: 'No two Gateways on the same workloads serve overlapping hosts on the same port.',
  reads: ['Gateway', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['ConflictingGateways'],
  istio: ['gateway.ConflictingGatewayAnalyzer'],
  run(ctx) {
    // Gateways without a selector, or whose selector picks nothing, configure no proxy (gateway.selector says so).
    const live: { gw: GatewayResource; workloads: Workload[] }[] = [];
    for (const gw of ctx.ofKind('Gateway')) {
      const workloads = gatewayWorkloads(ctx, gw);
      if (workloads.length) live.push({ gw, workloads });
    }
    for (const a of live) {
      const peers = live.filter((b) => b !== a && shareWorkload(a.workloads, b.workloads));
      a.gw.body.spec.servers.forEach((server, i) => {
        const others = peers.filter((b) => b.gw.body.spec.servers.some((s) => s.port.number === server.port.number && serverHostsOverlap(server.hosts, s.hosts)));
        if (!others.length) return;
        ctx.report('ConflictingGateways', {
          port: server.port.number,
          hosts: server.hosts.join(','),
          selector: selectorText(gatewaySelector(a.gw)),
          others: others.map((b) => `Gateway ${nsName(b.gw)}`).join(', '),
        }, { resource: a.gw, field: ['spec', 'servers', i] });
      });
    }
  },
};
