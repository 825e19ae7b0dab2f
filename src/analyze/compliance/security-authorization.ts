/**
 * compliance.security.authorization: every sidecar that serves a service is
 * selected by an ALLOW AuthorizationPolicy (as the compiler gives it to the
 * proxy), and that policy does not let in a caller it cannot have meant: an
 * mTLS identity that no workload has, tried with the proxies' engine.
 */
import type { Service } from '../../registry/types.js';
import type { Analyzer } from '../analyzer.js';
import { listSome, proxyViews, reportAt, resourceByRef, serviceTarget, workloadTarget } from './mesh.js';
import { decide } from './policy.js';
import { authorizerOf, describeDecision, describeProbe, firstAllowed, isHttp, outsider, probes } from './probe.js';

export const securityAuthorization: Analyzer = {
  name: 'compliance.security.authorization',
  description: 'Every sidecar that serves a service is under an ALLOW AuthorizationPolicy that names its callers (an identity of no workload is refused), unless a CompliancePolicy says security.requireAllowPolicy: false.',
  reads: ['CompliancePolicy', 'AuthorizationPolicy', 'Service', 'ServiceEntry', 'Deployment', 'Pod', 'WorkloadEntry', 'App'],
  messages: ['NoAllowPolicy', 'AllowPolicyAdmitsAnyone'],
  run(ctx) {
    const stranger = outsider(ctx.mesh.trustDomain, ctx.registry.namespaces());
    for (const { workload: w, snapshot } of proxyViews(ctx)) {
      if (snapshot.node.kind !== 'sidecar' || snapshot.inbound.length === 0) continue;
      const services = [...new Set(snapshot.inbound.map((l) => l.service))].map((h) => ctx.registry.service(h)).filter((s): s is Service => s !== undefined);
      const d = decide(ctx, 'security', w.namespace, services);
      if (!d.settings.enabled || !d.settings.requireAllowPolicy) continue;
      const who = `workload ${w.name}.${w.namespace}`;
      if (!snapshot.authz?.policies.some((p) => p.action === 'ALLOW')) {
        reportAt(ctx, 'NoAllowPolicy', { workload: who, services: listSome(services.map((s) => `${s.name}.${s.namespace}`)), policy: d.by },
          workloadTarget(ctx, w), services[0] && serviceTarget(ctx, services[0]));
        continue;
      }
      const authorize = authorizerOf(snapshot.authz);
      for (const l of snapshot.inbound) {
        const hit = firstAllowed(authorize, probes(snapshot.authz, l.service, l.targetPort, isHttp(l.protocol)), stranger);
        if (!hit) continue;
        const ap = hit.decision.policy !== undefined ? resourceByRef(ctx, `AuthorizationPolicy ${hit.decision.policy}`) : undefined;
        reportAt(ctx, 'AllowPolicyAdmitsAnyone', { workload: who, decision: describeDecision(hit.decision), request: describeProbe(hit.req), policy: d.by },
          ap ? { resource: ap, field: ['spec', 'rules', hit.decision.rule ?? 0] } : undefined, workloadTarget(ctx, w));
        break; // one port says enough about the workload
      }
    }
  },
};
