/**
 * `deprecation.fields` (Istio's DeprecationAnalyzer): fields Istio has
 * deprecated that the loader still accepts. VirtualService
 * `fault.delay.percent` (an integer; Trellis reads it when `percentage` is
 * absent) and Sidecar `outboundTrafficPolicy.egressProxy` (Istio ignores it;
 * Trellis does not act on it either).
 */
import type { Analyzer } from '../analyzer.js';

export const deprecationAnalyzer: Analyzer = {
  name: 'deprecation.fields',
  description: 'Fields Istio has deprecated: VirtualService fault.delay.percent and Sidecar outboundTrafficPolicy.egressProxy.',
  reads: ['VirtualService', 'Sidecar'],
  messages: ['Deprecated'],
  istio: ['deprecation.DeprecationAnalyzer'],
  run(ctx) {
    for (const vs of ctx.ofKind('VirtualService')) {
      vs.body.spec.http?.forEach((r, i) => {
        if (r.fault?.delay?.percent === undefined) return;
        ctx.report('Deprecated', {
          field: 'fault.delay.percent',
          instead: `write fault.delay.percentage.value: ${r.fault.delay.percent} instead (it takes fractions too); Trellis still reads percent when percentage is absent, Istio may drop it`,
        }, { resource: vs, field: ['spec', 'http', i, 'fault', 'delay', 'percent'] });
      });
    }
    for (const sc of ctx.ofKind('Sidecar')) {
      if (!sc.body.spec.outboundTrafficPolicy?.egressProxy) continue;
      ctx.report('Deprecated', {
        field: 'outboundTrafficPolicy.egressProxy',
        instead: 'Istio ignores it and Trellis does not act on it, so unknown destinations still leave directly; remove it and send external traffic through a ServiceEntry and an egress Gateway',
      }, { resource: sc, field: ['spec', 'outboundTrafficPolicy', 'egressProxy'] });
    }
  },
};
