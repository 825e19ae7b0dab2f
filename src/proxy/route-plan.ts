/**
 * A route's action prepared for requests, once per snapshot: the weighted
 * destinations resolved to cluster targets (or marked missing: 503 NC), the
 * header operations of destination and route composed (the route's last, so
 * they win, as in Envoy), the rewrite, the retry policy, the mirrors
 * (mirror.ts) and the route's filter chain (the caller-side rate limits of
 * its destination service, when the snapshot has some: ratelimit/stage.ts;
 * its fault stage, then its CORS stage: cors.ts) built. At request time nothing is looked up, parsed or
 * compiled.
 */
import type { Route, TcpRoute, WeightedCluster } from '../protocol/snapshot.js';
import { SnapshotError } from './errors.js';
import type { ClusterTarget } from './cluster-target.js';
import { faultStage } from './fault.js';
import { corsStage } from './cors.js';
import { composeChain, type Chain, type Stage } from './filter-chain.js';
import { compileHeaderOps, type HeaderEdit } from './headers.js';
import type { LocalReply } from './local-reply.js';
import { compileMirror, type Mirror } from './mirror.js';
import { compileRedirect, type LocationBuilder } from './redirect.js';
import { compileRetry, NO_RETRY, type CompiledRetry } from './retry-policy.js';
import { compileRewrites, type PathRewrite } from './rewrite.js';

export interface Destination {
  readonly cluster: string;
  readonly weight: number;
  /** Undefined: the snapshot has no such cluster (503 NC). */
  readonly target: ClusterTarget | undefined;
  readonly requestEdit: HeaderEdit | undefined;
  readonly responseEdit: HeaderEdit | undefined;
}

interface PlanBase {
  /** The route's name, for the record. */
  readonly name: string;
  /** The route's stages (fault); run before the action. */
  readonly chain: Chain;
}

export interface ForwardPlan extends PlanBase {
  readonly kind: 'forward';
  readonly destinations: readonly Destination[];
  readonly timeoutMs: number;
  readonly retry: CompiledRetry;
  /** By the applied match alternative + 1; undefined: the path is not rewritten. */
  readonly rewrites: readonly PathRewrite[] | undefined;
  /** Host header to send instead of the caller's. */
  readonly authority: string | undefined;
  /** Sends the shadow copies of a request (mirror.ts); undefined: the route mirrors nothing. */
  readonly mirror: Mirror | undefined;
}

export interface RedirectPlan extends PlanBase {
  readonly kind: 'redirect';
  readonly status: number;
  readonly location: LocationBuilder;
}

export interface DirectPlan extends PlanBase {
  readonly kind: 'direct';
  readonly reply: LocalReply;
}

export type RoutePlan = ForwardPlan | RedirectPlan | DirectPlan;

function checkStatus(status: number, what: string): void {
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new SnapshotError(`${what}: status ${status} is not an HTTP status from 100 to 599`);
}

function destinations(wcs: readonly WeightedCluster[], targets: ReadonlyMap<string, ClusterTarget>, route: Pick<Route['action'] & { kind: 'forward' }, 'requestHeaders' | 'responseHeaders'>): Destination[] {
  return wcs.map((wc) => ({
    cluster: wc.cluster,
    weight: wc.weight,
    target: targets.get(wc.cluster),
    // Envoy applies the weighted cluster's operations first, then the route's: on the same header the route's win.
    requestEdit: compileHeaderOps([wc.requestHeaders, route.requestHeaders]),
    responseEdit: compileHeaderOps([wc.responseHeaders, route.responseHeaders]),
  }));
}

/** `rateLimit`: the outbound ratelimit stage of a forwarding route (caller-side limits of its destination service). */
export function buildRoutePlan(route: Route, where: string, targets: ReadonlyMap<string, ClusterTarget>, rateLimit?: Stage): RoutePlan {
  const a = route.action;
  const name = route.name;
  try {
    const cors = corsStage(`${where} route "${name}"`, route.cors);
    switch (a.kind) {
      case 'direct':
        checkStatus(a.status, 'directResponse');
        return { kind: 'direct', name, chain: composeChain(cors), reply: { status: a.status, body: directBody(a.body, a.bodyBase64) } };
      case 'redirect':
        checkStatus(a.status, 'redirect');
        return { kind: 'redirect', name, chain: composeChain(cors), status: a.status, location: compileRedirect(a) };
      case 'forward':
        if (!(a.timeoutMs >= 0)) throw new SnapshotError(`timeoutMs ${a.timeoutMs} is negative`);
        return {
          kind: 'forward', name,
          chain: composeChain(rateLimit, faultStage(`${where} route "${name}"`, a.fault), cors),
          destinations: destinations(a.clusters, targets, a),
          timeoutMs: a.timeoutMs,
          retry: compileRetry(a.retry),
          rewrites: compileRewrites(route.match, a.rewrite),
          authority: a.rewrite?.authority,
          mirror: compileMirror(a.mirrors, targets, a.timeoutMs),
        };
      default:
        throw new SnapshotError(`unknown route action "${(a as { kind: string }).kind}"`);
    }
  } catch (err) {
    if (err instanceof SnapshotError) throw new SnapshotError(`${where} route "${name}": ${err.message}`);
    throw err;
  }
}

/** An opaque TCP service reached through the HTTP listener: forwarded as it is, without HTTP routing features. */
export function buildTcpPlan(tcp: TcpRoute, targets: ReadonlyMap<string, ClusterTarget>): ForwardPlan {
  return {
    kind: 'forward', name: `tcp ${tcp.host}:${tcp.port}`, chain: composeChain(),
    destinations: destinations(tcp.clusters, targets, {}),
    timeoutMs: 0, retry: NO_RETRY, rewrites: undefined, authority: undefined, mirror: undefined,
  };
}

/**
 * A direct response's body: text, or bytes that are not UTF-8, sent as they
 * are (local-reply.ts measures and writes a Buffer as it does a string).
 * LocalReply types its body as a string; until it says `string | Buffer`,
 * the bytes carry the one string method a reply body meets elsewhere
 * (`trim`, for a gRPC call's `grpc-message`, which then stays empty).
 */
function directBody(text: string | undefined, base64: string | undefined): string {
  if (base64 === undefined) return text ?? '';
  const bytes = Buffer.from(base64, 'base64');
  Object.defineProperty(bytes, 'trim', { value: () => '', enumerable: false });
  return bytes as unknown as string;
}
