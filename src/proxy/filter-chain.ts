/**
 * The filter chain: typed stages a request passes before it goes upstream,
 * built once per snapshot (per inbound listener, per route) as DESIGN.md §4
 * describes. Every stage has the same signature; a chain is checked for the
 * order of its phases when it is composed, never per request.
 *
 * The life of a request, in order (each request phase may answer and stop):
 *
 *     accept ─▶ sanitize ─▶ authn ─▶ authz ─▶ ratelimit ─▶ fault ─▶ router
 *                                                                    │
 *         log ◀── response ◀── upstream response ◀── upstream request ◀┘
 *
 * - sanitize: strip identity headers, set x-forwarded-*, x-request-id (inbound, gateway)
 * - authn / authz / ratelimit: empty now; mTLS, AuthorizationPolicy and RateLimitPolicy slot in here
 * - fault: the route's delay and abort (fault.ts)
 * - router: weighted cluster → load balancer → forwarder (route-executor.ts); not a stage
 * - log: the request record (request-record.ts), published when the request ends
 */
import type { ResponseFlag } from '../protocol/request-record.js';
import type { Headers } from './headers.js';
import type { LocalReply } from './local-reply.js';

export type Phase = 'sanitize' | 'authn' | 'authz' | 'ratelimit' | 'fault';
const ORDER: Readonly<Record<Phase, number>> = { sanitize: 0, authn: 1, authz: 2, ratelimit: 3, fault: 4 };

/** The few facts and effects a stage may use: it sees no socket, no snapshot, no record. */
export interface StageContext {
  readonly method: string;
  /** The path as the caller sent it, with the query. */
  readonly path: string;
  readonly authority: string;
  readonly remoteAddress: string | undefined;
  /** The headers that will go upstream; a stage may edit them. */
  readonly headers: Headers;
  /** True once the downstream has gone away: a stage that waited should stop. */
  readonly closed: boolean;
  /** Adds an Envoy-style flag to the request record (FI, DI, RL, UAEX, …). */
  flag(f: ResponseFlag): void;
}

/** `undefined`: go on. A local reply: answer with it and stop. */
export type Verdict = LocalReply | undefined;

export interface Stage {
  readonly phase: Phase;
  /** What the stage is, for errors and dumps: `fault(reviews.0)`. */
  readonly name: string;
  run(ctx: StageContext): Verdict | Promise<Verdict>;
}

export interface Chain {
  readonly stages: readonly Stage[];
}

export const EMPTY_CHAIN: Chain = Object.freeze({ stages: Object.freeze([]) });

/** Joins stages into a chain; throws when a stage comes before one of an earlier phase. */
export function composeChain(...parts: readonly (Stage | Chain | undefined)[]): Chain {
  const stages: Stage[] = [];
  for (const p of parts) {
    if (!p) continue;
    if ('stages' in p) stages.push(...p.stages);
    else stages.push(p);
  }
  for (let i = 1; i < stages.length; i++) {
    const a = stages[i - 1]!;
    const b = stages[i]!;
    if (ORDER[b.phase] < ORDER[a.phase]) throw new Error(`filter chain out of order: ${b.name} (${b.phase}) after ${a.name} (${a.phase})`);
  }
  return stages.length === 0 ? EMPTY_CHAIN : Object.freeze({ stages: Object.freeze(stages) });
}

/**
 * Runs a chain; `done` gets the verdict (synchronously when every stage is
 * synchronous), `failed` an error a stage threw or rejected with.
 */
export function runChain(chain: Chain, ctx: StageContext, done: (v: Verdict) => void, failed: (err: unknown) => void, from = 0): void {
  const stages = chain.stages;
  for (let i = from; i < stages.length; i++) {
    let v: Verdict | Promise<Verdict>;
    try {
      v = stages[i]!.run(ctx);
    } catch (err) {
      failed(err);
      return;
    }
    if (v === undefined) continue;
    if (v instanceof Promise) {
      v.then((r) => (r !== undefined ? done(r) : ctx.closed ? undefined : runChain(chain, ctx, done, failed, i + 1)), failed);
      return;
    }
    done(v);
    return;
  }
  done(undefined);
}
