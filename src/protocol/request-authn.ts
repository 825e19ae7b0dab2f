/**
 * Request authentication (JWT) as it travels in a snapshot
 * (`Snapshot.requestAuthn`): the JWT rules of every RequestAuthentication
 * that selects the workload, with the issuers' key sets inlined, so that a
 * proxy verifies tokens without any outbound call. Plain, frozen JSON data;
 * defaults are filled by the compiler, so the proxy applies exactly what it
 * reads here.
 *
 * How a proxy applies it (src/proxy/jwt-authn.ts, Istio's semantics):
 * - a request without a token at any rule's locations passes unauthenticated
 *   (an AuthorizationPolicy requiring `requestPrincipals` stops it later);
 * - a request with one token passes when a rule whose issuer matches the
 *   token's `iss` and that looks at the token's location verifies it
 *   (signature, `exp`/`nbf` with 60 s of clock skew, audiences); else 401;
 * - a request with tokens at more than one location (or repeated at one) is
 *   401: Istio leaves the principal undefined there, Trellis refuses it.
 */

/** One JSON Web Key as a JWKS lists it (public keys only are of use). */
export type Jwk = Readonly<Record<string, unknown>> & { readonly kty: string };

/** A header that may carry the token; the token is what follows `prefix` (compared case-insensitively). */
export interface JwtHeaderLocation {
  /** Lower case. */
  readonly name: string;
  /** `''` when the whole value is the token. */
  readonly prefix: string;
}

/** Where a rule looks for its token. With none given in the resource: `Authorization: Bearer` and `?access_token=`. */
export interface JwtLocations {
  readonly headers: readonly JwtHeaderLocation[];
  readonly params: readonly string[];
  readonly cookies: readonly string[];
}

/** A claim copied into a request header when the token verifies (`outputClaimToHeaders`). */
export interface JwtClaimHeader {
  /** Lower case. */
  readonly header: string;
  /** Claim name; `a.b` names the nested claim `b` of `a`. */
  readonly claim: string;
}

/** One `jwtRules` entry, compiled. */
export interface JwtRuleConfig {
  /** The `iss` a token must carry; absent: any issuer whose token these keys verify. */
  readonly issuer?: string;
  /** Accepted `aud` values (a token needs one of them); absent: any audience. */
  readonly audiences?: readonly string[];
  /** The issuer's public keys. Empty: every token this rule would verify is refused (keys not fetched yet). */
  readonly keys: readonly Jwk[];
  /** Where the keys came from: `inline`, or the `jwksUri`. */
  readonly keysFrom: string;
  /** Why `keys` is empty when it should not be (the JWKS fetch failed or has not happened yet). */
  readonly keysError?: string;
  readonly locations: JwtLocations;
  /** Header that receives the token's payload segment (base64url JSON) when it verifies. */
  readonly outputPayloadToHeader?: string;
  readonly outputClaimToHeaders: readonly JwtClaimHeader[];
  /** Keep the token header when forwarding (Istio's default: false, the header is removed). */
  readonly forwardOriginalToken: boolean;
  /** Claims whose space-separated string value counts as a list (`scope`, `permission` always). */
  readonly spaceDelimitedClaims: readonly string[];
  /** `RequestAuthentication <ns>/<name> jwtRules[<i>]`, for logs and config dumps. */
  readonly source: string;
}

/** The request authentication of one workload. Absent from a snapshot when no rule selects the workload. */
export interface WorkloadRequestAuthn {
  /** Sorted by issuer (rules without one first), then by source, as Istio orders them. */
  readonly rules: readonly JwtRuleConfig[];
}

/** The token locations Istio uses when a rule names none. */
export const DEFAULT_JWT_LOCATIONS: JwtLocations = Object.freeze({
  headers: Object.freeze([Object.freeze({ name: 'authorization', prefix: 'Bearer ' })]),
  params: Object.freeze(['access_token']),
  cookies: Object.freeze([]),
});

/** Claims Istio always treats as space-delimited lists. */
export const DEFAULT_SPACE_DELIMITED_CLAIMS: readonly string[] = Object.freeze(['permission', 'scope']);
