/**
 * JWT request authentication in the proxy: a snapshot's `requestAuthn` rules
 * (src/protocol/request-authn.ts) become one function, built once per
 * snapshot, that finds the request's token, verifies it with `jose` against
 * the keys the control plane inlined, and says what to do:
 *
 * - no token at any rule's locations → ok, no principal (Istio: the request
 *   is unauthenticated; an AuthorizationPolicy may still refuse it);
 * - one token → ok when a rule that looks at that location and whose issuer
 *   is the token's `iss` verifies it (signature with the rule's keys, `exp`
 *   and `nbf` with Envoy's 60 s clock skew, `aud` among the rule's audiences);
 *   otherwise 401. A token of an issuer no rule names is 401 too;
 * - tokens at more than one location, or repeated at one → 401 (Istio leaves
 *   the principal undefined there; Trellis refuses rather than guess).
 *
 * On success the principal is `iss/sub`. The headers the rules write
 * (`outputPayloadToHeader`, `outputClaimToHeaders`) are always removed from
 * the incoming request first, so a client cannot forge them; with
 * `forwardOriginalToken: false` (the default) the token's header is removed
 * too. The caller applies `headersToRemove`, then `headersToSet`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import type { JwtRuleConfig } from '../protocol/request-authn.js';

/** What authentication decided for one request. */
export type JwtResult =
  | {
    readonly ok: true;
    /** `iss/sub` of the verified token; absent when the request carried no token. */
    readonly principal?: string;
    /** The verified token's claims (space-delimited claims such as `scope` as lists). */
    readonly claims?: JWTPayload;
    readonly audiences?: readonly string[];
    /** The `azp` claim. */
    readonly presenter?: string;
    readonly headersToSet: readonly (readonly [string, string])[];
    readonly headersToRemove: readonly string[];
  }
  | { readonly ok: false; readonly status: 401; readonly reason: string };

/** The parts of a request authentication reads. `path` is the request target with its query. */
export interface JwtRequest {
  readonly headers: IncomingHttpHeaders;
  readonly path: string;
}

export type JwtAuthenticator = (req: JwtRequest) => Promise<JwtResult>;

export interface JwtAuthnOptions {
  /** Allowed clock skew for `exp` and `nbf`, in seconds (Envoy's default: 60). */
  readonly clockSkewSeconds?: number;
}

/** Envoy's `clock_skew_seconds` default. */
export const JWT_CLOCK_SKEW_SECONDS = 60;

/** Signature algorithms a JWKS key may verify; symmetric and `none` are never accepted. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

const EMPTY: readonly never[] = Object.freeze([]);
const UNAUTHENTICATED = Object.freeze({ ok: true as const, headersToSet: EMPTY, headersToRemove: EMPTY });
const PASS_THROUGH: Promise<JwtResult> = Promise.resolve(UNAUTHENTICATED);

interface Verifier {
  readonly rule: JwtRuleConfig;
  readonly getKey?: JWTVerifyGetKey;
  readonly keyError?: string;
  /** Location keys: `h:<name>:<prefix>`, `q:<name>`, `c:<name>`. */
  readonly at: ReadonlySet<string>;
  readonly options: JWTVerifyOptions;
}

interface Found {
  readonly token: string;
  readonly at: string;
  /** The header it came from, when it came from one. */
  readonly header?: string;
}

const fail = (reason: string): JwtResult => Object.freeze({ ok: false as const, status: 401 as const, reason });

/** Builds the authenticator of one snapshot's rules; with no rules it passes every request through unchanged. */
export function buildJwtAuthenticator(rules: readonly JwtRuleConfig[] | undefined, opts: JwtAuthnOptions = {}): JwtAuthenticator {
  if (!rules || rules.length === 0) return () => PASS_THROUGH;
  const clockTolerance = opts.clockSkewSeconds ?? JWT_CLOCK_SKEW_SECONDS;
  const verifiers = rules.map((rule) => verifierOf(rule, clockTolerance));

  // Where to look: header name → prefixes (longest first, lower case); query parameters; cookies.
  const headerPrefixes = new Map<string, string[]>();
  const params = new Set<string>();
  const cookies = new Set<string>();
  for (const r of rules) {
    for (const h of r.locations.headers) {
      const list = headerPrefixes.get(h.name) ?? [];
      if (!list.includes(h.prefix.toLowerCase())) list.push(h.prefix.toLowerCase());
      headerPrefixes.set(h.name, list);
    }
    for (const p of r.locations.params) params.add(p);
    for (const c of r.locations.cookies) cookies.add(c);
  }
  for (const list of headerPrefixes.values()) list.sort((a, b) => b.length - a.length);

  const outputHeaders = Object.freeze([...new Set(rules.flatMap((r) => [
    ...(r.outputPayloadToHeader ? [r.outputPayloadToHeader] : []),
    ...r.outputClaimToHeaders.map((c) => c.header),
  ]))].sort());
  const missing: Promise<JwtResult> = Promise.resolve(Object.freeze({ ok: true as const, headersToSet: EMPTY, headersToRemove: outputHeaders }));

  const extract = (req: JwtRequest): Found[] => {
    const found: Found[] = [];
    for (const [name, prefixes] of headerPrefixes) {
      const v = req.headers[name];
      if (v === undefined) continue;
      for (const value of Array.isArray(v) ? v : [v]) {
        const lower = value.toLowerCase();
        const prefix = prefixes.find((p) => lower.startsWith(p));
        if (prefix === undefined) continue;
        // Node joins repeated headers with ", "; a JWT never holds a comma.
        for (const token of value.slice(prefix.length).split(',')) {
          const t = token.trim();
          if (t !== '') found.push({ token: t, at: `h:${name}:${prefix}`, header: name });
        }
      }
    }
    if (params.size > 0) {
      const q = req.path.indexOf('?');
      if (q >= 0) {
        const h = req.path.indexOf('#', q);
        const query = new URLSearchParams(req.path.slice(q + 1, h < 0 ? undefined : h));
        for (const p of params) for (const t of query.getAll(p)) if (t !== '') found.push({ token: t, at: `q:${p}` });
      }
    }
    if (cookies.size > 0) {
      const cookie = req.headers.cookie;
      if (cookie) {
        for (const part of cookie.split(';')) {
          const eq = part.indexOf('=');
          if (eq < 0) continue;
          const name = part.slice(0, eq).trim();
          const t = part.slice(eq + 1).trim();
          if (cookies.has(name) && t !== '') found.push({ token: t, at: `c:${name}` });
        }
      }
    }
    return found;
  };

  return (req) => {
    const found = extract(req);
    if (found.length === 0) return missing;
    if (found.length > 1) return Promise.resolve(fail('more than one JWT in the request'));
    return authenticate(found[0]!, verifiers, outputHeaders);
  };
}

function verifierOf(rule: JwtRuleConfig, clockTolerance: number): Verifier {
  const at = new Set<string>([
    ...rule.locations.headers.map((h) => `h:${h.name}:${h.prefix.toLowerCase()}`),
    ...rule.locations.params.map((p) => `q:${p}`),
    ...rule.locations.cookies.map((c) => `c:${c}`),
  ]);
  const options: JWTVerifyOptions = {
    clockTolerance,
    algorithms: ALGORITHMS,
    ...(rule.issuer !== undefined ? { issuer: rule.issuer } : {}),
    ...(rule.audiences ? { audience: [...rule.audiences] } : {}),
  };
  if (rule.keys.length === 0) return { rule, at, options, keyError: 'the issuer\'s keys are not available' };
  try {
    return { rule, at, options, getKey: createLocalJWKSet({ keys: rule.keys.map((k) => ({ ...k })) }) };
  } catch {
    return { rule, at, options, keyError: 'the issuer\'s keys are invalid' };
  }
}

async function authenticate(found: Found, verifiers: readonly Verifier[], outputHeaders: readonly string[]): Promise<JwtResult> {
  let iss: unknown;
  try {
    iss = decodeJwt(found.token).iss;
  } catch {
    return fail('JWT is malformed');
  }
  const candidates = verifiers.filter((v) => v.at.has(found.at) && (v.rule.issuer === undefined || v.rule.issuer === iss));
  if (candidates.length === 0) return fail('JWT issuer is not configured');
  let reason = '';
  for (const v of candidates) {
    if (!v.getKey) {
      reason ||= v.keyError!;
      continue;
    }
    try {
      const payload = await verifyWithAnyKey(found.token, v.getKey, v.options);
      return success(found, v.rule, payload, outputHeaders);
    } catch (e) {
      reason ||= reasonOf(e);
    }
  }
  return fail(reason);
}

/** jwtVerify; when several keys of the set match (no `kid`), each is tried, as Envoy does. */
async function verifyWithAnyKey(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (e) {
    if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw e;
    for await (const key of e) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

function reasonOf(e: unknown): string {
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED': return 'JWT is expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (e as { claim?: string }).claim;
      if (claim === 'nbf') return 'JWT is not yet valid';
      if (claim === 'aud') return 'JWT audience is not allowed';
      if (claim === 'iss') return 'JWT issuer is not configured';
      return 'JWT claims are invalid';
    }
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED': return 'JWT algorithm is not allowed';
    case 'ERR_JWKS_NO_MATCHING_KEY': return 'no key of the issuer matches the JWT';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'JWT signature is invalid';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID': return 'JWT is malformed';
    case 'ERR_JWK_INVALID':
    case 'ERR_JWKS_INVALID': return 'the issuer\'s keys are invalid';
    default: return 'JWT verification failed';
  }
}

/** Header values Node accepts: no control characters but tab. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function success(found: Found, rule: JwtRuleConfig, payload: JWTPayload, outputHeaders: readonly string[]): JwtResult {
  const set: [string, string][] = [];
  if (rule.outputPayloadToHeader) set.push([rule.outputPayloadToHeader, found.token.split('.')[1]!]);
  for (const c of rule.outputClaimToHeaders) {
    const v = claimText(claimAt(payload, c.claim));
    if (v !== undefined && HEADER_VALUE.test(v)) set.push([c.header, v]);
  }
  const remove = !rule.forwardOriginalToken && found.header !== undefined && !outputHeaders.includes(found.header)
    ? [...outputHeaders, found.header]
    : outputHeaders;
  const aud = payload.aud;
  return Object.freeze({
    ok: true as const,
    principal: `${typeof payload.iss === 'string' ? payload.iss : ''}/${typeof payload.sub === 'string' ? payload.sub : ''}`,
    claims: normalizeClaims(payload, rule.spaceDelimitedClaims),
    ...(aud !== undefined ? { audiences: Object.freeze(typeof aud === 'string' ? [aud] : [...aud]) } : {}),
    ...(typeof payload.azp === 'string' ? { presenter: payload.azp } : {}),
    headersToSet: Object.freeze(set.map((p) => Object.freeze(p))),
    headersToRemove: remove,
  });
}

/** A claim by name, or by a dotted path into nested objects (`a.b`). */
function claimAt(payload: JWTPayload, name: string): unknown {
  if (Object.hasOwn(payload, name)) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Strings, numbers and booleans as text; a list of them joined with ","; anything else: no header. */
function claimText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => ['string', 'number', 'boolean'].includes(typeof x))) return v.map(String).join(',');
  return undefined;
}

function normalizeClaims(payload: JWTPayload, spaceDelimited: readonly string[]): JWTPayload {
  let out: JWTPayload | undefined;
  for (const c of spaceDelimited) {
    const v = payload[c];
    if (typeof v !== 'string') continue;
    out ??= { ...payload };
    out[c] = Object.freeze(v.split(' ').filter((s) => s !== ''));
  }
  return Object.freeze(out ?? payload);
}
