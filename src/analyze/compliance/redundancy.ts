/**
 * compliance.redundancy: every service has more than one instance (at least
 * `redundancy.minInstances`, 2 by default). Instances are the registry's
 * endpoints of the service: Deployment and App replicas, Pods,
 * WorkloadEntries, ServiceEntry endpoints.
 */
import type { Workload } from '../../registry/types.js';
import type { Analyzer } from '../analyzer.js';
import { instancesOf, meshServices, reportAt, serviceTarget, workloadTarget } from './mesh.js';
import { decide } from './policy.js';

export const redundancy: Analyzer = {
  name: 'compliance.redundancy',
  description: 'Every service runs at least redundancy.minInstances instances (2 by default): Deployment or App replicas, Pods, WorkloadEntries.',
  reads: ['CompliancePolicy', 'Service', 'ServiceEntry', 'Deployment', 'Pod', 'WorkloadEntry', 'App'],
  messages: ['ServiceNotRedundant'],
  run(ctx) {
    for (const s of meshServices(ctx)) {
      const d = decide(ctx, 'redundancy', s.namespace, [s]);
      if (!d.settings.enabled) continue;
      const instances = instancesOf(ctx.registry, s);
      const min = d.settings.minInstances;
      if (instances.length >= min) continue;
      const perWorkload = new Map<string, number>();
      for (const e of instances) perWorkload.set(`${e.workload}.${e.namespace}`, (perWorkload.get(`${e.workload}.${e.namespace}`) ?? 0) + 1);
      const workloads = [...perWorkload.keys()].map((k) => ctx.registry.workload(k)).filter((w): w is Workload => w !== undefined);
      const detail = instances.length === 0
        ? (s.selector ? 'no workload carries its selector labels' : 'it lists no endpoints')
        : [...perWorkload].map(([w, n]) => `${w}: ${n}`).join(', ');
      // One Deployment or App workload runs it: the fix is its replicas (else another Pod or WorkloadEntry for the service).
      const w = workloads.length === 1 ? workloads[0]! : undefined;
      const one = w && (w.kind === 'Deployment' || w.kind === 'App') ? workloadTarget(ctx, w, ['replicas']) : undefined;
      reportAt(ctx, 'ServiceNotRedundant', {
        service: `service ${s.name}.${s.namespace}`, instances: instances.length, s: instances.length === 1 ? '' : 's', detail, policy: d.by, min,
      }, one, serviceTarget(ctx, s));
    }
  },
};
