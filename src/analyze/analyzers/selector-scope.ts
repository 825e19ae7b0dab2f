/**
 * The rule Sidecar and Telemetry share (Istio's sidecar and telemetry
 * SelectorAnalyzer and DefaultSelectorAnalyzer): in one namespace there may
 * be one resource without a workload selector, no two selector resources may
 * pick the same workload, and a selector must pick some workload of the
 * resource's namespace.
 */
import type { MessageName } from '../../api/messages.js';
import type { Resource } from '../../api/resource.js';
import type { AnalysisContext } from '../analyzer.js';
import { workloadsSelected } from '../lookup.js';
import { selectorText } from './gw-common.js';

/** Selector labels as these rules read them: none when absent or empty. */
export const selectorLabels = (labels: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined =>
  (labels && Object.keys(labels).length > 0 ? labels : undefined);

export interface SelectorScopeRule<R extends Resource> {
  readonly kind: string;
  readonly resources: readonly R[];
  /** The resource's selector labels, undefined when it has none (or an empty one). */
  readonly selectorOf: (r: R) => Readonly<Record<string, string>> | undefined;
  /** Where the selector is written, for the messages. */
  readonly selectorField: readonly (string | number)[];
  readonly several: MessageName;
  readonly conflicting: MessageName;
}

export function checkSelectorScope<R extends Resource>(ctx: AnalysisContext, rule: SelectorScopeRule<R>): void {
  const names = (list: readonly R[]) => list.map((s) => `${rule.kind} ${s.metadata.name}`).join(', ');
  const wide = new Map<string, R[]>();
  for (const s of rule.resources) {
    if (rule.selectorOf(s)) continue;
    const list = wide.get(s.metadata.namespace) ?? [];
    list.push(s);
    wide.set(s.metadata.namespace, list);
  }
  for (const [namespace, list] of wide) {
    if (list.length < 2) continue;
    for (const s of list) ctx.report(rule.several, { namespace, others: names(list.filter((o) => o !== s)) }, { resource: s, field: ['metadata', 'name'] });
  }
  /** `namespace/kind/name` of a workload → the selector resources that pick it, with the workload's name. */
  const byWorkload = new Map<string, { workload: string; picked: R[] }>();
  for (const s of rule.resources) {
    const sel = rule.selectorOf(s);
    if (!sel) continue;
    const picked = workloadsSelected(ctx, sel, s.metadata.namespace);
    if (!picked.length) {
      ctx.report('ReferencedResourceNotFound', {
        what: 'a workload with labels',
        name: selectorText(sel),
        hint: ` in namespace ${s.metadata.namespace}: the ${rule.kind} applies to no proxy; correct ${rule.selectorField.join('.')} or declare the workload`,
      }, { resource: s, field: [...rule.selectorField] });
      continue;
    }
    for (const w of picked) {
      const key = `${w.namespace}/${w.kind}/${w.name}`;
      const entry = byWorkload.get(key) ?? { workload: `${w.kind} ${w.namespace}/${w.name}`, picked: [] };
      entry.picked.push(s);
      byWorkload.set(key, entry);
    }
  }
  for (const { workload, picked } of byWorkload.values()) {
    if (picked.length < 2) continue;
    for (const s of picked) ctx.report(rule.conflicting, { workload, others: names(picked.filter((o) => o !== s)) }, { resource: s, field: [...rule.selectorField] });
  }
}
