/**
 * compliance.security.egress: no plaintext leaves the mesh. Two ways it can:
 *
 * - a MESH_EXTERNAL ServiceEntry port that is not TLS or HTTPS (which the
 *   app encrypts itself), reached through a cluster that does not originate
 *   TLS (SIMPLE or MUTUAL), as the compiler builds it for each caller from
 *   the DestinationRule that caller uses;
 * - MeshConfig outboundTrafficPolicy ALLOW_ANY (the default), which passes
 *   traffic to any unknown host through, unchecked.
 *
 * The mesh-wide setting is checked against the mesh-wide CompliancePolicy
 * (root namespace); a ServiceEntry port against each caller's namespace.
 */
import type { AnalysisContext, Analyzer, Target } from '../analyzer.js';
import { clustersOf, listSome, proxyViews, reportAt, resourceByRef, serviceTarget } from './mesh.js';
import { decide, sectionTarget } from './policy.js';

const ENCRYPTED = new Set(['TLS', 'HTTPS']);

export const securityEgress: Analyzer = {
  name: 'compliance.security.egress',
  description: 'No plaintext leaves the mesh: MESH_EXTERNAL ServiceEntry ports are TLS, or their DestinationRule originates TLS; outboundTrafficPolicy is REGISTRY_ONLY.',
  reads: ['CompliancePolicy', 'ServiceEntry', 'DestinationRule', 'MeshConfig'],
  messages: ['PlaintextEgress', 'EgressUnrestricted'],
  run(ctx) {
    unrestricted(ctx);
    for (const s of ctx.registry.services()) {
      if (s.location !== 'MESH_EXTERNAL') continue;
      for (const sp of s.ports) {
        if (ENCRYPTED.has(sp.protocol)) continue;
        const found = new Map<string, { callers: Set<string>; source?: string; mode: string }>();
        for (const v of proxyViews(ctx)) {
          const d = decide(ctx, 'security', v.workload.namespace);
          if (!d.settings.enabled || !d.settings.requireTlsEgress) continue;
          for (const { cluster } of clustersOf(v.snapshot, s.hostname)) {
            if (cluster.port !== sp.port || cluster.tls.mode === 'SIMPLE' || cluster.tls.mode === 'MUTUAL') continue;
            const key = `${cluster.source ?? ''}|${d.by}`;
            let f = found.get(key);
            if (!f) found.set(key, (f = { callers: new Set(), mode: cluster.tls.mode, ...(cluster.source ? { source: cluster.source } : {}) }));
            f.callers.add(v.workload.namespace);
          }
        }
        for (const [key, f] of found) {
          const policy = key.slice(key.indexOf('|') + 1);
          const dr = f.source ? resourceByRef(ctx, f.source) : undefined;
          const why = f.source ? `${f.source} sets tls mode ${f.mode}` : 'no DestinationRule originates TLS for it';
          const fix = f.source
            ? `set trafficPolicy.tls.mode: SIMPLE in ${f.source} (the app then sends plaintext to its sidecar, which encrypts) or make it a TLS/HTTPS port the app encrypts`
            : `add a DestinationRule for ${s.hostname} with trafficPolicy.tls.mode: SIMPLE, or make it a TLS/HTTPS port the app encrypts`;
          const se = serviceTarget(ctx, s);
          const i = se ? ((se.resource.body as { spec?: { ports?: { number: number }[] } }).spec?.ports ?? []).findIndex((p) => p.number === sp.port) : -1;
          const at: Target | undefined = dr ? { resource: dr, field: ['spec', 'trafficPolicy', 'tls'] } : se && i >= 0 ? { resource: se.resource, field: ['spec', 'ports', i] } : se;
          reportAt(ctx, 'PlaintextEgress', {
            port: sp.port, protocol: sp.protocol, host: s.hostname, callers: `namespace${f.callers.size > 1 ? 's' : ''} ${listSome([...f.callers])}`, why, policy, fix,
          }, at);
        }
      }
    }
  },
};

function unrestricted(ctx: AnalysisContext): void {
  if (ctx.mesh.outboundTrafficPolicy !== 'ALLOW_ANY') return;
  const d = decide(ctx, 'security', ctx.mesh.rootNamespace);
  if (!d.settings.enabled || !d.settings.requireRegistryOnly) return;
  const mc = ctx.ofKind('MeshConfig')[0];
  const args = { where: mc ? '' : ' (the default: no MeshConfig sets it)', policy: d.by };
  const at = mc ? { resource: mc, field: ['spec', 'outboundTrafficPolicy', 'mode'] } : sectionTarget(d, 'security');
  if (at) ctx.report('EgressUnrestricted', args, at);
  // No resource to point at: a finding about the mesh (the text output's "(the mesh)").
  else ctx.reportMesh('EgressUnrestricted', args);
}
