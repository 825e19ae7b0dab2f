/**
 * The Gateway and Sidecar analyzers. The Gateway ones live in `gw-*.ts`;
 * `sidecar.selector` (Istio's sidecar.SelectorAnalyzer) is here: in one
 * namespace, a workload takes one Sidecar, so there may be one Sidecar
 * without a workloadSelector (TRL0111), no two selector Sidecars may pick
 * the same workload (TRL0110), and a selector must pick some workload of the
 * Sidecar's namespace (TRL0101).
 */
import type { ResourceOf } from '../../api/config-set.js';
import type { Analyzer } from '../analyzer.js';
import { checkSelectorScope, selectorLabels } from './selector-scope.js';
import { gatewayCertificatesAnalyzer } from './gw-certificates.js';
import { gatewayConflictsAnalyzer } from './gw-conflicts.js';
import { gatewayPortsAnalyzer } from './gw-ports.js';
import { gatewaySelectorAnalyzer } from './gw-selector.js';

type SidecarResource = ResourceOf<'Sidecar'>;

const selectorOf = (s: SidecarResource) => selectorLabels(s.body.spec.workloadSelector?.labels);

export const sidecarSelectorAnalyzer: Analyzer = {
  name: 'sidecar.selector',
  description: 'Each workload takes at most one Sidecar of its namespace, and every Sidecar selector picks a workload.',
  reads: ['Sidecar', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['MultipleSidecarsWithoutWorkloadSelectors', 'ConflictingSidecarWorkloadSelectors', 'ReferencedResourceNotFound'],
  istio: ['sidecar.SelectorAnalyzer'],
  run(ctx) {
    checkSelectorScope(ctx, {
      kind: 'Sidecar', resources: ctx.ofKind('Sidecar'), selectorOf, selectorField: ['spec', 'workloadSelector', 'labels'],
      several: 'MultipleSidecarsWithoutWorkloadSelectors', conflicting: 'ConflictingSidecarWorkloadSelectors',
    });
  },
};

export const gatewaySidecarAnalyzers: readonly Analyzer[] = [
  gatewaySelectorAnalyzer,
  gatewayConflictsAnalyzer,
  gatewayPortsAnalyzer,
  gatewayCertificatesAnalyzer,
  sidecarSelectorAnalyzer,
];
