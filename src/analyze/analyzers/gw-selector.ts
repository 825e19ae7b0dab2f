/**
 * `gateway.selector`: a Gateway configures the workloads its selector picks.
 * A selector that picks none (TRL0101), or no selector at all (TRL1430:
 * Istio then uses every gateway workload, Trellis none), leaves the Gateway
 * without a proxy. Istio checks the selector in three analyzers; Trellis
 * checks it once, so one mistake gives one message, and the port and
 * conflict analyzers skip such Gateways.
 */
import type { Analyzer } from '../analyzer.js';
import { gatewaySelector, gatewayWorkloads, selectorText } from './gw-common.js';

export const gatewaySelectorAnalyzer: Analyzer = {
  name: 'gateway.selector',
  description: 'Each Gateway has a selector, and it picks at least one workload.',
  reads: ['Gateway', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['ReferencedResourceNotFound', 'GatewayWithoutSelector'],
  istio: ['gateway.IngressGatewayPortAnalyzer', 'gateway.ConflictingGatewayAnalyzer', 'gateway.SecretAnalyzer'],
  run(ctx) {
    for (const gw of ctx.ofKind('Gateway')) {
      const sel = gatewaySelector(gw);
      if (!sel) {
        const written = gw.body.spec.selector !== undefined;
        ctx.report('GatewayWithoutSelector', {}, { resource: gw, field: written ? ['spec', 'selector'] : ['spec'] });
        continue;
      }
      if (gatewayWorkloads(ctx, gw).length > 0) continue;
      ctx.report('ReferencedResourceNotFound', {
        what: 'a workload with labels',
        name: selectorText(sel),
        hint: ' in any namespace: no proxy serves this Gateway; correct spec.selector or declare the gateway workload',
      }, { resource: gw, field: ['spec', 'selector'] });
    }
  },
};
