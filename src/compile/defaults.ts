/**
 * Istio's defaults where the YAML is silent, in one table. Each row says what
 * Trellis does, what Istio does, and where Istio documents it; a test checks
 * every row against a compiled snapshot (test/compile/defaults.test.ts), and
 * docs/defaults.md is generated from it (`trellis defaults`).
 */
export interface DefaultRow {
  readonly setting: string;
  readonly value: string;
  readonly istio: string;
  readonly note?: string;
}

const UINT32_MAX = 4294967295;

/** The values, as the compiler uses them. */
export const DEFAULTS = Object.freeze({
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  domainSuffix: 'cluster.local',
  outboundTrafficPolicy: 'ALLOW_ANY' as const,
  pathNormalization: 'DECODE_AND_MERGE_SLASHES' as const,
  enableAutoMtls: true,
  connectTimeoutMs: 10_000,
  routeTimeoutMs: 0,
  retry: Object.freeze({
    attempts: 2,
    perTryTimeoutMs: 0,
    retryOn: Object.freeze(['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']),
    retriableStatusCodes: Object.freeze([503]),
    retryRemoteLocalities: false,
    backoffBaseMs: 25,
  }),
  lbPolicy: 'LEAST_REQUEST' as const,
  localityLbEnabled: true,
  connectionPool: Object.freeze({
    maxConnections: UINT32_MAX,
    connectTimeoutMs: 10_000,
    maxPendingRequests: UINT32_MAX,
    maxRequests: UINT32_MAX,
    maxRequestsPerConnection: 0,
    maxRetries: UINT32_MAX,
    idleTimeoutMs: 3_600_000,
  }),
  outlierDetection: Object.freeze({
    consecutive5xxErrors: 5,
    consecutiveGatewayErrors: 0,
    intervalMs: 10_000,
    baseEjectionTimeMs: 30_000,
    maxEjectionPercent: 10,
    minHealthPercent: 0,
  }),
  faultPercentage: 100,
  redirectCode: 301,
  singleDestinationWeight: 100,
  tlsMode: 'ISTIO_MUTUAL' as const,
  exportTo: Object.freeze(['*']),
  /** Tracing, once MeshConfig names an OpenTelemetry provider (Istio: 1 % sampling, 256-byte tags; its OTLP default is gRPC, Trellis's HTTP). */
  tracing: Object.freeze({ sampling: 1, maxPathTagLength: 256, maxTagLength: 256, path: '/v1/traces', timeoutMs: 5_000 }),
});

/** The documented table: one row per default. */
export const DEFAULT_ROWS: readonly DefaultRow[] = Object.freeze([
  { setting: 'MeshConfig.trustDomain', value: 'cluster.local', istio: 'MeshConfig.trustDomain: cluster.local' },
  { setting: 'MeshConfig.rootNamespace', value: 'istio-system', istio: 'MeshConfig.rootNamespace: istio-system' },
  { setting: 'MeshConfig.outboundTrafficPolicy.mode', value: 'ALLOW_ANY', istio: 'ALLOW_ANY: unknown hosts are passed through' },
  { setting: 'MeshConfig.pathNormalization.normalization', value: 'DECODE_AND_MERGE_SLASHES', istio: 'BASE', note: 'Trellis is stricter by default so that the known authorization bypasses cannot recur (DESIGN.md §5)' },
  { setting: 'MeshConfig.enableAutoMtls', value: 'true', istio: 'true: mTLS between sidecars without a DestinationRule' },
  { setting: 'MeshConfig.connectTimeout', value: '10s', istio: '10s' },
  { setting: 'VirtualService http[].timeout', value: 'none (0)', istio: 'disabled by default since Istio 1.6' },
  { setting: 'VirtualService http[].retries.attempts', value: '2', istio: '2 (pilot default retry policy)' },
  { setting: 'VirtualService http[].retries.retryOn', value: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes (503)', istio: 'the same' },
  { setting: 'VirtualService http[].retries.perTryTimeout', value: 'none', istio: 'unset: the route timeout bounds all attempts' },
  { setting: 'VirtualService http[].route[].weight', value: '100 for a single destination', istio: 'the same; several destinations need weights' },
  { setting: 'VirtualService http[].fault.*.percentage', value: '100%', istio: 'unset percentage: every request' },
  { setting: 'VirtualService http[].redirect.redirectCode', value: '301', istio: '301 Moved Permanently' },
  { setting: 'DestinationRule trafficPolicy.loadBalancer.simple', value: 'LEAST_REQUEST', istio: 'LEAST_REQUEST' },
  { setting: 'DestinationRule trafficPolicy.loadBalancer.localityLbSetting', value: 'enabled, effective with outlierDetection (failover) or a distribute rule (weights)', istio: 'the same: locality failover needs outlier detection; distribute applies without it' },
  { setting: 'DestinationRule trafficPolicy.connectionPool.tcp.maxConnections', value: '4294967295', istio: '2^32-1 (unlimited)' },
  { setting: 'DestinationRule trafficPolicy.connectionPool.tcp.connectTimeout', value: '10s', istio: 'MeshConfig.connectTimeout' },
  { setting: 'DestinationRule trafficPolicy.connectionPool.http.http1MaxPendingRequests', value: '4294967295', istio: '2^32-1' },
  { setting: 'DestinationRule trafficPolicy.connectionPool.http.http2MaxRequests', value: '4294967295', istio: '2^32-1' },
  { setting: 'DestinationRule trafficPolicy.connectionPool.http.maxRequestsPerConnection', value: '0 (unlimited)', istio: '0' },
  { setting: 'DestinationRule trafficPolicy.connectionPool.http.maxRetries', value: '4294967295', istio: '2^32-1' },
  { setting: 'DestinationRule trafficPolicy.connectionPool.http.idleTimeout', value: '1h', istio: '1h' },
  { setting: 'DestinationRule trafficPolicy.outlierDetection', value: 'off; when present: consecutive5xxErrors 5, interval 10s, baseEjectionTime 30s, maxEjectionPercent 10, minHealthPercent 0', istio: 'the same' },
  { setting: 'DestinationRule trafficPolicy.tls.mode', value: 'ISTIO_MUTUAL inside the mesh (auto mTLS), DISABLE for MESH_EXTERNAL', istio: 'auto mTLS' },
  { setting: 'exportTo (Service, VirtualService, DestinationRule)', value: '*', istio: '* (all namespaces)' },
]);
