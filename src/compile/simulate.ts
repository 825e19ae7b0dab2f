/**
 * simulate(snapshot, request) → what the proxy would do with it: listener,
 * virtual host, route (and which match applied), clusters with weights and
 * endpoints, and the reason. Uses the same router the proxy uses
 * (src/policy/route-table.ts), so what `trellis explain` says is what the
 * data plane does.
 */
import type { Cluster, ClusterEndpoints, Route, RouteMatch, Snapshot, SnapshotEndpoint, VirtualHost } from '../protocol/snapshot.js';
import { buildL4Router, type L4Router } from '../policy/l4-routes.js';
import { buildRouter, hostOnly, type Router } from '../policy/route-table.js';
import type { RouteRequest } from '../policy/request.js';
import { routeClaimPath } from '../policy/route-match.js';

export interface SimulateRequest {
  /** An absolute URL, `http://reviews:9080/path?x=1`; the port defaults from the scheme. */
  readonly url: string;
  readonly method?: string;
  /** Header names are compared case-insensitively. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * The payload of a valid JWT the request carries, for route matches on
   * `@request.auth.claims.*`; without it the request has no valid token. Only
   * a gateway's routing sees claims (a sidecar routes before any token is
   * validated), so a sidecar's simulation ignores them.
   */
  readonly claims?: Readonly<Record<string, unknown>>;
}

export type Outcome = 'FORWARD' | 'TCP_PROXY' | 'REDIRECT' | 'DIRECT_RESPONSE' | 'NO_ROUTE' | 'PASSTHROUGH' | 'BLACKHOLE';

export interface SimulatedCluster {
  readonly name: string;
  readonly weight: number;
  /** Share of traffic, 0–100, rounded to 0.01. */
  readonly percent: number;
  /** False when the route names a cluster the snapshot does not have (Envoy's `NC`). */
  readonly found: boolean;
  readonly cluster?: Cluster;
  readonly endpoints: readonly SnapshotEndpoint[];
  readonly healthyEndpoints: number;
}

export interface Simulation {
  readonly request: RouteRequest;
  readonly outcome: Outcome;
  /** The status the caller would see when the proxy answers itself (404, 502, a redirect or a direct response). */
  readonly status?: number;
  /** Envoy-style response flag for failures: NR (no route), NC (no cluster), UH (no healthy upstream). */
  readonly responseFlag?: 'NR' | 'NC' | 'UH';
  readonly listener: { readonly direction: 'outbound'; readonly port: number; readonly protocol: 'HTTP' | 'TCP' };
  readonly virtualHost?: string;
  readonly route?: {
    readonly name: string;
    readonly index: number;
    /** The match alternative that applied, -1 for a route without matches. */
    readonly matchIndex: number;
    /** The match alternative that applied, when there was one. */
    readonly matched?: RouteMatch;
    readonly source?: string;
    readonly action: Route['action'];
  };
  readonly clusters: readonly SimulatedCluster[];
  /** One sentence a person can read. */
  readonly reason: string;
}

const routers = new WeakMap<object, Router>();
const l4Routers = new WeakMap<object, L4Router>();

function l4For(s: Snapshot): L4Router {
  let r = l4Routers.get(s);
  if (!r) l4Routers.set(s, (r = buildL4Router(s)));
  return r;
}

function routerFor(s: Snapshot): Router {
  let r = routers.get(s);
  if (!r) routers.set(s, (r = buildRouter(s)));
  return r;
}

/** Parses the request description into the facts routing reads. Throws on a malformed URL. */
export function toRouteRequest(req: SimulateRequest): RouteRequest {
  const u = new URL(req.url);
  const scheme = u.protocol.replace(/:$/, '');
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
  const host = u.host;
  headers[':authority'] ??= host;
  // Keep the path exactly as given (no URL normalization): routing sees the raw path.
  const raw = req.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '') || '/';
  return { port, host, path: raw, method: (req.method ?? 'GET').toUpperCase(), scheme, headers, ...(req.claims ? { claims: req.claims } : {}) };
}

/** What the reason adds when routes of the virtual host match on JWT claims: that the outcome depends on the token. */
function claimNote(snapshot: Snapshot, req: RouteRequest, vh: VirtualHost | undefined): string {
  if (!vh || !vh.routes.some((r) => r.match.some((m) => [...m.headers, ...m.withoutHeaders].some((h) => routeClaimPath(h.name))))) return '';
  if (snapshot.node.kind === 'sidecar') return '; routes of this host match on JWT claims, which a sidecar never knows (tokens are validated at the destination, after routing): those matches never hold here';
  return req.claims
    ? '; routes of this host match on JWT claims, evaluated with the claims given (as of a valid token)'
    : '; routes of this host match on JWT claims, evaluated as for a request without a valid token (give claims to see the route a token takes)';
}

export function simulate(snapshot: Snapshot, request: SimulateRequest | RouteRequest): Simulation {
  const req = 'url' in request ? toRouteRequest(request) : request;
  const router = routerFor(snapshot);
  const decision = router.route(req);
  const listener = { direction: 'outbound', port: req.port, protocol: 'HTTP' } as const;
  if (!decision.ok && decision.reason === 'NO_ROUTE_TABLE') {
    const l4 = l4For(snapshot);
    if (l4.isTlsService(req.port, req.host) || l4.hasTls(req.port)) {
      // TLS the proxy does not terminate: routed by the SNI, which a client sends as the URL's host.
      const sni = hostOnly(req.host);
      const tls = l4.tls(req.port, sni);
      if (tls) {
        const clusters = simulatedClusters(snapshot, tls.clusters);
        return { request: req, outcome: 'TCP_PROXY', listener: { ...listener, protocol: 'TCP' }, clusters, reason: `port ${req.port} carries TLS routed by SNI: "${sni}" matches ${tls.name}${tls.source ? ` (${tls.source})` : ''}, bytes go to ${describeSplit(clusters)} without decryption` };
      }
    }
    const tcp = l4.tcp(req.port, req.host);
    if (tcp) {
      const clusters = simulatedClusters(snapshot, tcp.clusters);
      const split = describeSplit(clusters);
      return { request: req, outcome: 'TCP_PROXY', listener: { ...listener, protocol: 'TCP' }, clusters, reason: `${tcp.host}:${tcp.port} is a TCP service${tcp.source ? ` (routed by ${tcp.source})` : ''}: bytes go to ${split}; HTTP routing does not apply` };
    }
  }
  if (!decision.ok) {
    if (decision.reason === 'NO_ROUTE') {
      return { request: req, outcome: 'NO_ROUTE', status: 404, responseFlag: 'NR', listener, ...(decision.virtualHost ? { virtualHost: decision.virtualHost.name } : {}), clusters: [], reason: `${decision.detail}: the proxy answers 404 (NR)${claimNote(snapshot, req, decision.virtualHost)}` };
    }
    const host = hostOnly(req.host);
    if (snapshot.mesh.outboundTrafficPolicy === 'ALLOW_ANY') {
      return { request: req, outcome: 'PASSTHROUGH', listener, clusters: [], reason: `${decision.detail}; outboundTrafficPolicy is ALLOW_ANY, so the request goes to ${host}:${req.port} directly, outside the mesh` };
    }
    return { request: req, outcome: 'BLACKHOLE', status: 502, responseFlag: 'NR', listener, clusters: [], reason: `${decision.detail}; outboundTrafficPolicy is REGISTRY_ONLY, so the proxy refuses it with 502` };
  }
  const { route, virtualHost } = decision;
  const note = claimNote(snapshot, req, virtualHost);
  const routeInfo = {
    name: route.name, index: decision.routeIndex, matchIndex: decision.matchIndex,
    ...(decision.matchIndex >= 0 ? { matched: route.match[decision.matchIndex]! } : {}),
    ...(virtualHost.source ? { source: virtualHost.source } : {}), action: route.action,
  };
  const matched = decision.matchIndex >= 0 ? ` (match ${decision.matchIndex}${route.match[decision.matchIndex]?.name ? ` "${route.match[decision.matchIndex]!.name}"` : ''})` : '';
  const via = `${virtualHost.name}, route "${route.name}"${matched}${virtualHost.source ? ` of ${virtualHost.source}` : ''}`;
  const a = route.action;
  if (a.kind === 'direct') {
    return { request: req, outcome: 'DIRECT_RESPONSE', status: a.status, listener, virtualHost: virtualHost.name, route: routeInfo, clusters: [], reason: `${via} answers directly with ${a.status}${note}` };
  }
  if (a.kind === 'redirect') {
    return { request: req, outcome: 'REDIRECT', status: a.status, listener, virtualHost: virtualHost.name, route: routeInfo, clusters: [], reason: `${via} redirects with ${a.status}${a.uri ? ` to ${a.uri}` : ''}${a.authority ? ` on ${a.authority}` : ''}${note}` };
  }
  const clusters = simulatedClusters(snapshot, a.clusters);
  const live = clusters.filter((c) => c.percent > 0);
  const missing = live.filter((c) => !c.found);
  if (missing.length === live.length && live.length > 0) {
    return { request: req, outcome: 'FORWARD', status: 503, responseFlag: 'NC', listener, virtualHost: virtualHost.name, route: routeInfo, clusters, reason: `${via} sends to ${missing.map((c) => c.name).join(', ')}, which the mesh does not have: 503 (NC)${note}` };
  }
  const split = describeSplit(clusters);
  const none = live.every((c) => c.healthyEndpoints === 0);
  // Endpoints declared but without an address (instances not running yet):
  // the configuration routes there, a live proxy cannot send yet (it answers 503 UH).
  const notRunning = !none && live.every((c) => c.endpoints.every((e) => e.address === undefined));
  return {
    request: req, outcome: 'FORWARD', listener, virtualHost: virtualHost.name, route: routeInfo, clusters,
    ...(none ? { status: 503, responseFlag: 'UH' as const } : {}),
    reason: `${via} forwards to ${split}${none ? '; no healthy endpoint: 503 (UH)' : ''}` +
      (notRunning ? '; none of these instances runs yet (no address): a live proxy would answer 503 (UH) until they register' : '') + note,
  };
}

function simulatedClusters(snapshot: Snapshot, weighted: readonly { readonly cluster: string; readonly weight: number }[]): SimulatedCluster[] {
  const total = weighted.reduce((n, c) => n + c.weight, 0);
  return weighted.map((wc): SimulatedCluster => {
    const i = clusterIndex(snapshot, wc.cluster);
    const c = i >= 0 ? snapshot.clusters[i] : undefined;
    const eps: ClusterEndpoints | undefined = i >= 0 ? snapshot.endpoints[i] : undefined;
    const endpoints = eps?.endpoints ?? [];
    return {
      name: wc.cluster, weight: wc.weight,
      percent: total > 0 ? Math.round((wc.weight / total) * 10000) / 100 : weighted.length === 1 ? 100 : 0,
      found: c !== undefined, ...(c ? { cluster: c } : {}), endpoints,
      healthyEndpoints: endpoints.filter((e) => e.health === 'HEALTHY' || e.health === 'UNKNOWN').length,
    };
  });
}

function describeSplit(clusters: readonly SimulatedCluster[]): string {
  return clusters.filter((c) => c.percent > 0)
    .map((c) => `${c.name} ${c.percent}%${c.found ? ` (${c.healthyEndpoints} endpoint${c.healthyEndpoints === 1 ? '' : 's'})` : ' (no such cluster)'}`)
    .join(', ');
}

const clusterIndexes = new WeakMap<object, Map<string, number>>();

function clusterIndex(s: Snapshot, name: string): number {
  let m = clusterIndexes.get(s);
  if (!m) {
    m = new Map(s.clusters.map((c, i) => [c.name, i]));
    clusterIndexes.set(s, m);
  }
  return m.get(name) ?? -1;
}

export { simulateRateLimits, type RateLimitSimulateRequest, type SimulatedLimit } from './rate-limit-simulate.js';
