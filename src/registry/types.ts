/**
 * The registry's model: services, the workloads that run them, and the
 * endpoints (workload × service port) traffic goes to. Every object is frozen
 * and carries a content `hash`, so the compiler can tell "unchanged" from
 * "rebuilt" without comparing deeply.
 */

/** Application protocol of a port, from its name or `appProtocol` (Istio's rules). */
export type Protocol =
  | 'HTTP' | 'HTTP2' | 'GRPC' | 'GRPC-Web' | 'HTTPS' | 'TLS' | 'TCP' | 'UDP'
  | 'Mongo' | 'MySQL' | 'Redis'
  /** No name prefix or appProtocol: Istio sniffs the protocol; Trellis treats it as HTTP/1.1 with a fallback to TCP later. */
  | 'UNSPECIFIED';

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

export interface ServicePort {
  /** Port name; may be empty for a single unnamed port. */
  readonly name: string;
  /** The service port callers use. */
  readonly port: number;
  /** Port on the workload; a number, or a named container port resolved per endpoint. */
  readonly targetPort: number | string;
  readonly protocol: Protocol;
}

export interface Service {
  /** Fully qualified: `reviews.default.svc.cluster.local`, or a ServiceEntry host (may be a wildcard). */
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  readonly labels: Readonly<Record<string, string>>;
  /** Workload selector; undefined when the endpoints are listed (ServiceEntry endpoints) or absent. */
  readonly selector?: Readonly<Record<string, string>>;
  /** Namespaces the service is visible to: `*` (all), `.` is already resolved to its own namespace. */
  readonly exportTo: readonly string[];
  readonly location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  /** ServiceEntry resolution; Kubernetes Services are `STATIC`. */
  readonly resolution: 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE';
  /** Virtual IPs / CIDRs, when known. */
  readonly addresses: readonly string[];
  /** The resource the service came from: `Service default/reviews`, `ServiceEntry ns/name`. */
  readonly source: string;
  readonly hash: string;
}

/** Something that runs a service: a Pod, a Deployment's pods, a WorkloadEntry, an App service's instances. */
export interface Workload {
  /** Deployment / Pod / WorkloadEntry / App service name. */
  readonly name: string;
  readonly namespace: string;
  readonly kind: 'Pod' | 'Deployment' | 'WorkloadEntry' | 'App';
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /** `spiffe://<trust-domain>/ns/<ns>/sa/<account>`. */
  readonly identity: string;
  readonly locality: Locality;
  /** Number of instances (Deployment replicas, App replicas); 1 otherwise. */
  readonly replicas: number;
  /** Address when known (Pod IP, WorkloadEntry address); undefined for Deployments until instances run. */
  readonly address?: string;
  /** Named ports of the workload (container ports, WorkloadEntry ports) for named targetPorts. */
  readonly ports: Readonly<Record<string, number>>;
  /** Locality of each instance when they differ (App `placement`); length = replicas. `locality` is the first. */
  readonly instanceLocalities?: readonly Locality[];
  /** Load-balancing weight of each instance (WorkloadEntry `weight`); 1 when unset. */
  readonly weight?: number;
  /** Health of the instances when the source knows it (a Pod's readiness); `UNKNOWN` when unset. */
  readonly health?: Endpoint['health'];
  readonly source: string;
  readonly hash: string;
}

/** One place traffic for a service port can go. */
export interface Endpoint {
  /** `name.namespace` of the workload, plus `#i` for the i-th replica when there are several. */
  readonly instance: string;
  readonly workload: string;
  readonly namespace: string;
  /** Undefined when not known yet (a Deployment's pods before they run). */
  readonly address?: string;
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly locality: Locality;
  /** `''` for an endpoint outside the mesh (a MESH_EXTERNAL ServiceEntry endpoint without serviceAccount). */
  readonly serviceAccount: string;
  /** SPIFFE ID the endpoint's certificate must carry; `''` when it has no mesh identity (see serviceAccount). */
  readonly identity: string;
  /** Load-balancing weight, 1 by default (WorkloadEntry weight). */
  readonly weight: number;
  readonly health: 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN';
}

/** A read-only view of the mesh's services, workloads and endpoints. */
export interface Registry {
  /** Every service, sorted by hostname. */
  services(): readonly Service[];
  service(hostname: string): Service | undefined;
  /** Endpoints of one service port, sorted by instance; the same frozen array while nothing changed. */
  endpoints(hostname: string, port: number): readonly Endpoint[];
  /** Content hash of `endpoints(hostname, port)`. */
  endpointsHash(hostname: string, port: number): string;
  workloads(): readonly Workload[];
  /** A workload by name (and namespace, when given); also accepts `name.namespace`. */
  workload(name: string, namespace?: string): Workload | undefined;
  /** Every namespace that has a service, a workload, or a Namespace resource. */
  namespaces(): readonly string[];
  /** The trust domain identities are minted in. */
  readonly trustDomain: string;
  /** The cluster domain suffix, `cluster.local` by default. */
  readonly domainSuffix: string;
}

/** A pluggable source of registry data: files now, running instances and Kubernetes later. */
export interface RegistrySource {
  readonly name: string;
  services(): readonly Service[];
  workloads(): readonly Workload[];
  /** Endpoints the source lists directly (ServiceEntry endpoints); selector-based ones are derived by the registry. */
  staticEndpoints(): readonly StaticEndpoint[];
  /** Namespaces the source declares without services or workloads in them (Namespace, ServiceAccount resources). */
  namespaces?(): readonly string[];
  /** Where a resource named by a `source` field (`Service default/reviews`) is written, for messages. */
  positionOf?(source: string): { readonly file: string; readonly line: number; readonly col: number } | undefined;
}

/** An endpoint a source lists directly, with the service port it belongs to. */
export interface StaticEndpoint extends Endpoint {
  /** Hostname of the service. */
  readonly service: string;
  readonly servicePort: number;
  /**
   * The resource that lists it (`ServiceEntry ns/name`). When set, the
   * registry attaches the endpoint only to a service from that same resource,
   * so a duplicate hostname's endpoints are never merged into another's.
   */
  readonly source?: string;
}
