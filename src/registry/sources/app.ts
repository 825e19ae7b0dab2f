/**
 * The local-mode App manifest → registry objects: each service a cluster
 * service selecting `app: <name>`, each workload a set of instances placed
 * per `placement`, running as the service's account.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { appServices } from '../../api/kinds/app.js';
import { spiffeId } from '../identity.js';
import { protocolOf } from '../protocol.js';
import type { Service, Workload } from '../types.js';
import type { ConvertOptions } from './kubernetes.js';
import { hashed, NO_LOCALITY } from './make.js';

/** An App: a service per `spec.services` entry, a workload per workload (or per shorthand service). */
export function fromApp(r: ResourceOf<'App'>, o: ConvertOptions): { services: Service[]; workloads: Workload[] } {
  const services: Service[] = [];
  const workloads: Workload[] = [];
  for (const s of appServices(r.body.spec)) {
    services.push(hashed<Service>({
      hostname: `${s.name}.${s.namespace}.svc.${o.domainSuffix}`,
      name: s.name,
      namespace: s.namespace,
      ports: s.ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort, protocol: protocolOf(p.name, p.appProtocol, { port: p.port }) })),
      labels: s.labels,
      selector: { app: s.name },
      exportTo: ['*'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      addresses: [],
      source: r.ref,
    }));
    const ports = Object.fromEntries(s.ports.filter((p) => p.name).map((p) => [p.name, p.targetPort]));
    for (const w of s.workloads) {
      workloads.push(hashed<Workload>({
        name: w.name,
        namespace: s.namespace,
        kind: 'App',
        labels: w.labels,
        serviceAccount: s.serviceAccount,
        identity: spiffeId(o.trustDomain, s.namespace, s.serviceAccount),
        locality: w.placement[0] ?? NO_LOCALITY,
        ...(w.placement.some((p) => p !== w.placement[0]) ? { instanceLocalities: w.placement } : {}),
        replicas: w.replicas,
        ports,
        health: 'UNKNOWN',
        source: r.ref,
      }));
    }
  }
  return { services, workloads };
}
