/**
 * Kubernetes registry data → registry objects: a Service becomes a service
 * `name.ns.svc.<suffix>`; a Pod is a workload of one instance, a Deployment
 * one of `replicas` instances (addresses unknown until they run).
 */
import type { ResourceOf } from '../../api/config-set.js';
import { spiffeId } from '../identity.js';
import { protocolOf } from '../protocol.js';
import type { Endpoint, Service, StaticEndpoint, Workload } from '../types.js';
import { exportTo, hashed, localityFromLabels, NO_LOCALITY } from './make.js';

/** What every conversion needs: where identities and hostnames are minted. */
export interface ConvertOptions {
  readonly trustDomain: string;
  readonly domainSuffix: string;
}

const EXPORT_TO = 'networking.istio.io/exportTo';

/** A Kubernetes Service; an ExternalName service also lists its one endpoint, the external name. */
export function fromService(r: ResourceOf<'Service'>, o: ConvertOptions): { service: Service; statics: StaticEndpoint[] } {
  const { name, namespace, labels, annotations } = r.metadata;
  const spec = r.body.spec ?? {};
  const external = spec.type === 'ExternalName';
  const selector = !external && spec.selector && Object.keys(spec.selector).length > 0 ? spec.selector : undefined;
  const headless = spec.clusterIP === 'None';
  const addresses = [...new Set([spec.clusterIP, ...(spec.clusterIPs ?? [])].filter((a): a is string => !!a && a !== 'None'))];
  const service = hashed<Service>({
    hostname: `${name}.${namespace}.svc.${o.domainSuffix}`,
    name,
    namespace,
    ports: (spec.ports ?? []).map((p) => ({
      name: p.name ?? '',
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      protocol: protocolOf(p.name, p.appProtocol, { port: p.port, ...(p.protocol?.toUpperCase() === 'UDP' ? { transport: 'UDP' as const } : {}) }),
    })),
    labels,
    ...(selector ? { selector } : {}),
    exportTo: exportTo(undefined, annotations[EXPORT_TO], namespace),
    location: external ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
    resolution: external ? 'DNS' : headless ? 'NONE' : 'STATIC',
    addresses,
    source: r.ref,
  });
  const statics: StaticEndpoint[] = external
    ? service.ports.map((p) => ({ ...externalEndpoint(name, namespace, spec.externalName!, p.port), service: service.hostname, servicePort: p.port, source: r.ref }))
    : [];
  return { service, statics };
}

function externalEndpoint(name: string, namespace: string, address: string, port: number): Endpoint {
  return {
    instance: `${name}.${namespace}`, workload: name, namespace, address, port,
    labels: {}, locality: NO_LOCALITY, serviceAccount: '', identity: '', weight: 1, health: 'HEALTHY',
  };
}

type PodSpecLike = NonNullable<ResourceOf<'Pod'>['body']['spec']>;

function containerPorts(spec: PodSpecLike | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name) out[p.name] = p.containerPort;
  return out;
}

function serviceAccountOf(spec: PodSpecLike | undefined): string {
  return spec?.serviceAccountName ?? spec?.serviceAccount ?? 'default';
}

function podHealth(status: ResourceOf<'Pod'>['body']['status']): Endpoint['health'] {
  if (!status) return 'UNKNOWN';
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  if (ready) return ready.status === 'True' ? 'HEALTHY' : 'UNHEALTHY';
  if (status.phase === 'Running') return 'HEALTHY';
  return status.phase ? 'UNHEALTHY' : 'UNKNOWN';
}

/** A Pod: one instance, its IP from `status.podIP`. */
export function fromPod(r: ResourceOf<'Pod'>, o: ConvertOptions): Workload {
  const { name, namespace, labels } = r.metadata;
  const spec = r.body.spec;
  const sa = serviceAccountOf(spec);
  return hashed<Workload>({
    name, namespace, kind: 'Pod', labels,
    serviceAccount: sa,
    identity: spiffeId(o.trustDomain, namespace, sa),
    locality: localityFromLabels(labels),
    replicas: 1,
    ...(r.body.status?.podIP ? { address: r.body.status.podIP } : {}),
    ports: containerPorts(spec),
    health: podHealth(r.body.status),
    source: r.ref,
  });
}

/** A Deployment: `replicas` instances (1 by default) with the pod template's labels. */
export function fromDeployment(r: ResourceOf<'Deployment'>, o: ConvertOptions): Workload {
  const { name, namespace } = r.metadata;
  const spec = r.body.spec;
  const labels = spec.template.metadata?.labels ?? {};
  const sa = serviceAccountOf(spec.template.spec);
  return hashed<Workload>({
    name, namespace, kind: 'Deployment', labels,
    serviceAccount: sa,
    identity: spiffeId(o.trustDomain, namespace, sa),
    locality: localityFromLabels({ ...r.metadata.labels, ...labels }),
    replicas: spec.replicas ?? 1,
    ports: containerPorts(spec.template.spec),
    health: 'UNKNOWN',
    source: r.ref,
  });
}
