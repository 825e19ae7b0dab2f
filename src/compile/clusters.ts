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
      readonly httpCookie?: { readonly name: string };
      readonly useSourceIp?: boolean;
      readonly httpQueryParameterName?: string;
    };
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
  };
  readonly tls?: {
    readonly mode?: string; readonly sni?: string; readonly subjectAltNames?: readonly string[];
    readonly caCertificates?: string; readonly clientCertificate?: string; readonly privateKey?: string; readonly insecureSkipVerify?: boolean;
  };
  readonly portLevelSettings?: readonly (TrafficPolicyInput & { readonly port?: { readonly number?: number } })[];
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

type Fields = Pick<TrafficPolicyInput, 'loadBalancer' | 'connectionPool' | 'outlierDetection' | 'tls'>;

function overlay(base: Fields, over: TrafficPolicyInput | undefined, port: number): Fields {
  if (!over) return base;
  const pl = over.portLevelSettings?.find((p) => p.port?.number === port);
  const merged: Fields = {
    loadBalancer: over.loadBalancer ?? base.loadBalancer,
    connectionPool: over.connectionPool ?? base.connectionPool,
    outlierDetection: over.outlierDetection ?? base.outlierDetection,
    tls: over.tls ?? base.tls,
  };
  if (!pl) return merged;
  return {
    loadBalancer: pl.loadBalancer ?? merged.loadBalancer,
    connectionPool: pl.connectionPool ?? merged.connectionPool,
    outlierDetection: pl.outlierDetection ?? merged.outlierDetection,
    tls: pl.tls ?? merged.tls,
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
  return Object.freeze({
    policy,
    ...(ch ? { hashOn: Object.freeze({
      ...(ch.httpHeaderName ? { header: ch.httpHeaderName.toLowerCase() } : {}),
      ...(ch.httpCookie ? { cookie: ch.httpCookie.name } : {}),
      ...(ch.useSourceIp ? { sourceIp: true } : {}),
      ...(ch.httpQueryParameterName ? { queryParameter: ch.httpQueryParameterName } : {}),
    }) } : {}),
    locality: Object.freeze({
      enabled: (loc?.enabled ?? DEFAULTS.localityLbEnabled) && outlier,
      failover: Object.freeze((loc?.failover ?? []).map((f) => Object.freeze({ from: f.from ?? '', to: f.to ?? '' }))),
      distribute: Object.freeze((loc?.distribute ?? []).map((d) => Object.freeze({ from: d.from ?? '', to: Object.freeze({ ...(d.to ?? {}) }) }))),
      failoverPriority: Object.freeze([...(loc?.failoverPriority ?? [])]),
    }),
  });
}

function connectionPool(cp: Fields['connectionPool'], meshConnectTimeoutMs: number): ConnectionPool {
  if (cp === undefined) {
    let p = defaultPools.get(meshConnectTimeoutMs);
    if (!p) defaultPools.set(meshConnectTimeoutMs, (p = connectionPool({}, meshConnectTimeoutMs)));
    return p;
  }
  const d = DEFAULTS.connectionPool;
  return Object.freeze({
    maxConnections: cp?.tcp?.maxConnections ?? d.maxConnections,
    connectTimeoutMs: ms(cp?.tcp?.connectTimeout, meshConnectTimeoutMs),
    maxPendingRequests: cp?.http?.http1MaxPendingRequests ?? d.maxPendingRequests,
    maxRequests: cp?.http?.http2MaxRequests ?? d.maxRequests,
    maxRequestsPerConnection: cp?.http?.maxRequestsPerConnection ?? d.maxRequestsPerConnection,
    maxRetries: cp?.http?.maxRetries ?? d.maxRetries,
    idleTimeoutMs: ms(cp?.http?.idleTimeout ?? cp?.tcp?.idleTimeout, d.idleTimeoutMs),
  });
}

function outlierDetection(od: Fields['outlierDetection']): OutlierDetection | undefined {
  if (!od) return undefined;
  const d = DEFAULTS.outlierDetection;
  return Object.freeze({
    consecutive5xxErrors: od.consecutive5xxErrors ?? od.consecutiveErrors ?? d.consecutive5xxErrors,
    consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? d.consecutiveGatewayErrors,
    intervalMs: ms(od.interval, d.intervalMs),
    baseEjectionTimeMs: ms(od.baseEjectionTime, d.baseEjectionTimeMs),
    maxEjectionPercent: od.maxEjectionPercent ?? d.maxEjectionPercent,
    minHealthPercent: od.minHealthPercent ?? d.minHealthPercent,
  });
}

function upstreamTls(tls: Fields['tls'], service: Service | undefined, autoMtls: boolean, identities: readonly string[]): UpstreamTls {
  const explicit = tls?.mode;
  const mode: UpstreamTls['mode'] = explicit === 'DISABLE' || explicit === 'SIMPLE' || explicit === 'MUTUAL' || explicit === 'ISTIO_MUTUAL'
    ? explicit
    : service && service.location === 'MESH_INTERNAL' && autoMtls ? DEFAULTS.tlsMode : 'DISABLE';
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
    connectionPool: connectionPool(p.connectionPool, c.connectTimeoutMs),
    ...(outlier ? { outlierDetection: outlier } : {}),
    tls: upstreamTls(p.tls, c.service, c.autoMtls, c.identities),
    ...(c.drRef ? { source: c.drRef } : {}),
  });
}
