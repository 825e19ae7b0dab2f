/**
 * The snapshot: everything one proxy needs, as plain frozen data. It is the
 * wire contract between control plane and proxy (fields are added, never
 * repurposed) and the format of `trellis compile --dump`, which upgrade checks
 * compare across versions. Docs: docs/snapshot.md.
 *
 * Parts that do not depend on the proxy (virtual hosts, clusters, endpoint
 * lists) are shared between snapshots: the same objects, not copies.
 */
import type { WorkloadAuthz } from './authz.js';
import type { WorkloadRequestAuthn } from './request-authn.js';

export const SNAPSHOT_SCHEMA = 'trellis.dev/snapshot/v1';

export interface Snapshot {
  readonly schema: typeof SNAPSHOT_SCHEMA;
  /** Content version, composed from the parts' hashes. Equal versions mean equal snapshots. */
  readonly version: string;
  readonly node: ProxyNode;
  readonly mesh: MeshSettings;
  /** One per service port this workload serves. */
  readonly inbound: readonly InboundListener[];
  readonly outbound: OutboundConfig;
  /**
   * The clusters of every service the proxy can reach: for each service
   * (sorted by host) and port, the default subset and every DestinationRule
   * subset. A route may name a cluster that is not here (an unknown subset):
   * that request fails with 503 NC, as in Istio.
   */
  readonly clusters: readonly Cluster[];
  /** Endpoints of every cluster, in the order of `clusters`. */
  readonly endpoints: readonly ClusterEndpoints[];
  /**
   * PEM roots of the mesh's CA that peers' certificates must chain to. During
   * a root rotation it holds the old and the new root. Absent: the snapshot
   * came from a compile without a CA (`trellis compile`).
   */
  readonly trustBundle?: readonly string[];
  /** The AuthorizationPolicies that apply to this workload, compiled (src/protocol/authz.ts); absent: no policy selects it. */
  readonly authz?: WorkloadAuthz;
  /** The RequestAuthentication JWT rules that apply to this workload, keys inlined; absent: none. */
  readonly requestAuthn?: WorkloadRequestAuthn;
}

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

/** Who the proxy serves. Comes from configuration, never from the proxy's own claim. */
export interface ProxyNode {
  /** `workload.namespace` */
  readonly id: string;
  readonly kind: 'sidecar' | 'gateway';
  readonly workload: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly identity: string;
  readonly locality: Locality;
}

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** Mesh-wide settings the proxy acts on (MeshConfig with defaults applied). */
export interface MeshSettings {
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly domainSuffix: string;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  readonly pathNormalization: PathNormalization;
  readonly enableAutoMtls: boolean;
  readonly connectTimeoutMs: number;
  /** MeshConfig `accessLogFile`, when set: `""` off, `/dev/stdout`, or a path. */
  readonly accessLogFile?: string;
  /** MeshConfig `accessLogEncoding`, when set. */
  readonly accessLogEncoding?: 'JSON' | 'TEXT';
  /** Distributed tracing, present only when MeshConfig turns it on (an OpenTelemetry provider in `defaultProviders.tracing`). */
  readonly tracing?: TracingSettings;
  /**
   * `istio_` when MeshConfig's first `defaultProviders.metrics` is a `prometheus`
   * extension provider: the service metrics take Istio's names. Absent: `trellis_`.
   */
  readonly metricsPrefix?: 'istio_';
}

/** Where and how a proxy traces: MeshConfig's OpenTelemetry extension provider and `defaultConfig.tracing`, defaults applied. */
export interface TracingSettings {
  /** The extension provider in use (the first of `defaultProviders.tracing`). */
  readonly provider: string;
  /** OTLP/HTTP traces endpoint: `http://<service>:<port><http.path, default /v1/traces>`. */
  readonly endpoint: string;
  /** Extra request headers for the collector (`http.headers`), sorted by name. */
  readonly headers: Readonly<Record<string, string>>;
  /** One export request's timeout (`http.timeout`, default 5000). */
  readonly timeoutMs: number;
  /** Percent (0–100) of new traces sampled where a trace starts (`defaultConfig.tracing.sampling`, default 1). */
  readonly sampling: number;
  /** The longest `url.path` / `url.full` attribute (`defaultConfig.tracing.maxPathTagLength`, default 256). */
  readonly maxPathTagLength: number;
  /** The longest string attribute (the provider's `maxTagLength`, default 256). */
  readonly maxTagLength: number;
}

export interface InboundListener {
  /** `inbound|<port>|<service fqdn>` */
  readonly name: string;
  readonly service: string;
  /** The service port callers name. */
  readonly port: number;
  /** Where the local app listens. */
  readonly targetPort: number;
  readonly protocol: string;
  /**
   * PeerAuthentication for this port (Istio's precedence: port-level, workload selector, namespace, mesh-wide).
   * STRICT: only mTLS from certificates of the trust bundle; PERMISSIVE: mTLS or plaintext; DISABLE: plaintext only.
   * Absent (older snapshots): PERMISSIVE.
   */
  readonly mtls?: PeerAuthnMode;
}

export type PeerAuthnMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface OutboundConfig {
  /** HTTP route tables by port, sorted by port. */
  readonly http: readonly RouteTable[];
  /** Opaque TCP services by port, sorted by port then host. */
  readonly tcp: readonly TcpRoute[];
}

export interface RouteTable {
  readonly port: number;
  /**
   * Gateway proxies: the Gateways (`namespace/name`) whose servers listen on
   * this port. A route match naming `gateways` applies when one of them is
   * here. Absent on sidecars.
   */
  readonly gateways?: readonly string[];
  /** Sorted by name. Looked up by host: see `src/policy/route-table.ts`. */
  readonly virtualHosts: readonly VirtualHost[];
}

export interface VirtualHost {
  /** `<host>:<port>` */
  readonly name: string;
  /** Fully qualified hosts this virtual host answers (wildcards allowed, `*.example.com`). Short names are expanded by the lookup with the caller's namespace. */
  readonly domains: readonly string[];
  /** The VirtualService that shaped it, if any (`VirtualService ns/name`). */
  readonly source?: string;
  /** Tried in order; the first whose match fits wins. */
  readonly routes: readonly Route[];
}

export interface Route {
  /** The VirtualService http route name, or `<vs>.<index>`; `default` for the implicit route. */
  readonly name: string;
  /** Alternatives: the route applies when any one matches. Empty: matches every request. */
  readonly match: readonly RouteMatch[];
  readonly action: RouteAction;
}

export interface StringMatcher {
  readonly kind: 'exact' | 'prefix' | 'regex';
  readonly value: string;
  /** Compare case-insensitively (VirtualService `ignoreUriCase`). */
  readonly ignoreCase?: boolean;
}

export interface NamedMatcher {
  readonly name: string;
  /** Absent: the header / parameter only has to be present. */
  readonly match?: StringMatcher;
}

/** All conditions must hold. */
export interface RouteMatch {
  readonly name?: string;
  readonly uri?: StringMatcher;
  readonly scheme?: StringMatcher;
  readonly method?: StringMatcher;
  readonly authority?: StringMatcher;
  readonly headers: readonly NamedMatcher[];
  /** Headers that must NOT match. */
  readonly withoutHeaders: readonly NamedMatcher[];
  readonly queryParams: readonly NamedMatcher[];
  readonly port?: number;
  /** Evaluated against the proxy's own labels when the snapshot is applied. */
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly sourceNamespace?: string;
  readonly gateways?: readonly string[];
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction;

export interface HeaderOps {
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

export interface WeightedCluster {
  readonly cluster: string;
  readonly weight: number;
  readonly requestHeaders?: HeaderOps;
  readonly responseHeaders?: HeaderOps;
}

export interface RetryPolicy {
  readonly attempts: number;
  /** 0: no per-try timeout (the route timeout bounds all tries). */
  readonly perTryTimeoutMs: number;
  readonly retryOn: readonly string[];
  readonly retriableStatusCodes: readonly number[];
  readonly retryRemoteLocalities: boolean;
  readonly backoffBaseMs: number;
}

export interface FaultPolicy {
  readonly delay?: { readonly fixedDelayMs: number; readonly percentage: number };
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly percentage: number };
}

export interface ForwardAction {
  readonly kind: 'forward';
  readonly clusters: readonly WeightedCluster[];
  /** 0: no timeout (Istio's default). */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly rewrite?: { readonly uri?: string; readonly authority?: string; readonly uriRegex?: { readonly match: string; readonly rewrite: string } };
  readonly fault?: FaultPolicy;
  readonly requestHeaders?: HeaderOps;
  readonly responseHeaders?: HeaderOps;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly uri?: string;
  readonly authority?: string;
  readonly port?: number;
  readonly derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  readonly scheme?: string;
  readonly status: number;
}

export interface DirectResponseAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body?: string;
}

export interface TcpRoute {
  readonly port: number;
  readonly host: string;
  readonly clusters: readonly WeightedCluster[];
  readonly source?: string;
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' | 'CONSISTENT_HASH';

export interface LoadBalancer {
  readonly policy: LbPolicy;
  /** For CONSISTENT_HASH: what the hash is taken of. */
  readonly hashOn?: { readonly header?: string; readonly cookie?: string; readonly sourceIp?: boolean; readonly queryParameter?: string };
  /** Locality-aware balancing; only active with outlier detection, as in Istio. */
  readonly locality: {
    readonly enabled: boolean;
    readonly failover: readonly { readonly from: string; readonly to: string }[];
    readonly distribute: readonly { readonly from: string; readonly to: Readonly<Record<string, number>> }[];
    readonly failoverPriority: readonly string[];
  };
}

export interface ConnectionPool {
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRequestsPerConnection: number;
  readonly maxRetries: number;
  readonly idleTimeoutMs: number;
}

export interface OutlierDetection {
  readonly consecutive5xxErrors: number;
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  readonly minHealthPercent: number;
}

export interface UpstreamTls {
  /** ISTIO_MUTUAL: the mesh's own mTLS; DISABLE: plaintext; SIMPLE / MUTUAL: TLS origination to external hosts. */
  readonly mode: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  readonly sni?: string;
  /** Identities the server may present (secure naming). */
  readonly subjectAltNames: readonly string[];
  /** SIMPLE / MUTUAL: files on the proxy's host (PEM), as Istio reads them on the sidecar's file system. */
  readonly caCertificates?: string;
  /** MUTUAL: the client certificate chain and its key. */
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  /** SIMPLE / MUTUAL: do not verify the server's certificate (DestinationRule `insecureSkipVerify`). */
  readonly insecureSkipVerify?: boolean;
}

export interface Cluster {
  /** `outbound|<port>|<subset>|<host>`, as Istio names them. */
  readonly name: string;
  readonly service: string;
  readonly port: number;
  readonly subset?: string;
  readonly protocol: string;
  readonly lb: LoadBalancer;
  readonly connectionPool: ConnectionPool;
  readonly outlierDetection?: OutlierDetection;
  readonly tls: UpstreamTls;
  /** The DestinationRule that shaped it, if any. */
  readonly source?: string;
}

/** One endpoint of a cluster. The registry's endpoint objects are used as they are (shared, not copied). */
export interface SnapshotEndpoint {
  readonly instance: string;
  readonly workload: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly address?: string;
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly locality: Locality;
  readonly identity: string;
  readonly weight: number;
  readonly health: 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN';
}

export interface ClusterEndpoints {
  readonly cluster: string;
  readonly endpoints: readonly SnapshotEndpoint[];
}
