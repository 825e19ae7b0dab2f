/**
 * `virtualservice.jwt-claim-routes` (Istio's JWTClaimRouteAnalyzer): a
 * VirtualService that routes on `@request.auth.claims.*` at a gateway needs
 * a RequestAuthentication on that gateway's workloads, or no token is
 * validated there and the claim is never known (TRL0149). Which policies
 * apply to a workload is the compiler's `applicableRequestAuthn`.
 *
 * Trellis's route matcher does not evaluate claims yet: it reads such a key
 * as a request header, which no HTTP request can carry (`@` is not allowed
 * in a header name). Every claim match is therefore reported as not enforced
 * (TRL1410), with what it does instead.
 */
import { applicableRequestAuthn } from '../../compile/request-authentication.js';
import type { AnalysisContext, Analyzer } from '../analyzer.js';
import { workloadsSelected } from '../lookup.js';
import { gatewayKey, listOf, type FieldPath, type VsResource } from './vs-common.js';

const CLAIM_PREFIX = '@request.auth.claims.';

interface ClaimMatch {
  readonly claim: string;
  readonly path: FieldPath;
  readonly negated: boolean;
}

/** Every header or withoutHeaders condition on a JWT claim, in document order. */
function claimMatches(vs: VsResource): ClaimMatch[] {
  const out: ClaimMatch[] = [];
  vs.body.spec.http?.forEach((r, i) => {
    r.match?.forEach((m, j) => {
      for (const field of ['headers', 'withoutHeaders'] as const) {
        for (const key of Object.keys(m[field] ?? {})) {
          if (key.startsWith(CLAIM_PREFIX)) out.push({ claim: key.slice(CLAIM_PREFIX.length), path: ['spec', 'http', i, 'match', j, field, key], negated: field === 'withoutHeaders' });
        }
      }
    });
  });
  return out;
}

/** The workloads of a Gateway's selector that no RequestAuthentication applies to. */
function unauthenticated(ctx: AnalysisContext, selector: Readonly<Record<string, string>> | undefined): string[] {
  if (!selector || Object.keys(selector).length === 0) return []; // the compiler applies a Gateway without selector to no workload
  return workloadsSelected(ctx, selector)
    .filter((w) => applicableRequestAuthn(ctx.config, ctx.mesh.rootNamespace, { namespace: w.namespace, labels: w.labels }).length === 0)
    .map((w) => `${w.namespace}/${w.name}`);
}

export const jwtClaimRoutesAnalyzer: Analyzer = {
  name: 'virtualservice.jwt-claim-routes',
  description: 'VirtualServices that route on JWT claims at a gateway have a RequestAuthentication on the gateway workloads; claim matches are flagged as not enforced by Trellis.',
  reads: ['VirtualService', 'Gateway', 'RequestAuthentication', 'Pod', 'Deployment', 'WorkloadEntry', 'MeshConfig'],
  messages: ['JwtClaimBasedRoutingWithoutRequestAuthN', 'JwtClaimRouteNotEnforced'],
  istio: ['virtualservice.JWTClaimRouteAnalyzer'],
  run(ctx) {
    for (const vs of ctx.ofKind('VirtualService')) {
      const claims = claimMatches(vs);
      if (claims.length === 0) continue;
      for (const c of claims) {
        ctx.report('JwtClaimRouteNotEnforced', {
          claim: c.claim,
          effect: c.negated ? 'this withoutHeaders condition always holds' : 'this match never holds and its rule never takes the request',
        }, { resource: vs, field: c.path });
      }
      const ns = vs.metadata.namespace;
      for (const ref of vs.body.spec.gateways ?? []) {
        if (ref === 'mesh') continue;
        const key = gatewayKey(ref, ns);
        const slash = key.indexOf('/');
        const gw = ctx.config.get('Gateway', key.slice(0, slash), key.slice(slash + 1));
        if (!gw) continue; // a missing Gateway is virtualservice.gateways' finding
        const missing = unauthenticated(ctx, gw.body.spec.selector);
        if (missing.length === 0) continue;
        ctx.report('JwtClaimBasedRoutingWithoutRequestAuthN', { claim: claims[0]!.claim, gateway: key, workloads: listOf(missing) }, { resource: vs, field: claims[0]!.path });
      }
    }
  },
};
