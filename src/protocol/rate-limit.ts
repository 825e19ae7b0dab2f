/**
 * Compiled RateLimitPolicies, as a proxy receives them in `snapshot.rateLimits`
 * (the destination's inbound side) and `snapshot.outboundRateLimits` (a
 * caller's outbound side, for policies with `enforce: InboundAndOutbound`)
 * (docs/snapshot.md, docs/rate-limits.md). Plain frozen data: everything the
 * proxy needs is resolved by the compiler — caller groups (`labels`) are
 * already the identities of the workloads carrying them, durations are
 * milliseconds, names are final — so the proxy never looks at the registry.
 */

/**
 * The limits one workload enforces: on its inbound side as the destination
 * (`snapshot.rateLimits`), or on its outbound side as a caller
 * (`snapshot.outboundRateLimits`). In the outbound form every policy targets
 * a service the caller can reach, and holds only the limits whose `callers`
 * include this caller, with `callers` left out (already resolved): the
 * caller's own principal is the bucket key of `by: Caller`.
 */
export interface WorkloadRateLimits {
  /** Sorted by name (`namespace/name`). */
  readonly policies: readonly RateLimitPolicyConfig[];
}

/** Which side of a call enforces a limit: the destination's inbound listener, or the caller's outbound route. */
export type RateLimitSide = 'inbound' | 'outbound';

/** Where global limits are counted: a Redis server shared by every replica. */
export interface RateLimitStore {
  /** `host:port` */
  readonly redis: string;
  /** Bound on one Redis call; a call that takes longer counts as the store being unreachable. */
  readonly timeoutMs: number;
  /** What happens when the store cannot answer: `open` allows the request, `closed` refuses it (429). */
  readonly failureMode: 'open' | 'closed';
}

export interface RateLimitPolicyConfig {
  /** `namespace/name` of the RateLimitPolicy. */
  readonly name: string;
  /** `host` of the target Service (`ledger.bank.svc.cluster.local`): the policy applies to the inbound listeners of its ports. */
  readonly service: string;
  /** Present when some limit is global. */
  readonly store?: RateLimitStore;
  /** In the policy's order; a request must be allowed by every limit that selects it. */
  readonly limits: readonly RateLimitConfig[];
}

/** One request pattern: a path (exact, `prefix*`, `*suffix` or `*`) and method lists; an empty list matches all. */
export interface RateLimitMatch {
  readonly paths: readonly string[];
  readonly methods: readonly string[];
}

/** Who a limit applies to: callers whose verified principal is listed, or is in a listed namespace. */
export interface RateLimitCallers {
  /** Principals without `spiffe://`, as the inbound listener reads them (`cluster.local/ns/x/sa/y`). */
  readonly principals: readonly string[];
  readonly namespaces: readonly string[];
}

export type RateLimitAlgorithm =
  /** Token bucket: `burst` tokens at most, refilled at `requests` every `periodMs`. */
  | { readonly kind: 'token-bucket'; readonly requests: number; readonly periodMs: number; readonly burst: number }
  /** Fixed window: at most `requests` per window of `windowMs` (aligned on the store's clock). */
  | { readonly kind: 'window'; readonly requests: number; readonly windowMs: number };

export interface RateLimitConfig {
  readonly name: string;
  /** Absent: every request on the policy's ports. */
  readonly match?: readonly RateLimitMatch[];
  /** Absent: every caller, plaintext ones too. */
  readonly callers?: RateLimitCallers;
  /** What gets its own bucket: each caller principal, all callers together, or each value of `header`. */
  readonly by: 'caller' | 'all' | 'header';
  readonly header?: string;
  readonly scope: 'local' | 'global';
  readonly algorithm: RateLimitAlgorithm;
}
