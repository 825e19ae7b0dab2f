/**
 * Which rate limits a request would fall under: the decision of the proxy's
 * `ratelimit` stages (src/policy/rate-limit.ts), run on the destination's
 * snapshot (`simulateRateLimits`: its inbound side) or on the caller's
 * (`simulateOutboundRateLimits`: the limits it sheds load with, for
 * policies with `enforce: InboundAndOutbound`). It says which limits apply
 * and under which bucket key; whether a token is left depends on the
 * traffic, which a simulation does not know.
 */
import { buildLimitSelector, type LimitSelector } from '../policy/rate-limit.js';
import type { RateLimitConfig, RateLimitPolicyConfig, RateLimitSide, WorkloadRateLimits } from '../protocol/rate-limit.js';
import type { Snapshot } from '../protocol/snapshot.js';

export interface RateLimitSimulateRequest {
  /** The destination service host (`ledger.bank.svc.cluster.local`); absent: every service the workload serves. */
  readonly service?: string;
  readonly method?: string;
  readonly path: string;
  /** The caller's principal (`cluster.local/ns/bank/sa/web`); absent: a plaintext caller. */
  readonly principal?: string;
  /** Header names in lower case. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface SimulatedLimit {
  /** Which side would enforce it: the destination's inbound listener, or the caller's own sidecar. */
  readonly side: RateLimitSide;
  readonly policy: string;
  readonly limit: string;
  readonly scope: 'local' | 'global';
  /** The bucket the request would take a token from (`""`: the shared one). */
  readonly key: string;
  readonly config: RateLimitConfig;
  /** One sentence a person can read: `bank/limits limit per-caller: 20 per 1s (burst 40), local, bucket of caller …`. */
  readonly description: string;
}

const selectors = new WeakMap<RateLimitPolicyConfig, LimitSelector>();

/** The limits the destination's inbound side applies to the request, in policy order; empty when none does. */
export function simulateRateLimits(snapshot: Snapshot, req: RateLimitSimulateRequest): SimulatedLimit[] {
  return simulateSide(snapshot.rateLimits, 'inbound', req);
}

/**
 * The limits the caller's own sidecar applies to a request it sends
 * (`snapshot` is the caller's); the principal is the caller's own, whatever
 * `req.principal` says. `req.service` is the destination service host.
 */
export function simulateOutboundRateLimits(snapshot: Snapshot, req: Omit<RateLimitSimulateRequest, 'principal'>): SimulatedLimit[] {
  const id = snapshot.node.identity;
  const principal = id.startsWith('spiffe://') ? id.slice('spiffe://'.length) : undefined;
  return simulateSide(snapshot.outboundRateLimits, 'outbound', { ...req, ...(principal ? { principal } : {}) });
}

function simulateSide(limits: WorkloadRateLimits | undefined, side: RateLimitSide, req: RateLimitSimulateRequest): SimulatedLimit[] {
  const out: SimulatedLimit[] = [];
  const method = (req.method ?? 'GET').toUpperCase();
  for (const p of limits?.policies ?? []) {
    if (req.service !== undefined && p.service !== req.service) continue;
    let select = selectors.get(p);
    if (!select) selectors.set(p, (select = buildLimitSelector(p)));
    for (const a of select({ method, path: req.path, principal: req.principal, header: (h) => req.headers?.[h] })) {
      const l = a.limit;
      const alg = l.algorithm;
      const amount = alg.kind === 'token-bucket' ? `${alg.requests} per ${alg.periodMs}ms (burst ${alg.burst})` : `quota of ${alg.requests} per ${alg.windowMs}ms window`;
      const bucket = l.by === 'all' ? 'one bucket for all callers' : l.by === 'header' ? `bucket of ${l.header} "${a.key}"` : `bucket of caller ${a.key || '(plaintext)'}`;
      const where = side === 'outbound' ? ", on the caller's side" : '';
      out.push({ side, policy: p.name, limit: l.name, scope: l.scope, key: a.key, config: l, description: `${p.name} limit ${l.name}: ${amount}, ${l.scope}, ${bucket}${where}` });
    }
  }
  return out;
}
