/**
 * The snapshot: everything one proxy needs, as plain frozen data. It is the
 * wire contract between control plane and proxy (fields are added, never
 * repurposed) and the format of `trellis compile --dump`, which upgrade checks
 * compare across versions. Docs: docs/snapshot.md.
 *
 * Parts that do not depend on the proxy (virtual hosts, clusters, endpoint
 * lists) are shared between snapshots: the same objects, not copies.
 */
import type { LogFormat } from '../api/access-log-format.js';
import type { FilterExpr } from '../api/log-filter.js';
import type { WorkloadAuthz } from './authz.js';
import type { WorkloadRateLimits } from './rate-limit.js';
import type { WorkloadRequestAuthn } from './request-authn.js';

export type { LogFormat, LogOperator, LogPart } from '../api/access-log-format.js';
export type { FilterExpr } from '../api/log-filter.js';

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
  /**
   * The RateLimitPolicies this workload enforces on its inbound side, as the
   * destination of their target Service (src/protocol/rate-limit.ts); absent:
   * no policy targets a service it serves.
   */
  readonly rateLimits?: WorkloadRateLimits;
  /** Access logging as a Telemetry resource decides it for this workload (src/compile/access-logging.ts); absent: MeshConfig's access log, as it says. */
  readonly accessLogging?: WorkloadAccessLogging;
  /** The service metrics Telemetry resources turn off for this workload (src/compile/telemetry-metrics.ts); absent: all of them on. */
  readonly metrics?: WorkloadMetrics;
  /**
   * The limits this workload sheds load with on its outbound side, as a
   * caller: those of every RateLimitPolicy with `enforce: InboundAndOutbound`
   * whose target Service it can reach and whose `callers` include it
   * (src/protocol/rate-limit.ts, docs/rate-limits.md); absent: none.
   */
  readonly outboundRateLimits?: WorkloadRateLimits;
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
  /** MeshConfig `accessLogEncoding`, when set (or decided by `accessLogFormat`). */
  readonly accessLogEncoding?: 'JSON' | 'TEXT';
  /** MeshConfig `accessLogFormat`, parsed: a TEXT template or JSON fields of Envoy command operators (src/api/access-log-format.ts); absent: Trellis's default lines. */
  readonly accessLogFormat?: LogFormat;
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
  /**
   * Opaque TCP routes, sorted by port then host; a host and port may have
   * several, tried in order (the first whose `match` holds wins), the last
   * of them a catch-all.
   */
  readonly tcp: readonly TcpRoute[];
  /**
   * SNI routes of TLS and HTTPS service ports, sorted by port; within a
   * port by service, each service's VirtualService `tls` rules in order, or
   * the service's own route for its hostname when no rule applies to the
   * port. Absent: none (also older snapshots).
   */
  readonly tls?: readonly TlsRoute[];
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
  /** VirtualService `corsPolicy`: the proxy answers preflights and adds CORS headers for allowed origins. Absent: no CORS handling. */
  readonly cors?: CorsPolicy;
}

/** Envoy's CORS policy, from Istio's `CorsPolicy` (lists joined with `,` when sent). */
export interface CorsPolicy {
  /** An origin is allowed when a matcher accepts it, or accepts the literal `*` (allow every origin). Empty: none. */
  readonly allowOrigins: readonly StringMatcher[];
  /** `access-control-allow-methods` of a preflight answer; `["*"]` echoes the requested method. */
  readonly allowMethods: readonly string[];
  /** `access-control-allow-headers`; `["*"]` echoes the requested headers. */
  readonly allowHeaders: readonly string[];
  /** `access-control-expose-headers` on allowed origins' responses. */
  readonly exposeHeaders: readonly string[];
  /** `access-control-max-age` of a preflight answer, whole seconds; absent: not sent. */
  readonly maxAgeSeconds?: number;
  /** Sends `access-control-allow-credentials: true`. */
  readonly allowCredentials: boolean;
  /** A preflight from an origin not allowed: FORWARD it upstream (the default) or IGNORE it (answered 200 without `access-control-allow-origin`). */
  readonly unmatchedPreflights: 'FORWARD' | 'IGNORE';
}

/** One shadow destination: a copy of the request goes there and its answer is dropped (VirtualService `mirror` / `mirrors`). */
export interface MirrorPolicy {
  readonly cluster: string;
  /** Percent of requests (0–100) copied; 100 when the VirtualService says nothing. */
  readonly percentage: number;
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
  /** Shadow copies of each request (`mirror` + `mirrorPercentage`, or `mirrors`), in order. Absent: none. */
  readonly mirrors?: readonly MirrorPolicy[];
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
  /** The body as text (`body.string`, or `body.bytes` that are valid UTF-8). */
  readonly body?: string;
  /** `body.bytes` that are not valid UTF-8, base64 as written; sent byte for byte. */
  readonly bodyBase64?: string;
}

export interface TcpRoute {
  readonly port: number;
  readonly host: string;
  readonly clusters: readonly WeightedCluster[];
  readonly source?: string;
  /** The rule's name for records: `<vs>.tcp.<index>`; absent for the service's own route. */
  readonly name?: string;
  /** Alternatives: the route applies when any one holds. Absent or empty: always (the catch-all). */
  readonly match?: readonly L4Match[];
  /** The service's virtual IPs: a connection to `<address>:<port>` is for this host too. */
  readonly addresses?: readonly string[];
}

/**
 * One match block of a tcp or tls rule (Istio's L4MatchAttributes, the
 * parts a sidecar decides); every field present must hold. The port and
 * `gateways` are decided by the compiler.
 */
export interface L4Match {
  /** Evaluated against the proxy's own labels when the snapshot is applied. */
  readonly sourceLabels?: Readonly<Record<string, string>>;
  /** The proxy's namespace must be this one. */
  readonly sourceNamespace?: string;
  /**
   * IPs or CIDRs the destination address must be in. Only a connection
   * whose destination is an IP address (a service VIP) can match; by name
   * the block does not hold.
   */
  readonly destinationSubnets?: readonly string[];
}

/**
 * A route for TLS by its SNI, the ClientHello's server_name (the proxy
 * peeks it and does not terminate TLS). Among the routes of a port, an
 * exact name beats a wildcard, a longer wildcard a shorter one, and among
 * equals the first wins.
 */
export interface TlsRoute {
  readonly port: number;
  /**
   * Names the route answers: exact (`api.example.com`, lowercase) or
   * `*.example.com`, which matches any name ending in `.example.com`.
   */
  readonly sniHosts: readonly string[];
  /** The service the route belongs to (the VirtualService's host, or the TLS service itself). */
  readonly host: string;
  readonly clusters: readonly WeightedCluster[];
  /** `VirtualService ns/name` for a rule's route; absent for the service's own. */
  readonly source?: string;
  /** `<vs>.tls.<index>`, or `tls <host>:<port>` for the service's own route. */
  readonly name: string;
  /** As for TCP routes: alternatives, any one must hold; absent: always. */
  readonly match?: readonly L4Match[];
}

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' | 'CONSISTENT_HASH';

export interface LoadBalancer {
  readonly policy: LbPolicy;
  /** For CONSISTENT_HASH: what the hash is taken of. */
  readonly hashOn?: {
    readonly header?: string;
    readonly cookie?: string;
    /**
     * With `cookie` (Istio's httpCookie with a `ttl`): a request without the
     * cookie gets one made by the proxy, which hashes it and sets it on the
     * response (`Set-Cookie: name=value; Max-Age=ttl; Path=path; HttpOnly`;
     * ttl 0: a session cookie, no Max-Age). Absent: no cookie is made.
     */
    readonly setCookie?: {
      readonly ttlSeconds: number;
      readonly path?: string;
      readonly attributes: readonly { readonly name: string; readonly value?: string }[];
    };
    readonly sourceIp?: boolean;
    readonly queryParameter?: string;
  };
  /**
   * For CONSISTENT_HASH: the algorithm. RING_HASH (Istio's default) with at
   * least `minimumRingSize` entries (default 1024), or MAGLEV with a lookup
   * table of `tableSize` entries (a prime, default 65537). Absent: RING_HASH, 1024.
   */
  readonly hash?:
    | { readonly algorithm: 'RING_HASH'; readonly minimumRingSize: number }
    | { readonly algorithm: 'MAGLEV'; readonly tableSize: number };
  /**
   * Slow start (ROUND_ROBIN and LEAST_REQUEST only, as in Envoy): an
   * endpoint that joined the cluster less than `durationMs` ago gets
   * weight × max(minimumPercent / 100, (age / duration) ^ (1 / aggression)).
   * Absent: off.
   */
  readonly warmup?: { readonly durationMs: number; readonly aggression: number; readonly minimumPercent: number };
  /**
   * Locality-aware balancing (src/proxy/locality.ts). `enabled` when
   * `localityLbSetting.enabled` is not false and the cluster has outlier
   * detection (failover needs it, as in Istio) or a `distribute` rule
   * (weights need no ejections: Istio applies them either way).
   */
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
  /**
   * DestinationRule `retryBudget` (Envoy's retry_budget): retries in flight to
   * the cluster ≤ max(minRetryConcurrency, percent % of its active and
   * pending requests); replaces `maxRetries` when present. Absent: no budget.
   */
  readonly retryBudget?: { readonly percent: number; readonly minRetryConcurrency: number };
}

/**
 * DestinationRule `outlierDetection` with Istio's defaults (src/proxy/outlier.ts
 * acts on it). A threshold of 0 turns that kind of detection off.
 */
export interface OutlierDetection {
  /** Consecutive 5xx (and, without the split, local-origin failures) before ejection; 5 by default. */
  readonly consecutive5xxErrors: number;
  /** Consecutive 502/503/504 (and, without the split, local-origin failures); 0 (off) by default, the value of the deprecated `consecutiveErrors` when only that is set. */
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  /** An ejection lasts this × the times the host was ejected (capped at 300 s or this, whichever is larger). */
  readonly baseEjectionTimeMs: number;
  /** Hosts are ejected only while fewer than this percent of the cluster's hosts are. */
  readonly maxEjectionPercent: number;
  /** Below this percent of healthy hosts (in a priority level) the balancer ignores ejections (panic); 0: never. */
  readonly minHealthPercent: number;
  /** Present (true) when local-origin failures (connect failure, reset, per-try timeout) are counted apart from responses. */
  readonly splitExternalLocalOriginErrors?: true;
  /** With the split: consecutive local-origin failures before ejection (5 by default, as Envoy's). */
  readonly consecutiveLocalOriginFailures?: number;
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

/** One side of the proxy that a Telemetry resource logs: every request, or those its filter is true for. */
export interface AccessLogSide {
  readonly filter?: FilterExpr;
}

/** Istio's standard metrics as a Telemetry `metrics` override names them: those a Trellis proxy reports. */
export type IstioMetric = 'REQUEST_COUNT' | 'REQUEST_DURATION' | 'REQUEST_SIZE' | 'RESPONSE_SIZE'
  | 'TCP_OPENED_CONNECTIONS' | 'TCP_CLOSED_CONNECTIONS' | 'TCP_SENT_BYTES' | 'TCP_RECEIVED_BYTES';

/** Telemetry `metrics` for one workload: what each side does not report (client: outbound and gateway listeners, reporter=source; server: inbound, reporter=destination). */
export interface WorkloadMetrics {
  /** The Telemetry resources that decided (`namespace/name`), least specific first. */
  readonly sources: readonly string[];
  readonly disabled: { readonly client: readonly IstioMetric[]; readonly server: readonly IstioMetric[] };
}

/** Telemetry `accessLogging` for one workload. */
export interface WorkloadAccessLogging {
  /** The Telemetry that decided (`namespace/name`). */
  readonly source: string;
  /** The listeners whose requests are logged; a direction not here is not. */
  readonly directions: { readonly inbound?: AccessLogSide; readonly outbound?: AccessLogSide; readonly gateway?: AccessLogSide };
  /** A file, `/dev/stdout`, or `""` (nothing to write); absent: the proxy's own (its environment's access log, else /dev/stdout). */
  readonly file?: string;
  readonly encoding?: 'JSON' | 'TEXT';
  readonly format?: LogFormat;
  /** Request headers the filters read (lower case), for the proxy to copy into records. */
  readonly filterHeaders?: readonly string[];
}
