/**
 * `networking.istio.io` DestinationRule: what happens to traffic for a host
 * after routing: load balancing, connection pools, outlier detection, TLS to
 * the upstream, per-port and per-subset overrides.
 */
import { atMostOne, duration, labels, noDuplicates, percentage, port, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { exportToIssues, fqdnError, isDnsLabel, isIpAddress, wildcardDomainError } from './names.js';
import { localityLbSetting } from './locality-lb.js';
import { policySelector } from './policy-scope.js';

const count = (what: string) => z.number().int({ message: `${what} must be a whole number` }).min(0, { message: `${what} must not be negative` });
/** A duration of at least 1ms, as Istio requires for timeouts and intervals. */
const interval = () => duration({ min: 1 });

const tcpSettings = z.strictObject({
  maxConnections: count('maxConnections').optional(),
  connectTimeout: interval().optional(),
  tcpKeepalive: z.strictObject({
    probes: count('probes').optional(),
    time: interval().optional(),
    interval: interval().optional(),
  }).optional(),
  maxConnectionDuration: interval().optional(),
  /** `0s` turns the idle timeout off. */
  idleTimeout: duration().optional(),
});

const httpSettings = z.strictObject({
  http1MaxPendingRequests: count('http1MaxPendingRequests').optional(),
  http2MaxRequests: count('http2MaxRequests').optional(),
  maxRequestsPerConnection: count('maxRequestsPerConnection').optional(),
  maxRetries: count('maxRetries').optional(),
  idleTimeout: interval().optional(),
  h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
  useClientProtocol: z.boolean().optional(),
  maxConcurrentStreams: count('maxConcurrentStreams').optional(),
  http2KeepAlive: z.strictObject({ interval: interval().optional(), timeout: interval().optional() }).optional(),
}).superRefine((h, ctx) => {
  if (h.h2UpgradePolicy === 'UPGRADE' && h.useClientProtocol) {
    ctx.addIssue({ code: 'custom', path: ['useClientProtocol'], message: 'useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE; choose one' });
  }
});

/** Limits on connections and requests to each upstream host. */
export const connectionPoolSettings = z.strictObject({ tcp: tcpSettings.optional(), http: httpSettings.optional() })
  .superRefine((c, ctx) => {
    if (!c.tcp && !c.http) ctx.addIssue({ code: 'custom', path: [], message: 'a connection pool needs tcp or http settings' });
  });

const outlierDetection = z.strictObject({
  consecutiveErrors: z.number().int().optional(),
  splitExternalLocalOriginErrors: z.boolean().optional(),
  consecutiveLocalOriginFailures: count('consecutiveLocalOriginFailures').optional(),
  consecutiveGatewayErrors: count('consecutiveGatewayErrors').optional(),
  consecutive5xxErrors: count('consecutive5xxErrors').optional(),
  interval: interval().optional(),
  baseEjectionTime: interval().optional(),
  maxEjectionPercent: z.number().int().min(0).max(100).optional(),
  minHealthPercent: z.number().int().min(0).max(100).optional(),
}).superRefine((o, ctx) => {
  if (!o.splitExternalLocalOriginErrors && (o.consecutiveLocalOriginFailures ?? 0) > 0) {
    ctx.addIssue({ code: 'custom', path: ['consecutiveLocalOriginFailures'], message: 'consecutiveLocalOriginFailures only counts when splitExternalLocalOriginErrors is true; set it or remove this field' });
  }
});

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let f = 2; f * f <= n; f++) if (n % f === 0) return false;
  return true;
}

const consistentHash = z.strictObject({
  httpHeaderName: z.string().optional(),
  httpCookie: z.strictObject({
    name: z.string().refine((s) => s !== '', { message: 'the cookie needs a name' }),
    path: z.string().optional(),
    ttl: duration().optional(),
    attributes: z.array(z.strictObject({ name: z.string(), value: z.string().optional() })).optional(),
  }).optional(),
  useSourceIp: z.boolean().optional(),
  httpQueryParameterName: z.string().optional(),
  ringHash: z.strictObject({ minimumRingSize: count('minimumRingSize').optional() }).optional(),
  maglev: z.strictObject({ tableSize: count('tableSize').optional() }).optional(),
  minimumRingSize: count('minimumRingSize').optional(),
}).superRefine((c, ctx) => {
  atMostOne(c, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'], ctx, 'a consistent hash');
  atMostOne(c, ['ringHash', 'maglev'], ctx, 'a consistent hash');
  if (c.minimumRingSize !== undefined && (c.ringHash || c.maglev)) {
    ctx.addIssue({ code: 'custom', path: ['minimumRingSize'], message: 'minimumRingSize (deprecated) cannot be combined with ringHash or maglev; move it to ringHash.minimumRingSize' });
  }
  const size = c.maglev?.tableSize;
  if (c.maglev && (size === undefined || size === 0 || size >= 5000011 || !isPrime(size))) {
    ctx.addIssue({ code: 'custom', path: ['maglev', 'tableSize'], message: 'maglev.tableSize must be a prime number below 5000011, such as 65537' });
  }
});

const warmup = z.strictObject({
  duration: interval(),
  minimumPercent: percentage().optional(),
  aggression: z.number().refine((a) => a >= 1, { message: 'aggression must be at least 1 (1 ramps traffic up linearly)' }).optional(),
});

/** How requests are spread over the endpoints of a host. */
export const loadBalancerSettings = z.strictObject({
  simple: z.enum(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']).optional(),
  consistentHash: consistentHash.optional(),
  localityLbSetting: localityLbSetting.optional(),
  warmupDurationSecs: interval().optional(),
  warmup: warmup.optional(),
}).superRefine((l, ctx) => atMostOne(l, ['simple', 'consistentHash'], ctx, 'a load balancer'));

/** TLS from the proxy to the upstream. `ISTIO_MUTUAL` uses the mesh's own certificates. */
export const clientTlsSettings = z.strictObject({
  mode: z.enum(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']).optional(),
  clientCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  credentialName: z.string().optional(),
  subjectAltNames: z.array(z.string()).optional(),
  sni: z.string().optional(),
  insecureSkipVerify: z.boolean().optional(),
  caCrl: z.string().optional(),
}).superRefine((t, ctx) => {
  if (t.insecureSkipVerify && (t.mode === 'SIMPLE' || t.mode === 'MUTUAL')) {
    const clash = (['caCertificates', 'subjectAltNames', ...(t.mode === 'SIMPLE' ? ['credentialName'] as const : [])] as const).find((k) => t[k] !== undefined);
    if (clash) ctx.addIssue({ code: 'custom', path: [clash], message: `${clash} has no effect with insecureSkipVerify: true; remove one of them` });
  }
  if ((t.mode === 'SIMPLE' || t.mode === 'MUTUAL') && t.credentialName) {
    const clash = (['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'] as const).find((k) => t[k]);
    if (clash) ctx.addIssue({ code: 'custom', path: [clash], message: `${clash} cannot be set together with credentialName, which already holds the certificates` });
    return;
  }
  if (t.mode === 'MUTUAL') {
    if (!t.clientCertificate) ctx.addIssue({ code: 'custom', path: ['clientCertificate'], message: 'MUTUAL TLS needs clientCertificate (or credentialName)' });
    if (!t.privateKey) ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'MUTUAL TLS needs privateKey (or credentialName)' });
  }
});

const portPolicy = z.strictObject({
  port: z.strictObject({ number: port() }),
  loadBalancer: loadBalancerSettings.optional(),
  connectionPool: connectionPoolSettings.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: clientTlsSettings.optional(),
}).superRefine((p, ctx) => {
  if (!p.loadBalancer && !p.connectionPool && !p.outlierDetection && !p.tls) {
    ctx.addIssue({ code: 'custom', path: [], message: 'a port-level policy needs loadBalancer, connectionPool, outlierDetection or tls' });
  }
});

const tunnel = z.strictObject({
  protocol: z.enum(['CONNECT', 'POST']).optional(),
  targetHost: z.string(),
  targetPort: port(),
}).superRefine((t, ctx) => {
  if (!isIpAddress(t.targetHost) && fqdnError(t.targetHost)) ctx.addIssue({ code: 'custom', path: ['targetHost'], message: `tunnel targetHost "${t.targetHost}" must be a DNS name or an IP address` });
});

export const trafficPolicy = z.strictObject({
  loadBalancer: loadBalancerSettings.optional(),
  connectionPool: connectionPoolSettings.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: clientTlsSettings.optional(),
  portLevelSettings: z.array(portPolicy).max(4096, { message: 'at most 4096 port-level settings' }).optional(),
  tunnel: tunnel.optional(),
  proxyProtocol: z.strictObject({ version: z.enum(['V1', 'V2']).optional() }).optional(),
  retryBudget: z.strictObject({ percent: percentage().optional(), minRetryConcurrency: count('minRetryConcurrency').optional() }).optional(),
}).superRefine((t, ctx) => {
  if (Object.values(t).every((v) => v === undefined)) ctx.addIssue({ code: 'custom', path: [], message: 'a traffic policy needs at least one setting; remove it if it has none' });
  atMostOne(t, ['tunnel', 'proxyProtocol'], ctx, 'a traffic policy');
});

export const subset = z.strictObject({
  name: z.string(),
  labels: labels.optional(),
  trafficPolicy: trafficPolicy.optional(),
}).superRefine((s, ctx) => {
  if (!isDnsLabel(s.name)) ctx.addIssue({ code: 'custom', path: ['name'], message: `subset name "${s.name}" must be a DNS label: letters, digits and inner dashes, at most 63 characters` });
});

export const destinationRuleSpec = z.strictObject({
  host: z.string(),
  trafficPolicy: trafficPolicy.optional(),
  subsets: z.array(subset).optional(),
  exportTo: z.array(z.string()).optional(),
  workloadSelector: policySelector.optional(),
}).superRefine((s, ctx) => {
  const hostErr = wildcardDomainError(s.host);
  if (hostErr) ctx.addIssue({ code: 'custom', path: ['host'], message: hostErr });
  noDuplicates(s.subsets, (sub) => sub.name, ctx, (i) => ['subsets', i, 'name'], (name) => `Duplicate value: subset "${name}" is defined twice`);
  exportToIssues(s.exportTo, ctx, ['exportTo']);
  if (s.workloadSelector && s.exportTo && (s.exportTo.length > 1 || s.exportTo.includes('*'))) {
    ctx.addIssue({ code: 'custom', path: ['exportTo'], message: 'a DestinationRule with a workloadSelector applies only in its own namespace; exportTo may only be "."' });
  }
});

export type DestinationRuleSpec = DeepReadonly<z.infer<typeof destinationRuleSpec>>;
export type TrafficPolicy = DeepReadonly<z.infer<typeof trafficPolicy>>;
export type PortTrafficPolicy = NonNullable<TrafficPolicy['portLevelSettings']>[number];
export type Subset = DeepReadonly<z.infer<typeof subset>>;
export type LoadBalancerSettings = DeepReadonly<z.infer<typeof loadBalancerSettings>>;
export type ConnectionPoolSettings = DeepReadonly<z.infer<typeof connectionPoolSettings>>;
export type OutlierDetection = DeepReadonly<z.infer<typeof outlierDetection>>;
export type ClientTLSSettings = DeepReadonly<z.infer<typeof clientTlsSettings>>;
export type { LocalityLbSetting } from './locality-lb.js';

const policyRoots = ['spec.trafficPolicy', 'spec.subsets[*].trafficPolicy'];
const notEnforcedInPolicy = [
  'tunnel', 'proxyProtocol',
  // Certificates from Kubernetes secrets, and revocation lists: the proxy reads PEM files only (caCertificates, clientCertificate, privateKey).
  'tls.credentialName', 'tls.caCrl', 'portLevelSettings[*].tls.credentialName', 'portLevelSettings[*].tls.caCrl',
];

export const DestinationRule = defineKind({
  kind: 'DestinationRule',
  group: 'networking.istio.io',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  body: z.strictObject({ spec: destinationRuleSpec, status: z.unknown().optional() }),
  notEnforced: policyRoots.flatMap((root) => notEnforcedInPolicy.map((f) => `${root}.${f}`)),
  docs: 'Policies for traffic to a host after routing: load balancing, connection pools, outlier detection, upstream TLS, and named subsets of its endpoints.',
});
