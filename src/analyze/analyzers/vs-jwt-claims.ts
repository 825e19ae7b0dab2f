/**
 * `virtualservice.jwt-claim-routes` (Istio's JWTClaimRouteAnalyzer): a
 * VirtualService that routes on `@request.auth.claims.*` at a gateway needs
 * a RequestAuthentication on that gateway's workloads, or no token is
 * validated there and the claim is never known (TRL0149). Which policies
 * apply to a workload is the compiler's `applicableRequestAuthn`.
 *
 * Trellis evaluates claim matches where the token is validated before the
 * route is chosen: at gateways (src/policy/route-match.ts). A sidecar routes
 * its app's outbound calls and tokens are validated at the destination's
 * inbound, after routing, so at sidecars a claim match never holds and a
 * claim in `withoutHeaders` always does; each claim condition of a match that
 * applies to sidecars (`mesh`) is reported (TRL1410). Istio's validation
 * refuses claim routing bound to no gateway at all; Trellis warns instead.
 */
import { applicableRequestAuthn } from '../../compile/request-authentication.js';
import { routeClaimPath } from '../../policy/route-match.js';
import type { AnalysisContext, Analyzer } from '../analyzer.js';
import { workloadsSelected } from '../lookup.js';
import { gatewayKey, listOf, type FieldPath, type VsResource } from './vs-common.js';

interface ClaimMatch {
  readonly claim: string;
  readonly path: FieldPath;
  readonly negated: boolean;
  /** The match applies to sidecars: its `gateways`, or else the VirtualService's, name `mesh` (none named: mesh only). */
  readonly atSidecars: boolean;
  /** The Gateways (`namespace/name`) the match applies to. */
  readonly gateways: readonly string[];
}

/** Every header or withoutHeaders condition on a JWT claim, in document order. */
function claimMatches(vs: VsResource): ClaimMatch[] {
  const out: ClaimMatch[] = [];
  const vsGateways = vs.body.spec.gateways?.length ? vs.body.spec.gateways : ['mesh'];
  vs.body.spec.http?.forEach((r, i) => {
    r.match?.forEach((m, j) => {
      const applies = m.gateways?.length ? m.gateways : vsGateways;
      const atSidecars = applies.includes('mesh');
      const gateways = applies.filter((g) => g !== 'mesh').map((g) => gatewayKey(g, vs.metadata.namespace));
      for (const field of ['headers', 'withoutHeaders'] as const) {
        for (const key of Object.keys(m[field] ?? {})) {
          const claim = routeClaimPath(key);
          if (claim) out.push({ claim: claim.join('.'), path: ['spec', 'http', i, 'match', j, field, key], negated: field === 'withoutHeaders', atSidecars, gateways });
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
  description: 'VirtualServices that route on JWT claims at a gateway have a RequestAuthentication on the gateway workloads; claim matches that apply to sidecars, which never know claims, are flagged.',
  reads: ['VirtualService', 'Gateway', 'RequestAuthentication', 'Pod', 'Deployment', 'WorkloadEntry', 'MeshConfig'],
  messages: ['JwtClaimBasedRoutingWithoutRequestAuthN', 'JwtClaimRouteNotEnforced'],
  istio: ['virtualservice.JWTClaimRouteAnalyzer'],
  run(ctx) {
    for (const vs of ctx.ofKind('VirtualService')) {
      const claims = claimMatches(vs);
      if (claims.length === 0) continue;
      for (const c of claims) {
        if (!c.atSidecars) continue;
        ctx.report('JwtClaimRouteNotEnforced', {
          claim: c.claim,
          effect: c.negated ? 'at sidecars this withoutHeaders condition always holds' : 'at sidecars this match never holds and its rule never takes the request',
        }, { resource: vs, field: c.path });
      }
      const ns = vs.metadata.namespace;
      for (const ref of vs.body.spec.gateways ?? []) {
        if (ref === 'mesh') continue;
        const key = gatewayKey(ref, ns);
        const slash = key.indexOf('/');
        const gw = ctx.config.get('Gateway', key.slice(0, slash), key.slice(slash + 1));
        if (!gw) continue; // a missing Gateway is virtualservice.gateways' finding
        const first = claims.find((c) => c.gateways.includes(key));
        if (!first) continue; // the claim matches are bound to other gateways
        const missing = unauthenticated(ctx, gw.body.spec.selector);
        if (missing.length === 0) continue;
        ctx.report('JwtClaimBasedRoutingWithoutRequestAuthN', { claim: first.claim, gateway: key, workloads: listOf(missing) }, { resource: vs, field: first.path });
      }
    }
  },
};
