/**
 * The inbound chain's security stages, built once per snapshot and listener:
 *
 * - authn: RequestAuthentication — a JWT that fails every rule of its issuer
 *   is a 401; a verified one gives the request principal and claims; no
 *   token passes (a policy that requires requestPrincipals stops it).
 * - authz: AuthorizationPolicy (src/policy/authorize.ts, the very decision
 *   function the analyzers and `simulate` call) on the peer's mTLS identity,
 *   the normalized path, method, host, headers, the workload port and the JWT.
 *   A denial is a 403 "RBAC: access denied" with the deciding policy in the
 *   body's detail and the record's flag `RBAC`.
 *
 * TCP (CONNECT tunnels to the inbound listener) is authorized with
 * `authorizeTcp`, on the identity and ports only, as Istio does.
 */
import type { InboundListener, Snapshot } from '../protocol/snapshot.js';
import { buildAuthorizer, type AuthzDecision, type AuthzRequest } from '../policy/authorize.js';
import { PROXY_ERRORS } from './errors.js';
import type { Stage, StageContext } from './filter-chain.js';
import type { JwtAuthenticator } from './jwt-authn.js';
import { replyFor } from './local-reply.js';

/** What the authn stage learnt, for the authz stage after it. */
export interface RequestAuth {
  readonly principal?: string;
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly audiences?: readonly string[];
  readonly presenter?: string;
}

/** What an inbound stage can see besides the StageContext. */
export interface InboundStageContext extends StageContext {
  /** The caller's principal from its mTLS certificate (`cluster.local/ns/x/sa/y`); undefined for plaintext. */
  readonly peerPrincipal?: string;
  /** The local address the connection came in on. */
  readonly localAddress?: string;
  /** The request as it arrived (repeated headers, which Node joins, are told apart from rawHeaders). */
  readonly req?: { readonly rawHeaders: readonly string[] };
  /** Set by the authn stage. */
  requestAuth?: RequestAuth;
  /** The decision, for the record and the access log. */
  authzDecision?: AuthzDecision;
}

export type Authorizer = (r: AuthzRequest) => AuthzDecision;

/** The authorizer of a snapshot (built once; shared by every inbound listener of it). */
export function snapshotAuthorizer(s: Snapshot): Authorizer | undefined {
  return s.authz ? buildAuthorizer(s.authz) : undefined;
}

/** The authn stage, when a RequestAuthentication applies to the workload. */
export function jwtStage(s: Snapshot): Stage | undefined {
  const rules = s.requestAuthn?.rules;
  if (!rules?.length) return undefined;
  // jose (some 9 MiB) is loaded only by proxies whose workload has RequestAuthentication.
  let authenticate: JwtAuthenticator | Promise<JwtAuthenticator> = import('./jwt-authn.js').then((m) => (authenticate = m.buildJwtAuthenticator(rules)));
  return {
    phase: 'authn',
    name: 'request-authentication',
    async run(ctx) {
      const c = ctx as InboundStageContext;
      const verify = typeof authenticate === 'function' ? authenticate : await authenticate;
      const r = await verify({ headers: ctx.headers as never, path: ctx.path });
      if (!r.ok) {
        return { ...replyFor(PROXY_ERRORS.JWT_REJECTED, r.reason), headers: { 'www-authenticate': 'Bearer realm="trellis", error="invalid_token"' } };
      }
      for (const h of r.headersToRemove) delete ctx.headers[h];
      for (const [k, v] of r.headersToSet) ctx.headers[k] = v;
      if (r.principal !== undefined) {
        c.requestAuth = {
          principal: r.principal,
          ...(r.claims ? { claims: r.claims as Record<string, unknown> } : {}),
          ...(r.audiences ? { audiences: r.audiences } : {}),
          ...(r.presenter ? { presenter: r.presenter } : {}),
        };
      }
      return undefined;
    },
  };
}

/** The authz stage of one inbound listener (`destinationPort`: the workload port) or gateway server port. */
export function authzStage(authorize: Authorizer | undefined, destinationPort: number): Stage | undefined {
  if (!authorize) return undefined;
  return {
    phase: 'authz',
    name: 'authorization',
    run(ctx) {
      const c = ctx as InboundStageContext;
      const q = ctx.path.indexOf('?');
      const ra = c.requestAuth;
      // One shape for every request (absent attributes are undefined): no spread, no per-request hidden class.
      const d = authorize({
        tcp: false,
        principal: c.peerPrincipal,
        sourceIp: ctx.remoteAddress ?? '',
        destinationIp: c.localAddress,
        destinationPort,
        method: ctx.method,
        path: q < 0 ? ctx.path : ctx.path.slice(0, q),
        host: ctx.authority,
        headers: (name: string) => {
          const v = ctx.headers[name];
          if (typeof v !== 'string' || !v.includes(',')) return v as string | readonly string[] | undefined;
          // Node joins a repeated header with ", "; policies match each value on its own (CVE-2026-26308).
          const raw = c.req?.rawHeaders;
          if (!raw) return v;
          const values: string[] = [];
          for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) values.push(raw[i + 1]!);
          // A header a stage rewrote (the JWT outputs) no longer joins back to the same text: it is taken as it is.
          return values.length > 1 && values.join(', ') === v ? values : v;
        },
        requestPrincipal: ra?.principal,
        claims: (ra?.claims || undefined) as Record<string, unknown> | undefined,
        audiences: (ra?.audiences || undefined) as string[] | undefined,
        presenter: ra?.presenter || undefined,
      });
      c.authzDecision = d;
      if (d.allowed) return undefined;
      ctx.flag('RBAC');
      return replyFor(PROXY_ERRORS.RBAC_DENIED, d.reason);
    },
  };
}

/** A TCP connection (CONNECT tunnel) to `listener`: allowed or not, on the caller's identity, addresses and ports. */
export function authorizeTcp(authorize: Authorizer | undefined, listener: InboundListener, conn: { peerPrincipal?: string; remoteAddress?: string; localAddress?: string }): AuthzDecision | undefined {
  if (!authorize) return undefined;
  return authorize({
    tcp: true,
    ...(conn.peerPrincipal !== undefined ? { principal: conn.peerPrincipal } : {}),
    sourceIp: conn.remoteAddress ?? '',
    ...(conn.localAddress !== undefined ? { destinationIp: conn.localAddress } : {}),
    destinationPort: listener.targetPort,
  });
}
