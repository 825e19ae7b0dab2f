/**
 * Istio's registry kinds → registry objects: a ServiceEntry becomes one
 * service per host (its inline endpoints static endpoints), a WorkloadEntry
 * a workload of one instance.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { spiffeId } from '../identity.js';
import { parseProtocol } from '../protocol.js';
import type { Service, StaticEndpoint, Workload } from '../types.js';
import type { ConvertOptions } from './kubernetes.js';
import { exportTo, hashed, localityFromLabels, parseLocality } from './make.js';

/** The hostname of a ServiceEntry host: lowercase, no trailing dot (Istio takes hosts as written). */
export function serviceEntryHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** A ServiceEntry: a service per host, and for `endpoints` a static endpoint per endpoint × host × port. */
export function fromServiceEntry(r: ResourceOf<'ServiceEntry'>, o: ConvertOptions): { services: Service[]; statics: StaticEndpoint[] } {
  const { name, namespace, labels, annotations } = r.metadata;
  const spec = r.body.spec;
  const location = spec.location ?? 'MESH_EXTERNAL';
  const ports = (spec.ports ?? []).map((p) => ({
    name: p.name,
    port: p.number,
    targetPort: p.targetPort ?? p.number,
    protocol: (p.protocol ? parseProtocol(p.protocol) : undefined) ?? 'UNSPECIFIED',
  }));
  const hosts = [...new Set(spec.hosts.map(serviceEntryHost))];
  const services = hosts.map((hostname) => hashed<Service>({
    hostname,
    name: hostname,
    namespace,
    ports,
    labels,
    ...(spec.workloadSelector ? { selector: spec.workloadSelector.labels ?? {} } : {}),
    exportTo: exportTo(spec.exportTo, annotations['networking.istio.io/exportTo'], namespace),
    location,
    resolution: spec.resolution ?? 'NONE',
    addresses: [...(spec.addresses ?? [])],
    source: r.ref,
  }));
  const statics: StaticEndpoint[] = [];
  const eps = spec.endpoints ?? [];
  eps.forEach((ep, i) => {
    const sa = ep.serviceAccount ?? (location === 'MESH_INTERNAL' ? 'default' : '');
    for (const hostname of hosts) {
      for (const p of spec.ports ?? []) {
        statics.push({
          instance: eps.length === 1 ? `${name}.${namespace}` : `${name}.${namespace}#${i}`,
          workload: name,
          namespace,
          ...(ep.address ? { address: ep.address } : {}),
          port: ep.ports?.[p.name] ?? p.targetPort ?? p.number,
          labels: ep.labels ?? {},
          locality: parseLocality(ep.locality),
          serviceAccount: sa,
          identity: sa ? spiffeId(o.trustDomain, namespace, sa) : '',
          weight: ep.weight || 1,
          health: 'HEALTHY',
          service: hostname,
          servicePort: p.number,
          source: r.ref,
        });
      }
    }
  });
  return { services, statics };
}

/** A WorkloadEntry: one instance at `address`, running as `serviceAccount` (`default` when unset). */
export function fromWorkloadEntry(r: ResourceOf<'WorkloadEntry'>, o: ConvertOptions): Workload {
  const { name, namespace } = r.metadata;
  const spec = r.body.spec;
  const labels = spec.labels ?? {};
  const sa = spec.serviceAccount ?? 'default';
  return hashed<Workload>({
    name, namespace, kind: 'WorkloadEntry', labels,
    serviceAccount: sa,
    identity: spiffeId(o.trustDomain, namespace, sa),
    locality: spec.locality ? parseLocality(spec.locality) : localityFromLabels(labels),
    replicas: 1,
    ...(spec.address ? { address: spec.address } : {}),
    ports: { ...spec.ports },
    ...(spec.weight ? { weight: spec.weight } : {}),
    health: 'HEALTHY',
    source: r.ref,
  });
}
