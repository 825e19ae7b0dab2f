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
import { workloadsSelected } from '../lookup.js';
import { selectorText } from './gw-common.js';
import { gatewayCertificatesAnalyzer } from './gw-certificates.js';
import { gatewayConflictsAnalyzer } from './gw-conflicts.js';
import { gatewayPortsAnalyzer } from './gw-ports.js';
import { gatewaySelectorAnalyzer } from './gw-selector.js';

type SidecarResource = ResourceOf<'Sidecar'>;

function selectorOf(s: SidecarResource): Readonly<Record<string, string>> | undefined {
  const labels = s.body.spec.workloadSelector?.labels;
  return labels && Object.keys(labels).length > 0 ? labels : undefined;
}

const names = (list: readonly SidecarResource[]) => list.map((s) => `Sidecar ${s.metadata.name}`).join(', ');

export const sidecarSelectorAnalyzer: Analyzer = {
  name: 'sidecar.selector',
  description: 'Each workload takes at most one Sidecar of its namespace, and every Sidecar selector picks a workload.',
  reads: ['Sidecar', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['MultipleSidecarsWithoutWorkloadSelectors', 'ConflictingSidecarWorkloadSelectors', 'ReferencedResourceNotFound'],
  istio: ['sidecar.SelectorAnalyzer'],
  run(ctx) {
    const sidecars = ctx.ofKind('Sidecar');
    const wide = new Map<string, SidecarResource[]>();
    for (const s of sidecars) {
      if (selectorOf(s)) continue;
      const list = wide.get(s.metadata.namespace) ?? [];
      list.push(s);
      wide.set(s.metadata.namespace, list);
    }
    for (const [namespace, list] of wide) {
      if (list.length < 2) continue;
      for (const s of list) {
        ctx.report('MultipleSidecarsWithoutWorkloadSelectors', { namespace, others: names(list.filter((o) => o !== s)) }, { resource: s, field: ['metadata', 'name'] });
      }
    }
    /** `namespace/name` of a workload → the selector Sidecars that pick it, with the workload's name. */
    const byWorkload = new Map<string, { workload: string; sidecars: SidecarResource[] }>();
    for (const s of sidecars) {
      const sel = selectorOf(s);
      if (!sel) continue;
      const picked = workloadsSelected(ctx, sel, s.metadata.namespace);
      if (!picked.length) {
        ctx.report('ReferencedResourceNotFound', {
          what: 'a workload with labels',
          name: selectorText(sel),
          hint: ` in namespace ${s.metadata.namespace}: the Sidecar applies to no proxy; correct spec.workloadSelector.labels or declare the workload`,
        }, { resource: s, field: ['spec', 'workloadSelector', 'labels'] });
        continue;
      }
      for (const w of picked) {
        const key = `${w.namespace}/${w.kind}/${w.name}`;
        const entry = byWorkload.get(key) ?? { workload: `${w.kind} ${w.namespace}/${w.name}`, sidecars: [] };
        entry.sidecars.push(s);
        byWorkload.set(key, entry);
      }
    }
    for (const { workload, sidecars: list } of byWorkload.values()) {
      if (list.length < 2) continue;
      for (const s of list) {
        ctx.report('ConflictingSidecarWorkloadSelectors', { workload, others: names(list.filter((o) => o !== s)) }, { resource: s, field: ['spec', 'workloadSelector', 'labels'] });
      }
    }
  },
};

export const gatewaySidecarAnalyzers: readonly Analyzer[] = [
  gatewaySelectorAnalyzer,
  gatewayConflictsAnalyzer,
  gatewayPortsAnalyzer,
  gatewayCertificatesAnalyzer,
  sidecarSelectorAnalyzer,
];
