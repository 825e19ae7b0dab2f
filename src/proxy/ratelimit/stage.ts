/**
 * The inbound `ratelimit` stage (after `authz`, so only authorized requests
 * spend tokens): the RateLimitPolicies of the listener's service, with the
 * limits each request falls under (src/policy/rate-limit.ts, the function
 * `simulate()` uses too). Every applicable limit takes a token; one refusal
 * is a 429 with `retry-after`, `x-ratelimit-limit`, `x-ratelimit-remaining`
 * and `x-ratelimit-reset` (seconds) of the refusing limit, the body naming the
 * policy and limit, and the record's flag `RL`.
 *
 * Local limits answer synchronously; a request under a global limit waits for
 * Redis, bounded by the store's timeout. When Redis cannot answer, the
 * policy's failure mode decides: `open` lets the request through, `closed`
 * answers 429 with `retry-after: 1`.
 */
import type { InboundListener, Snapshot } from '../../protocol/snapshot.js';
import type { RateLimitConfig, RateLimitPolicyConfig } from '../../protocol/rate-limit.js';
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
  /** Redis key prefix: `trellis:rl:<policy>:<limit>:` */
  readonly prefix: string;
}

interface PreparedPolicy {
  readonly name: string;
  readonly select: LimitSelector;
  readonly limits: readonly PreparedLimit[];
  readonly failClosed: boolean;
}

/** The ratelimit stage of one inbound listener, or undefined when no policy targets its service. */
export function rateLimitStage(s: Snapshot, listener: InboundListener, runtime: RateLimitRuntime): Stage | undefined {
  const policies = (s.rateLimits?.policies ?? []).filter((p) => p.service === listener.service).map((p) => prepare(p, runtime));
  if (policies.length === 0) return undefined;
  return {
    phase: 'ratelimit',
    name: `ratelimit(${policies.map((p) => p.name).join(',')})`,
    run(ctx) {
      const c = ctx as InboundStageContext;
      const req: RateLimitRequest = {
        method: ctx.method, path: ctx.path, principal: c.peerPrincipal,
        header: (h) => { const v = ctx.headers[h]; return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined; },
      };
      let pending: Promise<Verdict>[] | undefined;
      for (const p of policies) {
        for (const a of p.select(req)) {
          const l = p.limits[a.index]!;
          if (l.local) {
            const o = l.local.take(a.key);
            runtime.count(p.name, l.config.name, req.principal, o.allowed ? 'allowed' : 'limited');
            if (!o.allowed) return refuse(ctx, p.name, l.config.name, o);
          } else {
            (pending ??= []).push(l.store!.take(l.prefix + a.key, l.config.algorithm).then((o) => storeVerdict(ctx, runtime, p, l, req.principal, o)));
          }
        }
      }
      if (!pending) return undefined;
      return pending.length === 1 ? pending[0]! : Promise.all(pending).then((vs) => vs.find((v) => v !== undefined));
    },
  };
}

function prepare(p: RateLimitPolicyConfig, runtime: RateLimitRuntime): PreparedPolicy {
  const limits = p.limits.map((l): PreparedLimit => {
    const prefix = `trellis:rl:${p.name}:${l.name}:`;
    if (l.scope === 'global' && p.store) return { config: l, store: runtime.store(p.store.redis, p.store.timeoutMs), prefix };
    return { config: l, local: runtime.local(p.name, l.name, () => new LocalLimit(l.algorithm)), prefix };
  });
  return { name: p.name, select: buildLimitSelector(p), limits, failClosed: p.store?.failureMode === 'closed' };
}

function storeVerdict(ctx: StageContext, runtime: RateLimitRuntime, p: PreparedPolicy, l: PreparedLimit, principal: string | undefined, o: LimitOutcome | undefined): Verdict {
  if (o === undefined) {
    runtime.count(p.name, l.config.name, principal, p.failClosed ? 'store_unavailable_limited' : 'store_unavailable_allowed');
    if (!p.failClosed) return undefined;
    return refuse(ctx, p.name, l.config.name, { allowed: false, limit: l.config.algorithm.requests, remaining: 0, retryAfterMs: 1000 }, 'the rate-limit store is unavailable and the policy fails closed');
  }
  runtime.count(p.name, l.config.name, principal, o.allowed ? 'allowed' : 'limited');
  return o.allowed ? undefined : refuse(ctx, p.name, l.config.name, o);
}

function refuse(ctx: StageContext, policy: string, limit: string, o: LimitOutcome, why?: string): LocalReply {
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
