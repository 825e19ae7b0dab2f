/**
 * compliance.security.mtls: every inbound port of every sidecar is
 * PeerAuthentication STRICT, as the compiler sets it in the proxy's inbound
 * listeners (src/compile/peer-authn.ts, Istio's precedence). Gateways are
 * left out: they take traffic from outside the mesh by design.
 */
import { peerAuthnOrigin } from '../../compile/peer-authn.js';
import type { Service } from '../../registry/types.js';
import type { Analyzer } from '../analyzer.js';
import { listSome, proxyViews, reportAt, serviceTarget, workloadTarget } from './mesh.js';
import { decide } from './policy.js';

export const securityMtls: Analyzer = {
  name: 'compliance.security.mtls',
  description: 'Every inbound port of every sidecar takes mTLS only (PeerAuthentication STRICT), unless a CompliancePolicy says security.requireStrictMtls: false.',
  reads: ['CompliancePolicy', 'PeerAuthentication', 'Service', 'ServiceEntry', 'Deployment', 'Pod', 'WorkloadEntry', 'App'],
  messages: ['MtlsNotStrict'],
  run(ctx) {
    const root = ctx.mesh.rootNamespace;
    for (const { workload: w, snapshot } of proxyViews(ctx)) {
      if (snapshot.node.kind !== 'sidecar' || snapshot.inbound.length === 0) continue;
      const services = [...new Set(snapshot.inbound.map((l) => l.service))].map((h) => ctx.registry.service(h)).filter((s): s is Service => s !== undefined);
      const d = decide(ctx, 'security', w.namespace, services);
      if (!d.settings.enabled || !d.settings.requireStrictMtls) continue;
      // One message per workload and deciding field, with its ports.
      const groups = new Map<string, { ports: number[]; mode: string; origin: ReturnType<typeof peerAuthnOrigin> }>();
      for (const l of snapshot.inbound) {
        const mode = l.mtls ?? 'PERMISSIVE';
        if (mode === 'STRICT') continue;
        const origin = peerAuthnOrigin(ctx.config, root, w.namespace, w.labels, l.targetPort);
        const key = origin ? `${origin.resource.key}|${origin.field.join('.')}` : '';
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { ports: [], mode, origin }));
        if (!g.ports.includes(l.targetPort)) g.ports.push(l.targetPort);
      }
      for (const { ports, mode, origin } of groups.values()) {
        const args = {
          workload: `workload ${w.name}.${w.namespace}`, port: listSome(ports.sort((a, b) => a - b).map(String)), mode,
          origin: origin ? `, set by ${origin.resource.ref}` : ': no PeerAuthentication applies, and the default is PERMISSIVE',
          policy: d.by,
          fix: origin ? `set ${origin.field.join('.')} of ${origin.resource.ref} to STRICT` : `add a PeerAuthentication in namespace ${root} (mesh-wide) or ${w.namespace} with mtls.mode: STRICT`,
        };
        reportAt(ctx, 'MtlsNotStrict', args, origin ? { resource: origin.resource, field: origin.field } : undefined, workloadTarget(ctx, w), services[0] && serviceTarget(ctx, services[0]));
      }
    }
  },
};
