/**
 * The AuthorizationPolicies that apply to one workload, compiled: plain,
 * frozen, JSON-serialisable data that travels in the snapshot
 * (`Snapshot.authz`). The control plane has already resolved everything that
 * depends on the rest of the mesh — which policies select the workload,
 * short service accounts to `namespace/account`, trust-domain aliases in
 * principals, caller groups (`source.labels`) to the identities of the
 * workloads that carry the labels — so the proxy's authorizer
 * (`src/policy/authorize.ts`) needs nothing else. Field names and value
 * syntax are Istio's (`exact`, `prefix*`, `*suffix`, `*`; `{*}` / `{**}` in
 * paths), so a dump reads like the policies that produced it.
 */

/** What a matching policy does. CUSTOM (an external authorizer) is not supported: it denies what it matches. */
export type AuthzAction = 'CUSTOM' | 'DENY' | 'ALLOW' | 'AUDIT';

export interface WorkloadAuthz {
  /** The policies that select the workload, CUSTOM then DENY, ALLOW, AUDIT, each group sorted by name. */
  readonly policies: readonly AuthzPolicy[];
  /** Why some policy parts do not grant what they seem to (caller groups failing closed, CUSTOM), sorted; for the analyzer and config dumps. */
  readonly notes: readonly AuthzNote[];
}

export interface AuthzPolicy {
  /** `namespace/name` of the AuthorizationPolicy. */
  readonly name: string;
  readonly action: AuthzAction;
  /** OR-ed. Empty: the policy matches nothing (an ALLOW `spec: {}` lets nothing through). */
  readonly rules: readonly AuthzRule[];
}

/** One rule: `from`, `to` and `when` are AND-ed; an absent part matches everything. */
export interface AuthzRule {
  /** Position in the policy's `spec.rules`, for decisions and messages. */
  readonly index: number;
  /** OR-ed sources. */
  readonly from?: readonly AuthzSource[];
  /** OR-ed operations. */
  readonly to?: readonly AuthzOperation[];
  /** AND-ed conditions. */
  readonly when?: readonly AuthzCondition[];
}

/**
 * Who calls. Fields are AND-ed, the values of one field OR-ed, a `not…`
 * field matches when none of its values does. Identity fields (principals,
 * namespaces, serviceAccounts, trustDomains, callers) read the peer's mTLS
 * identity; for plaintext they compare against an empty value, as in Istio.
 */
export interface AuthzSource {
  /** `trust-domain/ns/<ns>/sa/<account>` patterns; trust-domain aliases already expanded. */
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  /** `issuer/subject` patterns of a validated JWT (split at the last `/`). */
  readonly requestPrincipals?: readonly string[];
  readonly notRequestPrincipals?: readonly string[];
  /** Namespace patterns (`*` is the only wildcard). */
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  /** `namespace/account`, exact. */
  readonly serviceAccounts?: readonly string[];
  readonly notServiceAccounts?: readonly string[];
  readonly trustDomains?: readonly string[];
  readonly notTrustDomains?: readonly string[];
  /** IPs and CIDR blocks of the direct peer. */
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  /** IPs and CIDR blocks of the original client (X-Forwarded-For / PROXY protocol). */
  readonly remoteIpBlocks?: readonly string[];
  readonly notRemoteIpBlocks?: readonly string[];
  /** `source.labels`: the caller's identity must be one of the group's. */
  readonly callers?: CallerGroup;
  /** `source.notLabels`: the caller's identity must not be one of the group's. */
  readonly notCallers?: CallerGroup;
}

/**
 * A caller group resolved to identities. Which identities count is decided
 * to fail closed: an identity shared with workloads outside the group is left
 * out where the group grants (ALLOW `labels`, DENY `notLabels`) and kept
 * where it restricts (ALLOW `notLabels`, DENY `labels`).
 */
export interface CallerGroup {
  readonly labels: Readonly<Record<string, string>>;
  /** Principals (`trust-domain/ns/<ns>/sa/<account>`), sorted. */
  readonly principals: readonly string[];
}

/** What is called. Same rules as AuthzSource. */
export interface AuthzOperation {
  /** Host / authority patterns, compared without case; a port is part of the value (`example.com:*`). */
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  /** Destination ports as the workload receives them (target ports). */
  readonly ports?: readonly number[];
  readonly notPorts?: readonly number[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  /** Patterns over the normalized path without query: exact, `prefix*`, `*suffix`, `*`, or a `{*}` / `{**}` template. */
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

/** A `when` condition, as written (keys of Istio's condition list). */
export interface AuthzCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

export type AuthzNoteKind =
  /** An identity of the caller group is also used by workloads outside it. */
  | 'caller-identity-shared'
  /** No workload carries the group's labels: it matches no caller. */
  | 'caller-group-empty'
  /** A CUSTOM policy: Trellis has no external authorizer and denies what it matches. */
  | 'custom-not-supported';

/** Something the analyzer will report about the compiled policies. */
export interface AuthzNote {
  readonly kind: AuthzNoteKind;
  /**
   * The catalogue code of the message (src/api/messages.ts: TRL1304
   * caller-identity-shared, TRL1305 caller-group-empty, TRL1306
   * custom-not-supported; all warnings).
   */
  readonly code: string;
  /** `AuthorizationPolicy namespace/name`. */
  readonly resource: string;
  /** Field path inside the resource, e.g. `spec.rules[0].from[1].source.labels`. */
  readonly field: string;
  readonly message: string;
  /** The arguments the message was rendered from (its catalogue template's placeholders). */
  readonly args: Readonly<Record<string, string>>;
  /** The identities concerned (SPIFFE IDs), sorted. */
  readonly identities?: readonly string[];
}
