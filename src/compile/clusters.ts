/**
 * Clusters (service × port × subset) with their DestinationRule traffic
 * policy merged Istio's way: top-level policy, overridden field by field by
 * the port-level settings for the port, then by the subset's policy (and its
 * own port-level settings).
 */
import { parseDuration } from '../api/duration.js';
import type { Cluster, ConnectionPool, LoadBalancer, OutlierDetection, UpstreamTls } from '../protocol/snapshot.js';
import type { Service } from '../registry/types.js';
import { DEFAULTS } from './defaults.js';

/** The parts of a DestinationRule traffic policy the compiler reads (Istio field names). */
export interface TrafficPolicyInput {
  readonly loadBalancer?: {
    readonly simple?: string;
    readonly consistentHash?: {
      readonly httpHeaderName?: string;
      readonly httpCookie?: { readonly name: string; readonly path?: string; readonly ttl?: string; readonly attributes?: readonly { readonly name: string; readonly value?: string }[] };
      readonly useSourceIp?: boolean;
      readonly httpQueryParameterName?: string;
      readonly ringHash?: { readonly minimumRingSize?: number };
      readonly maglev?: { readonly tableSize?: number };
      /** Deprecated: ringHash.minimumRingSize. */
      readonly minimumRingSize?: number;
    };
    readonly warmupDurationSecs?: string;
    readonly warmup?: { readonly duration: string; readonly minimumPercent?: number; readonly aggression?: number };
    readonly localityLbSetting?: {
      readonly enabled?: boolean;
      readonly failover?: readonly { readonly from?: string; readonly to?: string }[];
      readonly distribute?: readonly { readonly from?: string; readonly to?: Readonly<Record<string, number>> }[];
      readonly failoverPriority?: readonly string[];
    };
  };
  readonly connectionPool?: {
    readonly tcp?: { readonly maxConnections?: number; readonly connectTimeout?: string; readonly idleTimeout?: string };
    readonly http?: {
      readonly http1MaxPendingRequests?: number;
      readonly http2MaxRequests?: number;
      readonly maxRequestsPerConnection?: number;
      readonly maxRetries?: number;
      readonly idleTimeout?: string;
    };
  };
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number;
    readonly consecutiveErrors?: number;
    readonly consecutiveGatewayErrors?: number;
    readonly interval?: string;
    readonly baseEjectionTime?: string;
    readonly maxEjectionPercent?: number;
    readonly minHealthPercent?: number;
    readonly splitExternalLocalOriginErrors?: boolean;
    readonly consecutiveLocalOriginFailures?: number;
  };
  readonly tls?: {
    readonly mode?: string; readonly sni?: string; readonly subjectAltNames?: readonly string[];
    readonly caCertificates?: string; readonly clientCertificate?: string; readonly privateKey?: string; readonly insecureSkipVerify?: boolean;
  };
  readonly portLevelSettings?: readonly (TrafficPolicyInput & { readonly port?: { readonly number?: number } })[];
  /** Top level and subsets only (Istio has none per port). */
  readonly retryBudget?: { readonly percent?: number; readonly minRetryConcurrency?: number };
}

export interface SubsetInput {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicyInput;
}

export interface DestinationRuleInput {
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicyInput;
  readonly subsets?: readonly SubsetInput[];
}

type Fields = Pick<TrafficPolicyInput, 'loadBalancer' | 'connectionPool' | 'outlierDetection' | 'tls' | 'retryBudget'>;

function overlay(base: Fields, over: TrafficPolicyInput | undefined, port: number): Fields {
  if (!over) return base;
  const pl = over.portLevelSettings?.find((p) => p.port?.number === port);
  const merged: Fields = {
    loadBalancer: over.loadBalancer ?? base.loadBalancer,
    connectionPool: over.connectionPool ?? base.connectionPool,
    outlierDetection: over.outlierDetection ?? base.outlierDetection,
    tls: over.tls ?? base.tls,
    retryBudget: over.retryBudget ?? base.retryBudget,
  };
  if (!pl) return merged;
  return {
    loadBalancer: pl.loadBalancer ?? merged.loadBalancer,
    connectionPool: pl.connectionPool ?? merged.connectionPool,
    outlierDetection: pl.outlierDetection ?? merged.outlierDetection,
    tls: pl.tls ?? merged.tls,
    retryBudget: merged.retryBudget,
  };
}

/** The effective policy for a port (and subset) of a DestinationRule. */
export function effectivePolicy(dr: DestinationRuleInput | undefined, port: number, subset: string | undefined): Fields {
  if (!dr) return {};
  let p = overlay({}, dr.trafficPolicy, port);
  const s = subset !== undefined ? dr.subsets?.find((x) => x.name === subset) : undefined;
  if (s) p = overlay(p, s.trafficPolicy, port);
  return p;
}

const ms = (d: string | undefined, fallback: number): number => (d !== undefined ? (parseDuration(d) ?? fallback) : fallback);

const NO_LOCALITY_RULES = Object.freeze([]) as readonly never[];
const DEFAULT_LB = new Map<boolean, LoadBalancer>(
  [true, false].map((on) => [on, Object.freeze({
    policy: DEFAULTS.lbPolicy,
    locality: Object.freeze({ enabled: DEFAULTS.localityLbEnabled && on, failover: NO_LOCALITY_RULES, distribute: NO_LOCALITY_RULES, failoverPriority: NO_LOCALITY_RULES }),
  })]),
);
const defaultPools = new Map<number, ConnectionPool>();

/** Envoy's defaults for the consistent-hash tables and for slow start (Istio passes 0 / unset through to them). */
const HASH_DEFAULTS = Object.freeze({ minimumRingSize: 1024, maglevTableSize: 65537 });
const WARMUP_DEFAULTS = Object.freeze({ aggression: 1, minimumPercent: 10 });

type ConsistentHashInput = NonNullable<NonNullable<Fields['loadBalancer']>['consistentHash']>;

/** Istio's choice: maglev when given, else a ring (its minimumRingSize, or the deprecated top-level one); 0 means Envoy's default. */
function hashAlgorithm(ch: ConsistentHashInput): NonNullable<LoadBalancer['hash']> {
  if (ch.maglev) return Object.freeze({ algorithm: 'MAGLEV', tableSize: ch.maglev.tableSize || HASH_DEFAULTS.maglevTableSize });
  return Object.freeze({ algorithm: 'RING_HASH', minimumRingSize: (ch.ringHash ? ch.ringHash.minimumRingSize : ch.minimumRingSize) || HASH_DEFAULTS.minimumRingSize });
}

/** Slow start: `warmup` (Istio 1.24+) over the older `warmupDurationSecs`; Envoy's aggression 1.0 and minimum 10 % by default. */
function warmup(lb: NonNullable<Fields['loadBalancer']>): LoadBalancer['warmup'] {
  const duration = lb.warmup?.duration ?? lb.warmupDurationSecs;
  const durationMs = duration !== undefined ? ms(duration, 0) : 0;
  if (durationMs <= 0) return undefined;
  return Object.freeze({
    durationMs,
    aggression: lb.warmup?.aggression ?? WARMUP_DEFAULTS.aggression,
    minimumPercent: lb.warmup?.minimumPercent ?? WARMUP_DEFAULTS.minimumPercent,
  });
}

function loadBalancer(lb: Fields['loadBalancer'], outlier: boolean): LoadBalancer {
  if (lb === undefined) return DEFAULT_LB.get(outlier)!;
  const simple = lb?.simple;
  const policy: LoadBalancer['policy'] = lb?.consistentHash
    ? 'CONSISTENT_HASH'
    : simple === 'ROUND_ROBIN' || simple === 'RANDOM' || simple === 'PASSTHROUGH' || simple === 'LEAST_REQUEST'
      ? simple
      : simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : DEFAULTS.lbPolicy;
  const ch = lb?.consistentHash;
  const loc = lb?.localityLbSetting;
  const warm = policy === 'ROUND_ROBIN' || policy === 'LEAST_REQUEST' ? warmup(lb) : undefined;
  return Object.freeze({
    policy,
    ...(ch ? { hashOn: Object.freeze({
      ...(ch.httpHeaderName ? { header: ch.httpHeaderName.toLowerCase() } : {}),
      ...(ch.httpCookie ? { cookie: ch.httpCookie.name } : {}),
      ...(ch.httpCookie?.ttl !== undefined ? { setCookie: Object.freeze({
        ttlSeconds: Math.floor(ms(ch.httpCookie.ttl, 0) / 1000),
        ...(ch.httpCookie.path ? { path: ch.httpCookie.path } : {}),
        attributes: Object.freeze((ch.httpCookie.attributes ?? []).map((a) => Object.freeze({ name: a.name, ...(a.value !== undefined ? { value: a.value } : {}) }))),
      }) } : {}),
      ...(ch.useSourceIp ? { sourceIp: true } : {}),
      ...(ch.httpQueryParameterName ? { queryParameter: ch.httpQueryParameterName } : {}),
    }), hash: hashAlgorithm(ch) } : {}),
    ...(warm ? { warmup: warm } : {}),
    locality: Object.freeze({
      // Failover needs outlier detection (else nothing ever moves traffic down a level); distribute weights do not.
      enabled: (loc?.enabled ?? DEFAULTS.localityLbEnabled) && (outlier || (loc?.distribute?.length ?? 0) > 0),
      failover: Object.freeze((loc?.failover ?? []).map((f) => Object.freeze({ from: f.from ?? '', to: f.to ?? '' }))),
      distribute: Object.freeze((loc?.distribute ?? []).map((d) => Object.freeze({ from: d.from ?? '', to: Object.freeze({ ...(d.to ?? {}) }) }))),
      failoverPriority: Object.freeze([...(loc?.failoverPriority ?? [])]),
    }),
  });
}

/** Istio reads 0 (proto3's unset) as the default for these thresholds, not as "refuse everything". */
const limit = (v: number | undefined, d: number): number => (v === undefined || v === 0 ? d : v);

/** Envoy's retry_budget defaults: 20 %, at least 3 retries. */
function retryBudget(rb: Fields['retryBudget']): ConnectionPool['retryBudget'] {
  return rb ? Object.freeze({ percent: rb.percent ?? 20, minRetryConcurrency: rb.minRetryConcurrency ?? 3 }) : undefined;
}

function connectionPool(cp: Fields['connectionPool'], meshConnectTimeoutMs: number, rb?: Fields['retryBudget']): ConnectionPool {
  if (rb) return Object.freeze({ ...connectionPool(cp, meshConnectTimeoutMs), retryBudget: retryBudget(rb) });
  if (cp === undefined) {
    let p = defaultPools.get(meshConnectTimeoutMs);
    if (!p) defaultPools.set(meshConnectTimeoutMs, (p = connectionPool({}, meshConnectTimeoutMs)));
    return p;
  }
  const d = DEFAULTS.connectionPool;
  return Object.freeze({
    maxConnections: limit(cp?.tcp?.maxConnections, d.maxConnections),
    connectTimeoutMs: ms(cp?.tcp?.connectTimeout, meshConnectTimeoutMs),
    maxPendingRequests: limit(cp?.http?.http1MaxPendingRequests, d.maxPendingRequests),
    maxRequests: limit(cp?.http?.http2MaxRequests, d.maxRequests),
    maxRequestsPerConnection: cp?.http?.maxRequestsPerConnection ?? d.maxRequestsPerConnection,
    maxRetries: limit(cp?.http?.maxRetries, d.maxRetries),
    idleTimeoutMs: ms(cp?.http?.idleTimeout ?? cp?.tcp?.idleTimeout, d.idleTimeoutMs),
  });
}

/** Envoy's consecutive_local_origin_failure default, used once `splitExternalLocalOriginErrors` is on. */
const LOCAL_ORIGIN_FAILURES_DEFAULT = 5;

/**
 * Istio's translation: the deprecated `consecutiveErrors` means gateway
 * errors (502/503/504) and turns the 5xx rule off unless
 * `consecutive5xxErrors` is set too; local-origin failures are counted
 * apart only with `splitExternalLocalOriginErrors`.
 */
function outlierDetection(od: Fields['outlierDetection']): OutlierDetection | undefined {
  if (!od) return undefined;
  const d = DEFAULTS.outlierDetection;
  const legacy = od.consecutiveErrors !== undefined && od.consecutiveErrors > 0 ? od.consecutiveErrors : undefined;
  return Object.freeze({
    consecutive5xxErrors: od.consecutive5xxErrors ?? (legacy !== undefined ? 0 : d.consecutive5xxErrors),
    consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? legacy ?? d.consecutiveGatewayErrors,
    intervalMs: ms(od.interval, d.intervalMs),
    baseEjectionTimeMs: ms(od.baseEjectionTime, d.baseEjectionTimeMs),
    maxEjectionPercent: od.maxEjectionPercent ?? d.maxEjectionPercent,
    minHealthPercent: od.minHealthPercent ?? d.minHealthPercent,
    ...(od.splitExternalLocalOriginErrors
      ? { splitExternalLocalOriginErrors: true as const, consecutiveLocalOriginFailures: od.consecutiveLocalOriginFailures ?? LOCAL_ORIGIN_FAILURES_DEFAULT }
      : {}),
  });
}

function upstreamTls(tls: Fields['tls'], service: Service | undefined, autoMtls: boolean, identities: readonly string[], plaintextPeers: boolean): UpstreamTls {
  const explicit = tls?.mode;
  const mode: UpstreamTls['mode'] = explicit === 'DISABLE' || explicit === 'SIMPLE' || explicit === 'MUTUAL' || explicit === 'ISTIO_MUTUAL'
    ? explicit
    : service && service.location === 'MESH_INTERNAL' && autoMtls && !plaintextPeers ? DEFAULTS.tlsMode : 'DISABLE';
  const sans = tls?.subjectAltNames?.length ? [...tls.subjectAltNames] : mode === 'ISTIO_MUTUAL' ? [...identities] : [];
  const external = mode === 'SIMPLE' || mode === 'MUTUAL';
  return Object.freeze({
    mode, ...(tls?.sni ? { sni: tls.sni } : {}), subjectAltNames: Object.freeze(sans),
    ...(external && tls?.caCertificates ? { caCertificates: tls.caCertificates } : {}),
    ...(mode === 'MUTUAL' && tls?.clientCertificate ? { clientCertificate: tls.clientCertificate } : {}),
    ...(mode === 'MUTUAL' && tls?.privateKey ? { privateKey: tls.privateKey } : {}),
    ...(external && tls?.insecureSkipVerify ? { insecureSkipVerify: true } : {}),
  });
}

export interface ClusterInput {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly subset?: string;
  readonly service?: Service;
  readonly dr?: DestinationRuleInput;
  readonly drRef?: string;
  readonly connectTimeoutMs: number;
  readonly autoMtls: boolean;
  /** Identities of the cluster's endpoints, for secure naming. */
  readonly identities: readonly string[];
  /**
   * Every endpoint of the cluster takes plaintext only (its PeerAuthentication
   * is DISABLE on the target port): auto mTLS then sends plaintext, as
   * Istio's does, instead of a handshake the server refuses.
   */
  readonly plaintextPeers?: boolean;
}

export function buildCluster(c: ClusterInput): Cluster {
  const p = effectivePolicy(c.dr, c.port, c.subset);
  const outlier = outlierDetection(p.outlierDetection);
  const protocol = c.service?.ports.find((sp) => sp.port === c.port)?.protocol ?? 'UNSPECIFIED';
  return Object.freeze({
    name: c.name,
    service: c.host,
    port: c.port,
    ...(c.subset !== undefined ? { subset: c.subset } : {}),
    protocol,
    lb: loadBalancer(p.loadBalancer, outlier !== undefined),
    connectionPool: connectionPool(p.connectionPool, c.connectTimeoutMs, p.retryBudget),
    ...(outlier ? { outlierDetection: outlier } : {}),
    tls: upstreamTls(p.tls, c.service, c.autoMtls, c.identities, c.plaintextPeers === true),
    ...(c.drRef ? { source: c.drRef } : {}),
  });
}
