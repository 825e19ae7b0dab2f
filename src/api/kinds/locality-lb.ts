/**
 * Locality-aware load balancing (Istio's `LocalityLoadBalancerSetting`),
 * used by DestinationRule and MeshConfig: weighted distribution between
 * localities (`region/zone/subzone`), failover between regions, or failover
 * by a priority list of labels.
 */
import { z, type DeepReadonly } from '../schema.js';

/** A locality is `region/zone/subzone`; a `*` may only end it. */
function localityError(l: string): string | undefined {
  const stars = l.split('*').length - 1;
  if (stars > 1 || (stars === 1 && !l.endsWith('*'))) return `locality "${l}" may hold one "*", only at the end`;
  if (l.split('/').some((part) => part === '') || l.split('/').length > 3) return `locality "${l}" must be region, region/zone or region/zone/subzone, with no empty part`;
  return undefined;
}

/** Locality-aware load balancing: weighted distribution, or failover between regions. */
export const localityLbSetting = z.strictObject({
  distribute: z.array(z.strictObject({ from: z.string().optional(), to: z.record(z.string(), z.number().int()).optional() })).optional(),
  failover: z.array(z.strictObject({ from: z.string().optional(), to: z.string().optional() })).optional(),
  failoverPriority: z.array(z.string()).optional(),
  enabled: z.boolean().optional(),
}).superRefine((l, ctx) => {
  if (l.distribute?.length && l.failover?.length) {
    ctx.addIssue({ code: 'custom', path: ['failover'], message: 'distribute and failover cannot be set together' });
    return;
  }
  const topology = ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'];
  if (l.failover?.length) {
    l.failoverPriority?.forEach((p, i) => {
      if (topology.includes(p)) ctx.addIssue({ code: 'custom', path: ['failoverPriority', i], message: `failoverPriority "${p}" cannot be combined with failover; use one or the other` });
    });
  }
  l.distribute?.forEach((d, i) => {
    const fromErr = d.from === undefined ? undefined : localityError(d.from);
    if (fromErr) ctx.addIssue({ code: 'custom', path: ['distribute', i, 'from'], message: fromErr });
    let total = 0;
    for (const [to, w] of Object.entries(d.to ?? {})) {
      const toErr = localityError(to);
      if (toErr) ctx.addIssue({ code: 'custom', path: ['distribute', i, 'to', to], message: toErr });
      if (w < 1 || w > 100) ctx.addIssue({ code: 'custom', path: ['distribute', i, 'to', to], message: `locality weight ${w} must be between 1 and 100` });
      total += w;
    }
    if (total !== 100) ctx.addIssue({ code: 'custom', path: ['distribute', i, 'to'], message: `locality weights must add up to 100, not ${total}` });
  });
  l.failover?.forEach((f, i) => {
    const bad = [f.from, f.to].find((r) => r !== undefined && (r.includes('/') || r.includes('*')));
    if (bad !== undefined) ctx.addIssue({ code: 'custom', path: ['failover', i], message: `failover names regions only: "${bad}" must not hold "/" or "*"` });
    else if (f.from === f.to) ctx.addIssue({ code: 'custom', path: ['failover', i, 'to'], message: 'failover must go to a different region than it comes from' });
  });
});

export type LocalityLbSetting = DeepReadonly<z.infer<typeof localityLbSetting>>;
