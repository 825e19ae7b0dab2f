/**
 * `security.istio.io` RequestAuthentication: which JSON Web Tokens the
 * selected workloads accept, where to find them and what to do with their
 * claims. A request with an invalid token is rejected; one without a token is
 * let through unauthenticated (an AuthorizationPolicy can require one).
 */
import { atMostOne, duration, z, type DeepReadonly } from '../schema.js';
import { defineKind, type ValueWarning } from '../kind.js';
import { policyScopeIssues, policySelector, policyTargetRef, policyTargetRefs } from './policy-scope.js';

const nonEmpty = z.string().refine((s) => s !== '', { message: 'must not be an empty string' });

const jwksUri = z.string().superRefine((s, ctx) => {
  let scheme: string | undefined;
  try {
    scheme = new URL(s).protocol;
  } catch {
    scheme = undefined;
  }
  if (scheme !== 'http:' && scheme !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `jwksUri ${JSON.stringify(s)} must be a URL with an http:// or https:// scheme, such as https://example.com/.well-known/jwks.json` });
  } else if (s.length > 2048) {
    ctx.addIssue({ code: 'custom', message: 'jwksUri must be at most 2048 characters long' });
  }
});

/** An inline JSON Web Key Set: a JSON object with a `keys` list. */
const jwks = z.string().superRefine((s, ctx) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `jwks is not valid JSON: ${(e as Error).message}` });
    return;
  }
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray((parsed as { keys?: unknown }).keys)) {
    ctx.addIssue({ code: 'custom', message: 'jwks must be a JSON Web Key Set: an object with a "keys" list' });
  }
});

const headerName = z.string().superRefine((s, ctx) => {
  if (!/^[-_A-Za-z0-9]+$/.test(s)) ctx.addIssue({ code: 'custom', message: `header name ${JSON.stringify(s)} may hold only letters, digits, "-" and "_"` });
});

const jwtRule = z.strictObject({
  issuer: nonEmpty.optional(),
  audiences: z.array(nonEmpty).optional(),
  jwksUri: jwksUri.optional(),
  jwks: jwks.optional(),
  fromHeaders: z.array(z.strictObject({ name: nonEmpty, prefix: z.string().optional() })).optional(),
  fromParams: z.array(nonEmpty).optional(),
  fromCookies: z.array(nonEmpty).optional(),
  outputPayloadToHeader: headerName.optional(),
  forwardOriginalToken: z.boolean().optional(),
  outputClaimToHeaders: z.array(z.strictObject({ header: headerName, claim: nonEmpty })).optional(),
  timeout: duration({ min: 1 }).optional(),
  spaceDelimitedClaims: z.array(nonEmpty).max(64, { message: 'at most 64 claims' }).optional(),
  presence: z.enum(['OPTIONAL', 'REQUIRED']).optional(),
}).superRefine((r, ctx) => {
  if (!r.issuer && !r.jwksUri) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'a JWT rule needs an issuer, or a jwksUri when the issuer varies' });
  atMostOne(r, ['jwksUri', 'jwks'], ctx, 'a JWT rule');
});

export const requestAuthenticationSpec = z.strictObject({
  selector: policySelector.optional(),
  targetRef: policyTargetRef.optional(),
  targetRefs: policyTargetRefs.optional(),
  jwtRules: z.array(jwtRule).max(4096, { message: 'at most 4096 JWT rules' }).optional(),
}).superRefine((s, ctx) => policyScopeIssues(s, ctx));

/**
 * A rule with neither `jwksUri` nor `jwks`: Istio finds the keys through
 * OpenID Connect discovery on the issuer, Trellis does not, so the issuer's
 * tokens are all refused. The warning sits on the issuer's value (the schema
 * requires an issuer when there is no jwksUri).
 */
function keySourceWarnings(spec: z.infer<typeof requestAuthenticationSpec>): ValueWarning[] {
  const out: ValueWarning[] = [];
  spec.jwtRules?.forEach((r, i) => {
    if (r.jwksUri === undefined && r.jwks === undefined) {
      out.push({ path: ['spec', 'jwtRules', i, 'issuer'], message: 'the rule has neither jwksUri nor jwks, and Trellis does not discover keys through OpenID Connect: every token of this issuer is refused (401) until the rule names its keys' });
    }
  });
  return out;
}

export type RequestAuthenticationSpec = DeepReadonly<z.infer<typeof requestAuthenticationSpec>>;
export type JwtRule = NonNullable<RequestAuthenticationSpec['jwtRules']>[number];

export const RequestAuthentication = defineKind({
  kind: 'RequestAuthentication',
  group: 'security.istio.io',
  versions: ['v1', 'v1beta1'],
  namespaced: true,
  body: z.strictObject({ spec: requestAuthenticationSpec, status: z.unknown().optional() }),
  notEnforced: [
    'spec.targetRef',
    'spec.targetRefs',
    'spec.jwtRules[*].presence',
  ],
  warnings: (body) => keySourceWarnings(body.spec),
  docs: 'JWT validation for workloads: issuers, audiences, key sets, token locations, and claims copied to headers.',
});
