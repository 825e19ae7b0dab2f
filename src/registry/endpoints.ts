/**
 * Deriving endpoints: which workloads a service selects, the port each
 * instance serves a service port on, and the order endpoints are listed in.
 */
import type { Endpoint, Locality, Service, ServicePort, Workload } from './types.js';

/**
 * Whether a selector picks a workload with these labels: every selector label
 * is present with the same value. An empty selector `{}` picks every
 * workload (a ServiceEntry `workloadSelector: {}`); an absent one (undefined)
 * picks none.
 */
export function selects(selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/**
 * The port a workload serves a service port on, or undefined when a named
 * targetPort names no port of the workload. A WorkloadEntry's `ports` map
 * service port names to its own ports (Istio's rule), so it overrides the
 * targetPort when it names the service port.
 */
export function targetPortOf(sp: ServicePort, w: Workload): number | undefined {
  if (w.kind === 'WorkloadEntry' && sp.name !== '' && w.ports[sp.name] !== undefined) return w.ports[sp.name];
  if (typeof sp.targetPort === 'number') return sp.targetPort;
  return w.ports[sp.targetPort];
}

/** Instance name of replica `i`: `name.ns`, or `name.ns#i` when the workload has several. */
export function instanceName(w: Pick<Workload, 'name' | 'namespace' | 'replicas'>, i: number): string {
  return w.replicas === 1 ? `${w.name}.${w.namespace}` : `${w.name}.${w.namespace}#${i}`;
}

/** One endpoint per instance of `w` on `port`. */
export function workloadEndpoints(w: Workload, port: number): Endpoint[] {
  const out: Endpoint[] = [];
  for (let i = 0; i < w.replicas; i++) {
    const locality: Locality = w.instanceLocalities?.[i] ?? w.locality;
    out.push({
      instance: instanceName(w, i),
      workload: w.name,
      namespace: w.namespace,
      ...(w.address !== undefined ? { address: w.address } : {}),
      port,
      labels: w.labels,
      locality,
      serviceAccount: w.serviceAccount,
      identity: w.identity,
      weight: w.weight ?? 1,
      health: w.health ?? 'UNKNOWN',
    });
  }
  return out;
}

/** The endpoints of `service` on `sp` from the workloads of its namespace; unresolved named ports are passed to `unresolved`. */
export function selectedEndpoints(
  service: Service,
  sp: ServicePort,
  workloads: readonly Workload[],
  unresolved: (w: Workload) => void,
): Endpoint[] {
  const out: Endpoint[] = [];
  for (const w of workloads) {
    if (w.namespace !== service.namespace || !selects(service.selector, w.labels)) continue;
    const port = targetPortOf(sp, w);
    if (port === undefined) unresolved(w);
    else out.push(...workloadEndpoints(w, port));
  }
  return out;
}

const INSTANCE = /^(.*?)(?:#(\d+))?$/;

/** Orders endpoints by instance (`#2` before `#10`), then address and port. */
export function compareEndpoints(a: Endpoint, b: Endpoint): number {
  const ma = INSTANCE.exec(a.instance)!;
  const mb = INSTANCE.exec(b.instance)!;
  return cmp(ma[1]!, mb[1]!)
    || Number(ma[2] ?? -1) - Number(mb[2] ?? -1)
    || cmp(a.address ?? '', b.address ?? '')
    || a.port - b.port;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The node topology labels Istio's registry puts on every endpoint, read from its locality. */
const TOPOLOGY_LABELS: readonly [label: string, part: keyof Locality][] = [
  ['topology.kubernetes.io/region', 'region'],
  ['topology.kubernetes.io/zone', 'zone'],
  ['topology.istio.io/subzone', 'subzone'],
];

/**
 * Whether a selector (a DestinationRule subset's labels) picks an endpoint:
 * its own labels, plus the topology labels of its locality where the locality
 * is known and the endpoint does not carry the label itself (Istio's
 * registry adds them, so `topology.kubernetes.io/zone: z1` picks the
 * endpoints in zone z1).
 */
export function selectsEndpoint(selector: Readonly<Record<string, string>>, e: Pick<Endpoint, 'labels' | 'locality'>): boolean {
  for (const [k, v] of Object.entries(selector)) {
    const own = e.labels[k];
    if (own !== undefined) {
      if (own !== v) return false;
      continue;
    }
    const topo = TOPOLOGY_LABELS.find(([label]) => label === k);
    if (!topo || v === '' || e.locality[topo[1]] !== v) return false;
  }
  return true;
}
