/**
 * The Telemetry analyzers (Istio's telemetry.SelectorAnalyzer,
 * DefaultSelectorAnalyzer and ProviderAnalyzer): one selector-less
 * Telemetry per namespace (TRL0160), no two selector ones picking the same
 * workload (TRL0159), a selector that picks some workload (TRL0101), and an
 * accessLogging entry that would be ignored for want of a provider
 * (TRL0157). The compiler takes the first by namespace and name where two
 * collide (src/compile/access-logging.ts); these say that the configuration
 * is ambiguous.
 */
import type { ResourceOf } from '../../api/config-set.js';
import type { MeshConfigSpec } from '../../api/kinds/mesh-config.js';
import type { Analyzer } from '../analyzer.js';
import { checkSelectorScope, selectorLabels } from './selector-scope.js';

type TelemetryResource = ResourceOf<'Telemetry'>;

const selectorOf = (t: TelemetryResource) => selectorLabels(t.body.spec.selector?.matchLabels);

export const telemetrySelectorAnalyzer: Analyzer = {
  name: 'telemetry.selector',
  description: 'One Telemetry without a selector per namespace, no workload picked by two, and every selector picks a workload.',
  reads: ['Telemetry', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['MultipleTelemetriesWithoutWorkloadSelectors', 'ConflictingTelemetryWorkloadSelectors', 'ReferencedResourceNotFound'],
  istio: ['telemetry.SelectorAnalyzer', 'telemetry.DefaultSelectorAnalyzer'],
  run(ctx) {
    checkSelectorScope(ctx, {
      kind: 'Telemetry', resources: ctx.ofKind('Telemetry'), selectorOf, selectorField: ['spec', 'selector', 'matchLabels'],
      several: 'MultipleTelemetriesWithoutWorkloadSelectors', conflicting: 'ConflictingTelemetryWorkloadSelectors',
    });
  },
};

export const telemetryProviderAnalyzer: Analyzer = {
  name: 'telemetry.providers',
  description: 'Each accessLogging entry names a provider, or MeshConfig has a default one.',
  reads: ['Telemetry', 'MeshConfig'],
  messages: ['InvalidTelemetryProvider'],
  istio: ['telemetry.ProviderAnalyzer'],
  run(ctx) {
    const spec = (ctx.ofKind('MeshConfig')[0]?.body.spec ?? {}) as MeshConfigSpec;
    if ((spec.defaultProviders?.accessLogging?.length ?? 0) > 0) return;
    for (const t of ctx.ofKind('Telemetry')) {
      t.body.spec.accessLogging?.forEach((e, index) => {
        if (e.disabled || (e.providers?.length ?? 0) > 0) return;
        ctx.report('InvalidTelemetryProvider', { index }, { resource: t, field: ['spec', 'accessLogging', index] });
      });
    }
  },
};

export const telemetryAnalyzers: readonly Analyzer[] = [telemetrySelectorAnalyzer, telemetryProviderAnalyzer];
