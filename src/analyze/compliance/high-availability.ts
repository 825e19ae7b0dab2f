/**
 * compliance.high-availability: the instances of every service run in at
 * least `highAvailability.minZones` zones (2 by default), and a zone outage
 * is survived: the cluster each caller's proxy gets for the service (as the
 * compiler builds it from the DestinationRule that caller uses) has outlier
 * detection that ejects, and locality load balancing on, which is what makes
 * the proxy fail over to the next zone (src/compile/clusters.ts compiles
 * failover only with both), and its maxEjectionPercent lets it eject a whole
 * zone (src/proxy/outlier.ts ejects while the ejected share is below it).
 */
import type { Cluster, SnapshotEndpoint } from '../../protocol/snapshot.js';
import type { Service } from '../../registry/types.js';
import type { AnalysisContext, Analyzer, Target } from '../analyzer.js';
import { clustersOf, countBy, describeCounts, instancesOf, listSome, meshServices, proxyViews, reportAt, resourceByRef, serviceTarget, zoneOf } from './mesh.js';
import { decide } from './policy.js';

export const highAvailability: Analyzer = {
  name: 'compliance.high-availability',
  description: 'Every service runs in at least highAvailability.minZones zones (2 by default), and the DestinationRule its callers use fails over out of a failed zone (outlier detection, locality load balancing, maxEjectionPercent above a zone\'s share).',
  reads: ['CompliancePolicy', 'Service', 'ServiceEntry', 'Deployment', 'Pod', 'WorkloadEntry', 'App', 'DestinationRule'],
  messages: ['ServiceInTooFewZones', 'NoZoneFailover', 'ZoneNotEjectable'],
  run(ctx) {
    for (const s of meshServices(ctx)) {
      const d = decide(ctx, 'highAvailability', s.namespace, [s]);
      if (!d.settings.enabled) continue;
      const instances = instancesOf(ctx.registry, s);
      if (instances.length === 0) continue; // compliance.redundancy reports it
      const zones = countBy(instances, zoneOf);
      if (zones.counts.size < d.settings.minZones) {
        reportAt(ctx, 'ServiceInTooFewZones', {
          service: `service ${s.name}.${s.namespace}`, zones: zones.counts.size, s: zones.counts.size === 1 ? '' : 's',
          detail: describeCounts(zones, 'zone'), policy: d.by, min: d.settings.minZones,
        }, serviceTarget(ctx, s));
      }
      // Failover needs somewhere to fail over to.
      if (d.settings.requireFailover && zones.counts.size >= 2) checkFailover(ctx, s);
    }
  },
};

interface Problem {
  readonly kind: 'NoZoneFailover' | 'ZoneNotEjectable';
  readonly args: Record<string, string | number>;
  readonly field: readonly (string | number)[];
}

/** What keeps one compiled cluster from failing over out of a zone, if anything. */
function problemOf(c: Cluster, endpoints: readonly SnapshotEndpoint[]): Problem | undefined {
  const od = c.outlierDetection;
  const dr = c.source !== undefined;
  const zones = countBy(endpoints, zoneOf);
  if (zones.counts.size === 1 && zones.unknown === 0) {
    const [zone, n] = [...zones.counts][0]!;
    return {
      kind: 'NoZoneFailover',
      args: {
        problem: `sends to ${n} instance${n === 1 ? '' : 's'} in zone ${zone} only: there is no other zone to fail over to`,
        fix: `run instances of ${c.subset !== undefined ? `subset ${c.subset}` : 'the service'} in another zone too`,
      },
      field: c.subset !== undefined ? ['spec', 'subsets', c.subset] : [],
    };
  }
  if (!od || (od.consecutive5xxErrors <= 0 && od.consecutiveGatewayErrors <= 0 && (od.consecutiveLocalOriginFailures ?? 0) <= 0)) {
    return {
      kind: 'NoZoneFailover',
      args: {
        problem: od ? 'has outlier detection with every threshold at 0: it ejects nothing' : 'has no outlier detection: dead instances are never ejected, and without ejection the proxy has no locality failover',
        fix: dr ? `add trafficPolicy.outlierDetection to ${c.source} (such as consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s)`
          : `add a DestinationRule for ${c.service} with trafficPolicy.outlierDetection (such as consecutive5xxErrors: 5, interval: 10s)`,
      },
      field: ['spec', 'trafficPolicy', ...(od ? ['outlierDetection'] : [])],
    };
  }
  if (!c.lb.locality.enabled) {
    return {
      kind: 'NoZoneFailover',
      args: { problem: 'turns locality load balancing off (localityLbSetting.enabled: false): the proxy does not fail over by zone', fix: 'remove localityLbSetting.enabled: false' },
      field: ['spec', 'trafficPolicy', 'loadBalancer', 'localityLbSetting', 'enabled'],
    };
  }
  const total = endpoints.length;
  let zone = '';
  let inZone = 0;
  for (const [z, n] of zones.counts) if (n > inZone) [zone, inZone] = [z, n];
  // Ejection is allowed while the ejected share is below maxEjectionPercent: the last host of the zone needs (inZone-1)/total < max.
  const share = (100 * (inZone - 1)) / total;
  if (inZone > 1 && od.maxEjectionPercent <= share) {
    return {
      kind: 'ZoneNotEjectable',
      args: { max: od.maxEjectionPercent, zone, inZone, total, needed: Math.floor(share) + 1 },
      field: ['spec', 'trafficPolicy', 'outlierDetection', 'maxEjectionPercent'],
    };
  }
  return undefined;
}

function checkFailover(ctx: AnalysisContext, s: Service): void {
  const found = new Map<string, { p: Problem; cluster: Cluster; callers: Set<string>; subsets: Set<string> }>();
  for (const v of proxyViews(ctx)) {
    for (const { cluster, endpoints } of clustersOf(v.snapshot, s.hostname)) {
      if (endpoints.length === 0) continue;
      const p = problemOf(cluster, endpoints);
      if (!p) continue;
      const key = `${cluster.source ?? ''}|${p.kind}|${JSON.stringify(p.args)}`;
      let f = found.get(key);
      if (!f) found.set(key, (f = { p, cluster, callers: new Set(), subsets: new Set() }));
      f.callers.add(v.workload.namespace);
      f.subsets.add(cluster.subset ?? '');
    }
  }
  for (const { p, cluster, callers, subsets } of found.values()) {
    const named = [...subsets].filter((x) => x !== '');
    const what = cluster.source
      ? `${cluster.source}${named.length ? ` (subset${named.length > 1 ? 's' : ''} ${named.sort().join(', ')}${subsets.has('') ? ' and the service itself' : ''})` : ''}`
      : 'the default cluster (no DestinationRule applies to them)';
    const dr = cluster.source ? resourceByRef(ctx, cluster.source) : undefined;
    // A subset is named in the field by its index in the DestinationRule.
    const field = p.field[1] === 'subsets'
      ? ['spec', 'subsets', Math.max(0, ((dr?.body as { spec?: { subsets?: { name: string }[] } } | undefined)?.spec?.subsets ?? []).findIndex((x) => x.name === p.field[2]))]
      : p.field;
    const at: Target | undefined = dr ? { resource: dr, field } : undefined;
    const ns = [...callers];
    reportAt(ctx, p.kind, {
      service: `service ${s.name}.${s.namespace}`, callers: `namespace${ns.length > 1 ? 's' : ''} ${listSome(ns)}`, cluster: what, ...p.args,
    }, at, serviceTarget(ctx, s));
  }
}

