/**
 * The reachability matrix's data model: who (a source) may call what (a
 * destination service port), on which methods and paths, and what decides
 * each answer. This is also the stable JSON shape of `trellis reach -o json`
 * (schema `trellis.dev/reach/v1`): fields are only ever added, never renamed
 * or removed within v1. See docs/reach.md.
 */

export const REACH_SCHEMA = 'trellis.dev/reach/v1';

/**
 * Who calls. `sidecar` and `gateway` are workloads of the registry (their
 * own proxy routes the request, then mTLS carries their identity);
 * `identity` is a SPIFFE ID that no single workload has (the request is
 * taken to arrive over mTLS with that identity, without outbound routing);
 * `plaintext` is a caller outside the mesh, without a certificate.
 */
export interface ReachSource {
  /** `name.namespace` for workloads, the SPIFFE ID for an identity, `plaintext` for a caller without one. */
  readonly id: string;
  readonly kind: 'sidecar' | 'gateway' | 'identity' | 'plaintext';
  readonly workload?: string;
  readonly namespace?: string;
  /** `spiffe://…`; absent for `plaintext`. */
  readonly identity?: string;
}

/** What is called: one port of one service, and the workloads behind it. */
export interface ReachDestination {
  /** `name.namespace:port` (the service's hostname for ServiceEntry hosts). */
  readonly id: string;
  /** The service's fully qualified hostname. */
  readonly service: string;
  readonly port: number;
  readonly protocol: string;
  /** `name.namespace` of each workload behind the port, sorted. */
  readonly workloads: readonly string[];
}

/**
 * Why one request was allowed or denied:
 * - `allow-policy` / `deny-policy`: an ALLOW or DENY (or CUSTOM, which fails closed) AuthorizationPolicy rule matched;
 * - `default-allow`: no DENY policy matched and no ALLOW policy selects the workload;
 * - `default-deny`: ALLOW policies select the workload and none matched;
 * - `mtls-refused`: the port's PeerAuthentication refuses the connection (STRICT and plaintext, DISABLE and mTLS);
 * - `path-rejected`: path normalization rejects the path (400) or redirects it (307);
 * - `not-forwarded`: the source's proxy does not send it (no route 404, REGISTRY_ONLY 502, a direct response,
 *   a redirect, a fault that always aborts);
 * - `routed-elsewhere`: the source's routes send it to another service;
 * - `no-endpoint`: the route leads to the destination, but no workload stands behind it.
 * Rate limits are out of scope: a request allowed here may still be throttled (429).
 */
export type DecisionKind =
  | 'allow-policy' | 'deny-policy' | 'default-allow' | 'default-deny' | 'mtls-refused'
  | 'path-rejected' | 'not-forwarded' | 'routed-elsewhere' | 'no-endpoint';

export interface ReachDecision {
  readonly allowed: boolean;
  readonly kind: DecisionKind;
  /** `namespace/name` of the deciding policy (AuthorizationPolicy, or PeerAuthentication's port mode for `mtls-refused`). */
  readonly policy?: string;
  /** Index of the matching rule in the policy's `spec.rules`. */
  readonly rule?: number;
  /** A sentence for people: "allowed by bank/accounts-readers rule 0", "STRICT mTLS refuses plaintext", … */
  readonly reason: string;
}

/** The decision at one workload behind the destination. */
export interface TargetDecision extends ReachDecision {
  /** `name.namespace` of the workload whose proxy decided. */
  readonly workload: string;
}

/** One representative request of a cell. */
export interface ReachProbe {
  /** The request sent: a method and a path, or a TCP connection. */
  readonly method: string;
  readonly path: string;
  readonly tcp: boolean;
  /** What the request stands for: a method of the policies, `*` (any method), or `other methods`. */
  readonly methodLabel: string;
  /** What the request stands for: a path pattern of the policies or routes, `*` (any path), or `other paths`. */
  readonly pathLabel: string;
  /** `allowed` at every workload it can reach, `denied` at every one, `mixed` when they disagree. */
  readonly verdict: 'allowed' | 'denied' | 'mixed';
  /** The decision (the first target's when they agree). */
  readonly decision: ReachDecision;
  /** Per workload, when the workloads behind the destination decide differently. */
  readonly byWorkload?: readonly TargetDecision[];
}

/** One cell: one source, one destination. */
export interface ReachCell {
  readonly from: string;
  readonly to: string;
  /** `all`: every probe allowed; `none`: every probe denied; `some`: the rest. */
  readonly access: 'all' | 'some' | 'none';
  /** What is allowed, in one line: "POST /debit, /credit; everything else denied". */
  readonly summary: string;
  /** The distinct decisions of the cell, in one line each ("ALLOW bank/x rule 0", "default deny"). */
  readonly decidedBy: readonly string[];
  readonly probes: readonly ReachProbe[];
  /** What the matrix did not vary (headers, JWTs, addresses) but some policy of the destination reads. */
  readonly notes: readonly string[];
}

export interface ReachMatrix {
  readonly schema: typeof REACH_SCHEMA;
  readonly sources: readonly ReachSource[];
  readonly destinations: readonly ReachDestination[];
  /** Every source × destination, sources in order, then destinations in order. */
  readonly cells: readonly ReachCell[];
}

/** A request the matrix sends to a destination (its method, path and what they stand for). */
export interface ProbeSpec {
  readonly method: string;
  readonly path: string;
  readonly tcp: boolean;
  readonly methodLabel: string;
  readonly pathLabel: string;
}

/** The decision in a few words, for tables and hover texts. */
export function describeDecision(d: ReachDecision): string {
  switch (d.kind) {
    case 'allow-policy': return `ALLOW ${d.policy} rule ${d.rule}`;
    case 'deny-policy': return `${d.reason.startsWith('denied by CUSTOM') ? 'CUSTOM' : 'DENY'} ${d.policy} rule ${d.rule}`;
    case 'default-allow': return 'default allow: no ALLOW policy selects the workload';
    case 'default-deny': return 'default deny: ALLOW policies select the workload, none matched';
    case 'mtls-refused': return d.reason;
    default: return d.reason;
  }
}
