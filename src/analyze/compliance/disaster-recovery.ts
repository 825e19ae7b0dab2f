/**
 * compliance.disaster-recovery: the instances of every service run in at
 * least `disasterRecovery.minRegions` regions. Off unless a CompliancePolicy
 * states disasterRecovery (docs/compliance.md says why). Localities come
 * from the registry: App placement, WorkloadEntry locality, node topology.
 */
import type { Analyzer } from '../analyzer.js';
import { countBy, describeCounts, instancesOf, meshServices, regionOf, reportAt, serviceTarget } from './mesh.js';
import { decide } from './policy.js';

export const disasterRecovery: Analyzer = {
  name: 'compliance.disaster-recovery',
  description: 'When a CompliancePolicy asks for it: the instances of every service run in at least disasterRecovery.minRegions regions.',
  reads: ['CompliancePolicy', 'Service', 'ServiceEntry', 'Deployment', 'Pod', 'WorkloadEntry', 'App'],
  messages: ['ServiceInTooFewRegions'],
  run(ctx) {
    for (const s of meshServices(ctx)) {
      const d = decide(ctx, 'disasterRecovery', s.namespace, [s]);
      if (!d.settings.enabled) continue;
      const instances = instancesOf(ctx.registry, s);
      if (instances.length === 0) continue; // compliance.redundancy reports it
      const regions = countBy(instances, regionOf);
      const min = d.settings.minRegions;
      if (regions.counts.size >= min) continue;
      reportAt(ctx, 'ServiceInTooFewRegions', {
        service: `service ${s.name}.${s.namespace}`, regions: regions.counts.size, s: regions.counts.size === 1 ? '' : 's',
        detail: describeCounts(regions, 'region'), policy: d.by, min,
      }, serviceTarget(ctx, s));
    }
  },
};
