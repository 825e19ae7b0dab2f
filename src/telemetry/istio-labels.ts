/**
 * Istio's service-level label set (istio.io "Istio Standard Metrics"), so
 * that Istio's Grafana dashboards and Kiali read Trellis's metrics as they
 * are. The per-peer halves (workload, namespace, principal, app, version,
 * canonical service and revision, cluster) and the service labels are
 * prepared once per snapshot (`LabelTables`); a request only picks them up
 * and adds its response code, flags and protocol. No path, id or header
 * value becomes a label: cardinality is bounded by the mesh's own names.
 *
 * The caller of an inbound request (reporter "destination") is known only by
 * its verified mTLS certificate. From its SPIFFE ID
 * (`spiffe://<td>/ns/<ns>/sa/<sa>`) Trellis fills `source_principal` (the
 * SPIFFE ID, as Istio writes it) and `source_workload_namespace`. Istio
 * fills the caller's workload, app, version, canonical service and revision
 * from the peer metadata its proxies exchange; Trellis has no such exchange,
 * and a service account does not name one workload (several may share it),
 * so those stay "unknown", as Istio's do without metadata exchange. The
 * source reporter knows the destination from the endpoint it called.
 *
 * `connection_security_policy`, as in Istio: the destination reporter says
 * "mutual_tls" for a request that came over mTLS and "none" for plaintext;
 * the source reporter cannot tell what the server enforces and says
 * "unknown".
 */
import type { RequestRecord } from '../protocol/request-record.js';
import type { Snapshot, SnapshotEndpoint } from '../protocol/snapshot.js';

/** The label names, in Istio's order. */
export const ISTIO_LABELS = [
  'reporter',
  'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace',
  'source_principal', 'source_app', 'source_version', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_service_name', 'destination_service_namespace',
  'destination_canonical_service', 'destination_canonical_revision', 'destination_cluster',
  'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
] as const;

export type IstioLabel = (typeof ISTIO_LABELS)[number];
export type IstioLabels = Readonly<Record<IstioLabel, string>>;

/** What Istio reports for a peer it knows nothing about. */
export const UNKNOWN = 'unknown';

/** One side of a call: the workload and what its labels say. */
export interface Peer {
  readonly workload: string;
  readonly namespace: string;
  readonly principal: string;
  readonly app: string;
  readonly version: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly cluster: string;
}

export interface ServiceNames {
  readonly service: string;
  readonly name: string;
  readonly namespace: string;
}

/** Label halves of one snapshot, looked up by what a record names. */
export interface LabelTables {
  readonly self: Peer;
  /** By cluster name (outbound clusters, inbound listeners, Passthrough/BlackHole). */
  readonly services: ReadonlyMap<string, ServiceNames>;
  /** By endpoint `address:port`, as records name their upstream. */
  readonly endpoints: ReadonlyMap<string, Peer>;
  readonly clusterName: string;
}

const UNKNOWN_PEER = (cluster: string): Peer => ({
  workload: UNKNOWN, namespace: UNKNOWN, principal: UNKNOWN, app: UNKNOWN, version: UNKNOWN,
  canonicalService: UNKNOWN, canonicalRevision: UNKNOWN, cluster,
});
const UNKNOWN_SERVICE: ServiceNames = Object.freeze({ service: UNKNOWN, name: UNKNOWN, namespace: UNKNOWN });

/** Istio's canonical service and revision rules, from a workload's labels. */
export function peerOf(workload: string, namespace: string, identity: string, labels: Readonly<Record<string, string>>, cluster: string): Peer {
  return Object.freeze({
    workload,
    namespace,
    principal: identity || UNKNOWN,
    app: labels['app'] ?? labels['app.kubernetes.io/name'] ?? UNKNOWN,
    version: labels['version'] ?? labels['app.kubernetes.io/version'] ?? UNKNOWN,
    canonicalService: labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels['app'] ?? workload,
    canonicalRevision: labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels['version'] ?? 'latest',
    cluster,
  });
}

/** `name.namespace.svc.<suffix>` → name and namespace; other hosts keep their name and an unknown namespace. */
export function serviceNames(host: string, domainSuffix: string): ServiceNames {
  const tail = `.svc.${domainSuffix}`;
  if (host.endsWith(tail)) {
    const [name, namespace] = host.slice(0, -tail.length).split('.');
    if (name && namespace) return Object.freeze({ service: host, name, namespace });
  }
  return Object.freeze({ service: host, name: host, namespace: UNKNOWN });
}

function endpointAddress(e: SnapshotEndpoint): string | undefined {
  if (e.address === undefined) return undefined;
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Prepares the label halves of a snapshot (when it is applied, not per request). */
export function prepareLabelTables(s: Snapshot, clusterName: string): LabelTables {
  const n = s.node;
  const self = peerOf(n.workload, n.namespace, n.identity, n.labels, clusterName);
  const services = new Map<string, ServiceNames>();
  for (const c of s.clusters) services.set(c.name, serviceNames(c.service, s.mesh.domainSuffix));
  for (const l of s.inbound) services.set(l.name, serviceNames(l.service, s.mesh.domainSuffix));
  for (const special of ['PassthroughCluster', 'BlackHoleCluster', 'InboundPassthroughCluster']) {
    services.set(special, Object.freeze({ service: special, name: special, namespace: UNKNOWN }));
  }
  const endpoints = new Map<string, Peer>();
  for (const ce of s.endpoints) {
    for (const e of ce.endpoints) {
      const at = endpointAddress(e);
      if (at !== undefined && !endpoints.has(at)) endpoints.set(at, peerOf(e.workload, e.namespace, e.identity, e.labels, clusterName));
    }
  }
  return { self, services, endpoints, clusterName };
}

const SPIFFE_WORKLOAD = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** The namespace and service account of a workload SPIFFE ID (`spiffe://<td>/ns/<ns>/sa/<sa>`), if it is one. */
export function spiffeParts(identity: string): { readonly namespace: string; readonly serviceAccount: string } | undefined {
  const m = SPIFFE_WORKLOAD.exec(identity);
  return m ? { namespace: m[1]!, serviceAccount: m[2]! } : undefined;
}

/** A peer known only by its SPIFFE identity: principal and namespace; the rest stays unknown (see the module comment). */
export function peerOfIdentity(identity: string, cluster: string): Peer {
  return { ...UNKNOWN_PEER(cluster), principal: identity, namespace: spiffeParts(identity)?.namespace ?? UNKNOWN };
}

/** The caller's SPIFFE ID of an inbound record: its verified certificate's, or its principal's with the scheme put back. */
function inboundCaller(r: RequestRecord): string | undefined {
  return r.sourceIdentity || (r.peerPrincipal ? `spiffe://${r.peerPrincipal}` : undefined);
}

/** Whether an inbound record came over mTLS (records that do not say: a caller identity means a verified certificate). */
function inboundMtls(r: RequestRecord): boolean {
  return r.mtls ?? inboundCaller(r) !== undefined;
}

/** Source and destination of a record, as the reporting proxy sees them. */
export function peersOf(r: RequestRecord, t: LabelTables): { readonly source: Peer; readonly destination: Peer; readonly service: ServiceNames } {
  const service = (r.cluster !== undefined ? t.services.get(r.cluster) : undefined) ?? UNKNOWN_SERVICE;
  if (r.direction === 'inbound') {
    const id = inboundCaller(r);
    return { source: id ? peerOfIdentity(id, t.clusterName) : UNKNOWN_PEER(t.clusterName), destination: t.self, service };
  }
  let destination = r.upstream !== undefined ? t.endpoints.get(r.upstream) : undefined;
  if (!destination) destination = r.destinationIdentity ? peerOfIdentity(r.destinationIdentity, t.clusterName) : UNKNOWN_PEER(t.clusterName);
  return { source: t.self, destination, service };
}

/** The full label set of one record. */
export function istioLabels(r: RequestRecord, t: LabelTables): IstioLabels {
  const { source: s, destination: d, service } = peersOf(r, t);
  return {
    reporter: r.direction === 'inbound' ? 'destination' : 'source',
    source_workload: s.workload,
    source_canonical_service: s.canonicalService,
    source_canonical_revision: s.canonicalRevision,
    source_workload_namespace: s.namespace,
    source_principal: s.principal,
    source_app: s.app,
    source_version: s.version,
    source_cluster: s.cluster,
    destination_workload: d.workload,
    destination_workload_namespace: d.namespace,
    destination_principal: d.principal,
    destination_app: d.app,
    destination_version: d.version,
    destination_service: service.service,
    destination_service_name: service.name,
    destination_service_namespace: service.namespace,
    destination_canonical_service: d.canonicalService,
    destination_canonical_revision: d.canonicalRevision,
    destination_cluster: d.cluster,
    request_protocol: r.grpc ? 'grpc' : 'http',
    response_code: String(r.status),
    grpc_response_status: r.grpcStatus ?? '',
    response_flags: r.responseFlags.length ? r.responseFlags.join(',') : '-',
    connection_security_policy: r.direction !== 'inbound' ? UNKNOWN : inboundMtls(r) ? 'mutual_tls' : 'none',
  };
}
