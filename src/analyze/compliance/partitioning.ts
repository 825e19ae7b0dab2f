/**
 * compliance.partitioning: a tenant's services cannot be called from another
 * tenant unless the tenant decided so. For every service of a tenant, every
 * port and every workload of another tenant:
 *
 * - can the caller send to it? It can when the service is exported to the
 *   caller's namespace (its proxy then has a route, with mTLS unless the
 *   port is DISABLE), or, when it is not, when outboundTrafficPolicy is
 *   ALLOW_ANY and the port accepts plaintext (the call passes through);
 * - does the workload's authorization (the proxies' engine, over what the
 *   compiler gives its proxy) let the caller in, for some probe request?
 * - if it does, would it let an outsider in too (an identity no workload
 *   has)? Then no one decided to admit that tenant: a leak.
 *
 * Tenants come from the mesh-wide CompliancePolicy; namespaces of no tenant
 * are shared and not checked either way.
 */
import type { Service } from '../../registry/types.js';
import type { AnalysisContext, Analyzer, Target } from '../analyzer.js';
import { serviceVisible } from '../lookup.js';
import { instancesOf, listSome, meshServices, proxyViews, reportAt, resourceByRef, serviceTarget, type ProxyView } from './mesh.js';
import { tenancy } from './policy.js';
import { authorizerOf, describeDecision, describeProbe, firstAllowed, isHttp, outsider, principalOf, probes } from './probe.js';

export const partitioning: Analyzer = {
  name: 'compliance.partitioning',
  description: 'No workload of one tenant (CompliancePolicy partitioning) can call a service of another tenant unless that service exports itself to it and authorizes it in particular, decided with the proxies\' authorization engine.',
  reads: ['CompliancePolicy', 'AuthorizationPolicy', 'PeerAuthentication', 'Service', 'ServiceEntry', 'MeshConfig', 'Deployment', 'Pod', 'WorkloadEntry', 'App'],
  messages: ['TenantReachable'],
  run(ctx) {
    const t = tenancy(ctx);
    if (!t) return;
    const views = proxyViews(ctx);
    const byWorkload = new Map(views.map((v) => [`${v.workload.name}.${v.workload.namespace}`, v]));
    const callers = views.filter((v) => t.tenantOf.has(v.workload.namespace));
    const stranger = outsider(ctx.mesh.trustDomain, ctx.registry.namespaces());
    for (const s of meshServices(ctx)) {
      const tenant = t.tenantOf.get(s.namespace);
      if (tenant === undefined) continue;
      const servers = [...new Set(instancesOf(ctx.registry, s).map((e) => `${e.workload}.${e.namespace}`))]
        .map((k) => byWorkload.get(k)).filter((v): v is ProxyView => v !== undefined);
      checkService(ctx, s, tenant, servers, callers.filter((c) => t.tenantOf.get(c.workload.namespace) !== tenant), (ns) => t.tenantOf.get(ns)!, stranger);
    }
  },
};

interface Leak { callers: Set<string>; servers: Set<string>; how: string; why: string; at?: Target; other: string }

function checkService(ctx: AnalysisContext, s: Service, tenant: string, servers: readonly ProxyView[], callers: readonly ProxyView[], tenantOf: (ns: string) => string, stranger: string): void {
  const leaks = new Map<string, Leak>();
  for (const server of servers) {
    const authorize = authorizerOf(server.snapshot.authz);
    for (const l of server.snapshot.inbound) {
      if (l.service !== s.hostname) continue;
      const reqs = probes(server.snapshot.authz, s.hostname, l.targetPort, isHttp(l.protocol));
      const mode = l.mtls ?? 'PERMISSIVE';
      for (const c of callers) {
        const visible = serviceVisible(s, c.workload.namespace);
        let principal: string | undefined;
        let how: string;
        if (visible) {
          principal = mode === 'DISABLE' ? undefined : principalOf(c.workload.identity);
          how = s.exportTo.includes('*') ? 'it is exported to every namespace' : `it is exported to namespace ${c.workload.namespace}`;
        } else if (ctx.mesh.outboundTrafficPolicy === 'ALLOW_ANY' && mode !== 'STRICT') {
          principal = undefined;
          how = `it is not exported to namespace ${c.workload.namespace}, but outboundTrafficPolicy ALLOW_ANY passes plaintext through and port ${l.port} is ${mode}`;
        } else continue;
        const hit = firstAllowed(authorize, reqs, principal);
        if (!hit) continue;
        // Admitted on purpose when an outsider is refused the same request.
        const outsiderDecision = authorize(principal !== undefined ? { ...hit.req, principal: stranger } : hit.req);
        if (!outsiderDecision.allowed) continue;
        const d = hit.decision;
        const why = d.policy !== undefined
          ? `${describeDecision(d)} admits ${describeProbe(hit.req)} from any caller, an identity of no workload included`
          : `no ALLOW AuthorizationPolicy selects ${server.workload.name}, so every request is allowed (${describeProbe(hit.req)})`;
        const key = `${tenantOf(c.workload.namespace)}|${d.policy ?? ''}|${d.rule ?? ''}|${how}`;
        let leak = leaks.get(key);
        if (!leak) {
          const ap = d.policy !== undefined ? resourceByRef(ctx, `AuthorizationPolicy ${d.policy}`) : undefined;
          leaks.set(key, (leak = { callers: new Set(), servers: new Set(), how, why, other: tenantOf(c.workload.namespace), ...(ap ? { at: { resource: ap, field: ['spec', 'rules', d.rule ?? 0] } } : {}) }));
        }
        leak.callers.add(`${c.workload.name}.${c.workload.namespace}`);
        leak.servers.add(server.workload.name);
      }
    }
  }
  for (const leak of leaks.values()) {
    reportAt(ctx, 'TenantReachable', {
      service: `service ${s.name}.${s.namespace}`, tenant, callers: listSome([...leak.callers]), other: leak.other,
      how: leak.how, why: leak.why, workloads: listSome([...leak.servers]),
    }, leak.at, serviceTarget(ctx, s));
  }
}
