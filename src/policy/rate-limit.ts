/**
 * Which rate limits apply to a request, and under which bucket key: the pure
 * decision the inbound `ratelimit` stage and `simulate()` share, built once
 * per snapshot from a compiled policy (src/protocol/rate-limit.ts).
 *
 * A limit selects a request when one of its `match` entries does (paths:
 * exact, `prefix*`, `*suffix` or `*`, on the normalized path without the
 * query; methods: exact) and its `callers` name the verified caller (a listed
 * principal, or a principal in a listed namespace; a plaintext caller is in
 * no group). The bucket key: the caller's principal (`by: Caller`; plaintext
 * callers share the key `""`), one key for all (`by: All`), or the value of a
 * header (`by: Header`; a request without the header is not counted by it).
 */
import type { RateLimitConfig, RateLimitMatch, RateLimitPolicyConfig } from '../protocol/rate-limit.js';

/** The facts a limit decides on. */
export interface RateLimitRequest {
  readonly method: string;
  /** Normalized path; a query, if any, is ignored. */
  readonly path: string;
  /** Verified mTLS principal (`cluster.local/ns/x/sa/y`); undefined for plaintext. */
  readonly principal?: string | undefined;
  readonly header: (name: string) => string | undefined;
}

/** One limit that applies, with the key of its bucket. */
export interface AppliedLimit {
  readonly limit: RateLimitConfig;
  /** Position of the limit in its policy. */
  readonly index: number;
  readonly key: string;
}

export type LimitSelector = (r: RateLimitRequest) => readonly AppliedLimit[];

type Pred = (r: RateLimitRequest, path: string) => boolean;

/** Builds the selector of a policy: the limits a request falls under, in the policy's order. */
export function buildLimitSelector(policy: RateLimitPolicyConfig): LimitSelector {
  const parts = policy.limits.map((limit, index) => ({ limit, index, applies: limitPredicate(limit), key: keyOf(limit) }));
  const none: readonly AppliedLimit[] = Object.freeze([]);
  return (r) => {
    const q = r.path.indexOf('?');
    const path = q < 0 ? r.path : r.path.slice(0, q);
    let out: AppliedLimit[] | undefined;
    for (const p of parts) {
      if (!p.applies(r, path)) continue;
      const key = p.key(r);
      if (key === undefined) continue;
      (out ??= []).push({ limit: p.limit, index: p.index, key });
    }
    return out ?? none;
  };
}

function limitPredicate(l: RateLimitConfig): Pred {
  const matches = l.match?.map(matchPredicate);
  const principals = l.callers ? new Set(l.callers.principals) : undefined;
  const namespaces = l.callers?.namespaces.map((ns) => `/ns/${ns}/`);
  return (r, path) => {
    if (matches && !matches.some((m) => m(r, path))) return false;
    if (principals) {
      const p = r.principal;
      if (p === undefined) return false;
      if (!principals.has(p) && !namespaces!.some((ns) => p.includes(ns))) return false;
    }
    return true;
  };
}

function matchPredicate(m: RateLimitMatch): Pred {
  const methods = m.methods.length ? new Set(m.methods) : undefined;
  const paths = m.paths.map(pathPredicate);
  return (r, path) => (!methods || methods.has(r.method)) && (paths.length === 0 || paths.some((p) => p(path)));
}

function pathPredicate(p: string): (path: string) => boolean {
  if (p === '*') return () => true;
  if (p.endsWith('*')) { const pre = p.slice(0, -1); return (x) => x.startsWith(pre); }
  if (p.startsWith('*')) { const suf = p.slice(1); return (x) => x.endsWith(suf); }
  return (x) => x === p;
}

function keyOf(l: RateLimitConfig): (r: RateLimitRequest) => string | undefined {
  if (l.by === 'all') return () => '';
  if (l.by === 'header') { const h = l.header!; return (r) => r.header(h); }
  return (r) => r.principal ?? '';
}
