/**
 * Serves a request with the plan of the route the router chose (outbound and
 * gateway listeners): the route's stages, then its action — a direct
 * response, a redirect, or forwarding: weighted destination → cluster
 * target (503 NC when missing, 503 UH without endpoints) → header
 * operations, rewrite → body → forwarder. A gRPC call's `grpc-timeout`
 * bounds the forwarding as a route timeout does, and goes upstream as the
 * time left. The last step is the same for every listener (send): an upgrade
 * request becomes a tunnel to the chosen host (upgrade.ts), any other has its
 * body read — after the held `100 Continue`, if it asked for one
 * (expect-continue.ts) — and goes to the forwarder.
 */
import { pickWeighted } from '../policy/weighted.js';
import { PROXY_ERRORS } from './errors.js';
import type { Exchange } from './exchange.js';
import { runChain } from './filter-chain.js';
import { continueIfExpected } from './expect-continue.js';
import { forward, type ForwardSpec } from './forwarder.js';
import { formatGrpcTimeout, parseGrpcTimeout } from './grpc.js';
import type { Headers } from './headers.js';
import type { HostSet } from './hosts.js';
import { replyFor, sendLocalReply } from './local-reply.js';
import type { Mirror } from './mirror.js';
import { withRequestBody } from './request-body.js';
import type { RequestTarget } from './request-target.js';
import { NO_RETRY } from './retry-policy.js';
import type { ForwardPlan, RoutePlan } from './route-plan.js';
import { tunnel, upgradeOf } from './upgrade.js';

export function internalError(ex: Exchange, err: unknown): void {
  sendLocalReply(ex, replyFor(PROXY_ERRORS.INTERNAL, (err as Error)?.message ?? String(err)));
}

/**
 * The timeout over all attempts: the route's, or a gRPC deadline when it is
 * shorter (the upstream then gets the time left in its `grpc-timeout`).
 */
function effectiveTimeout(ex: Exchange, h: Headers, routeTimeoutMs: number): number {
  if (!ex.grpc) return routeTimeoutMs;
  const deadline = parseGrpcTimeout(h['grpc-timeout']);
  if (deadline === undefined) return routeTimeoutMs;
  const left = Math.max(1, deadline - ex.durationMs);
  h['grpc-timeout'] = formatGrpcTimeout(left);
  return routeTimeoutMs > 0 && routeTimeoutMs < left ? routeTimeoutMs : Math.ceil(left);
}

export function serveRoute(ex: Exchange, plan: RoutePlan, matchIndex: number, t: RequestTarget): void {
  ex.route = plan.name;
  if (plan.chain.stages.length === 0) { act(ex, plan, matchIndex, t); return; }
  runChain(plan.chain, ex, (v) => (v ? sendLocalReply(ex, v) : act(ex, plan, matchIndex, t)), (err) => internalError(ex, err));
}

function act(ex: Exchange, plan: RoutePlan, matchIndex: number, t: RequestTarget): void {
  switch (plan.kind) {
    case 'direct': sendLocalReply(ex, plan.reply); return;
    case 'redirect': {
      const location = plan.location(t);
      sendLocalReply(ex, { status: plan.status, body: '', headers: { location } });
      return;
    }
    case 'forward': forwardRoute(ex, plan, matchIndex, t); return;
  }
}

function forwardRoute(ex: Exchange, plan: ForwardPlan, matchIndex: number, t: RequestTarget): void {
  const ds = plan.destinations;
  const d = ds.length === 1 ? ds[0]! : pickWeighted(ds, Math.random())!;
  ex.cluster = d.cluster;
  const target = d.target;
  if (!target) {
    sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_CLUSTER, `route "${plan.name}" sends to ${d.cluster}, which is not in the snapshot`));
    return;
  }
  if (target.hosts.length === 0) {
    sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_HEALTHY_UPSTREAM, `${d.cluster} has no healthy endpoint`));
    return;
  }
  const h = ex.headers;
  let hashKey = target.hashKey?.(ex);
  // Istio's httpCookie with a ttl: a request without the cookie gets one made here (lb/hash-key.ts), set on the response.
  const made = hashKey === undefined ? target.hashKey?.cookie?.make(ex, d.responseEdit) : undefined;
  if (made) hashKey = made.key;
  d.requestEdit?.(h);
  if (plan.authority !== undefined) h.host = plan.authority;
  const path = plan.rewrites ? plan.rewrites[matchIndex + 1]!(t.path) : t.path;
  const { retry } = plan;
  const timeoutMs = effectiveTimeout(ex, h, plan.timeoutMs);
  send(ex, { hosts: target, hashKey, method: ex.method, path, headers: h, body: null, retry, timeoutMs, responseEdit: made ? made.edit : d.responseEdit, breaker: target.breaker }, retry.maxRetries > 0 || plan.mirror !== undefined, plan.mirror);
}

/** Forwards to one host as it is: no retries, no timeout but a gRPC deadline (inbound to the app, passthrough). */
export function forwardDirect(ex: Exchange, hosts: HostSet, path: string): void {
  send(ex, {
    hosts, hashKey: undefined, method: ex.method, path, headers: ex.headers, body: null, retry: NO_RETRY, timeoutMs: effectiveTimeout(ex, ex.headers, 0), responseEdit: undefined,
  }, false);
}

/** The request's last step: a tunnel for an upgrade; else its body (`spec.body` is filled in) and the forwarder. */
function send(ex: Exchange, spec: ForwardSpec, replayable: boolean, mirror?: Mirror): void {
  const up = upgradeOf(ex);
  if (up) { tunnel(ex, up, spec); return; }
  withRequestBody(ex, replayable, (body) => {
    mirror?.(ex, spec, body);
    if (body === null) { forward(ex, spec); return; }
    continueIfExpected(ex);
    forward(ex, { ...spec, body });
  });
}
