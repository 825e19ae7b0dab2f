/**
 * The `ratelimit` stages. Inbound (after `authz`, so only authorized requests
 * spend tokens): the RateLimitPolicies of the listener's service, keyed on
 * the verified peer. Outbound (a caller shedding load early,
 * `enforce: InboundAndOutbound`): the policies of the route's destination
 * service from `snapshot.outboundRateLimits`, keyed on the caller's own
 * principal, with buckets of their own — local ones in this proxy, global
 * ones under `trellis:rl:out:` in the same Redis, shared by the caller's
 * replicas — so the two sides never take each other's tokens; the inbound
 * side stays authoritative.
 *
 * Which limits a request falls under is src/policy/rate-limit.ts, the
 * function `simulate()` uses too. Every applicable limit takes a token; one
 * refusal is a 429 with `retry-after`, `x-ratelimit-limit`,
 * `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds) of the refusing
 * limit, the body naming the policy and limit, and the record's flag `RL`.
 *
 * Local limits answer synchronously; a request under a global limit waits for
 * Redis, bounded by the store's timeout. When Redis cannot answer, the
 * policy's failure mode decides: `open` lets the request through, `closed`
 * answers 429 with `retry-after: 1`.
 */
import type { InboundListener, PathNormalization, Route, Snapshot } from '../../protocol/snapshot.js';
import type { RateLimitConfig, RateLimitPolicyConfig, RateLimitSide } from '../../protocol/rate-limit.js';
import { normalizePath } from '../../policy/path-normalize.js';
import { buildLimitSelector, type LimitSelector, type RateLimitRequest } from '../../policy/rate-limit.js';
import type { Stage, StageContext, Verdict } from '../filter-chain.js';
import type { InboundStageContext } from '../inbound-security.js';
import type { LocalReply } from '../local-reply.js';
import { LocalLimit, type LimitOutcome } from './local.js';
import type { RedisStore } from './redis-store.js';
import type { RateLimitRuntime } from './runtime.js';

interface PreparedLimit {
  readonly config: RateLimitConfig;
  readonly local?: LocalLimit;
  readonly store?: RedisStore;
  /** Redis key prefix: `trellis:rl:<policy>:<limit>:` (inbound), `trellis:rl:out:<policy>:<limit>:` (outbound) */
  readonly prefix: string;
}

interface PreparedPolicy {
  readonly name: string;
  readonly select: LimitSelector;
  readonly limits: readonly PreparedLimit[];
  readonly failClosed: boolean;
}

/** How a side reads the request: who the caller is, and the path limits match on. */
interface SideFacts {
  readonly side: RateLimitSide;
  readonly principal: (ctx: StageContext) => string | undefined;
  readonly path: (ctx: StageContext) => string;
  /** Appended to the refusal's body. */
  readonly note: string;
}

/** The ratelimit stage of one inbound listener, or undefined when no policy targets its service. */
export function rateLimitStage(s: Snapshot, listener: InboundListener, runtime: RateLimitRuntime): Stage | undefined {
  const policies = (s.rateLimits?.policies ?? []).filter((p) => p.service === listener.service).map((p) => prepare(p, runtime, 'inbound'));
  return policies.length === 0 ? undefined : limitStage(policies, runtime, {
    side: 'inbound', principal: (ctx) => (ctx as InboundStageContext).peerPrincipal, path: (ctx) => ctx.path, note: '',
  });
}

/**
 * The caller-side stage of routes whose every destination is `service`
 * (a host), or undefined when the snapshot's outbound limits have no policy
 * for it. The path is normalized as the destination's inbound listener
 * will (MeshConfig pathNormalization), before the route's rewrite.
 */
export function outboundRateLimitStage(s: Snapshot, service: string, runtime: RateLimitRuntime): Stage | undefined {
  const policies = (s.outboundRateLimits?.policies ?? []).filter((p) => p.service === service).map((p) => prepare(p, runtime, 'outbound'));
  if (policies.length === 0) return undefined;
  const own = s.node.identity.startsWith('spiffe://') ? s.node.identity.slice('spiffe://'.length) : undefined;
  const mode: PathNormalization = s.mesh.pathNormalization;
  return limitStage(policies, runtime, {
    side: 'outbound',
    principal: () => own,
    path: (ctx) => { const n = normalizePath(ctx.path, mode); return n.ok ? n.path : ctx.path; },
    note: "shed by the caller's sidecar",
  }, `:${service}`);
}

/**
 * For a snapshot with outbound limits: the caller-side stage of each route
 * (one stage per destination service, shared by its routes). A route gets
 * the limits of a service when every destination it splits traffic over is
 * that service; a route split across services is left to the destinations'
 * inbound sides (a token spent for a request that goes elsewhere would
 * refuse traffic the limit does not cover). Undefined: no outbound limits.
 */
export function outboundRateLimitStages(s: Snapshot, runtime: RateLimitRuntime): ((route: Route) => Stage | undefined) | undefined {
  if (!s.outboundRateLimits?.policies.length) return undefined;
  const serviceOf = new Map(s.clusters.map((c) => [c.name, c.service]));
  const stages = new Map<string, Stage | undefined>();
  return (route) => {
    if (route.action.kind !== 'forward') return undefined;
    let service: string | undefined;
    for (const wc of route.action.clusters) {
      // A cluster the snapshot lacks (503 NC) is named `outbound|<port>|<subset>|<host>` all the same.
      const svc = serviceOf.get(wc.cluster) ?? wc.cluster.slice(wc.cluster.lastIndexOf('|') + 1);
      if (service !== undefined && svc !== service) return undefined;
      service = svc;
    }
    if (service === undefined) return undefined;
    if (!stages.has(service)) stages.set(service, outboundRateLimitStage(s, service, runtime));
    return stages.get(service);
  };
}

function limitStage(policies: readonly PreparedPolicy[], runtime: RateLimitRuntime, f: SideFacts, suffix = ''): Stage {
  const side = f.side;
  return {
    phase: 'ratelimit',
    name: `ratelimit${side === 'outbound' ? '-outbound' : ''}(${policies.map((p) => p.name).join(',')}${suffix})`,
    run(ctx) {
      const req: RateLimitRequest = {
        method: ctx.method, path: f.path(ctx), principal: f.principal(ctx),
        header: (h) => { const v = ctx.headers[h]; return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined; },
      };
      let pending: Promise<Verdict>[] | undefined;
      for (const p of policies) {
        for (const a of p.select(req)) {
          const l = p.limits[a.index]!;
          if (l.local) {
            const o = l.local.take(a.key);
            runtime.count(p.name, l.config.name, req.principal, o.allowed ? 'allowed' : 'limited', side);
            if (!o.allowed) return refuse(ctx, p.name, l.config.name, o, f.note);
          } else {
            (pending ??= []).push(l.store!.take(l.prefix + a.key, l.config.algorithm).then((o) => storeVerdict(ctx, runtime, p, l, req.principal, o, f)));
          }
        }
      }
      if (!pending) return undefined;
      return pending.length === 1 ? pending[0]! : Promise.all(pending).then((vs) => vs.find((v) => v !== undefined));
    },
  };
}

function prepare(p: RateLimitPolicyConfig, runtime: RateLimitRuntime, side: RateLimitSide): PreparedPolicy {
  const limits = p.limits.map((l): PreparedLimit => {
    const prefix = `trellis:rl:${side === 'outbound' ? 'out:' : ''}${p.name}:${l.name}:`;
    if (l.scope === 'global' && p.store) return { config: l, store: runtime.store(p.store.redis, p.store.timeoutMs), prefix };
    return { config: l, local: runtime.local(p.name, l.name, () => new LocalLimit(l.algorithm), side), prefix };
  });
  return { name: p.name, select: buildLimitSelector(p), limits, failClosed: p.store?.failureMode === 'closed' };
}

function storeVerdict(ctx: StageContext, runtime: RateLimitRuntime, p: PreparedPolicy, l: PreparedLimit, principal: string | undefined, o: LimitOutcome | undefined, f: SideFacts): Verdict {
  if (o === undefined) {
    runtime.count(p.name, l.config.name, principal, p.failClosed ? 'store_unavailable_limited' : 'store_unavailable_allowed', f.side);
    if (!p.failClosed) return undefined;
    const why = `the rate-limit store is unavailable and the policy fails closed${f.note ? `; ${f.note}` : ''}`;
    return refuse(ctx, p.name, l.config.name, { allowed: false, limit: l.config.algorithm.requests, remaining: 0, retryAfterMs: 1000 }, why);
  }
  runtime.count(p.name, l.config.name, principal, o.allowed ? 'allowed' : 'limited', f.side);
  return o.allowed ? undefined : refuse(ctx, p.name, l.config.name, o, f.note);
}

function refuse(ctx: StageContext, policy: string, limit: string, o: LimitOutcome, why: string): LocalReply {
  ctx.flag('RL');
  const seconds = String(Math.max(1, Math.ceil(o.retryAfterMs / 1000)));
  return {
    status: 429,
    flag: 'RL',
    body: `rate limited: ${policy} limit ${limit}${why ? ` (${why})` : ''}\n`,
    headers: {
      'retry-after': seconds,
      'x-ratelimit-limit': String(o.limit),
      'x-ratelimit-remaining': String(o.remaining),
      'x-ratelimit-reset': seconds,
    },
  };
}
