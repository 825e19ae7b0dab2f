/**
 * DestinationRule TLS that does not pin the server's CA (Istio's
 * `destinationrule.CaCertificateAnalyzer`): `SIMPLE` or `MUTUAL` without
 * `caCertificates`. What the Trellis proxy then does (proxy/tls/
 * upstream-connector.ts) is what the message says: it verifies the server
 * against Node's public root CAs only, or not at all with
 * `insecureSkipVerify: true`. `credentialName` in a rule with a
 * workloadSelector passes, as in Istio (its secret may hold the CA); Trellis
 * does not read secrets yet, which the loader already reports (TRL1005).
 *
 * Istio checks the rule's top-level policy and its port-level settings;
 * Trellis checks each subset's traffic policy the same way, since the proxy
 * applies those as well.
 */
import type { ClientTLSSettings, DestinationRuleSpec, TrafficPolicy } from '../../api/kinds/destination-rule.js';
import type { Analyzer, AnalysisContext } from '../analyzer.js';
import type { ResourceOf } from '../../api/config-set.js';

type Path = readonly (string | number)[];

/** Why the server is not properly verified, or undefined when it is. */
function weakVerification(tls: ClientTLSSettings | undefined, spec: DestinationRuleSpec): string | undefined {
  if (!tls || (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL')) return undefined;
  if (tls.caCertificates) return undefined;
  if (tls.credentialName && spec.workloadSelector) return undefined;
  if (tls.insecureSkipVerify) return 'insecureSkipVerify: true turns verification off, so any certificate is accepted and the connection can be intercepted';
  if (tls.credentialName) {
    return 'credentialName counts only in a DestinationRule with a workloadSelector (and Trellis does not read Kubernetes secrets yet), so Trellis checks the server against Node\'s public root CAs only';
  }
  return 'Trellis checks the server against Node\'s public root CAs only, so a certificate that any public CA issued for the name is accepted';
}

function checkPolicy(ctx: AnalysisContext, r: ResourceOf<'DestinationRule'>, policy: TrafficPolicy | undefined, at: Path, host: string): void {
  if (!policy) return;
  const spec = r.body.spec;
  const top = weakVerification(policy.tls, spec);
  if (top) {
    ctx.report('NoServerCertificateVerificationDestinationLevel', { mode: policy.tls!.mode!, host, effect: top }, { resource: r, field: [...at, 'tls'] });
  }
  (policy.portLevelSettings ?? []).forEach((p, i) => {
    const why = weakVerification(p.tls, spec);
    if (why) {
      ctx.report('NoServerCertificateVerificationPortLevel', { mode: p.tls!.mode!, host, port: p.port.number, effect: why }, {
        resource: r, field: [...at, 'portLevelSettings', i, 'tls'],
      });
    }
  });
}

export const caCertificatesAnalyzer: Analyzer = {
  name: 'destinationrule.ca-certificates',
  description: 'DestinationRule TLS in SIMPLE or MUTUAL mode without caCertificates, so the server\'s certificate is not checked against a CA of the user\'s choosing.',
  reads: ['DestinationRule'],
  messages: ['NoServerCertificateVerificationDestinationLevel', 'NoServerCertificateVerificationPortLevel'],
  istio: ['destinationrule.CaCertificateAnalyzer'],
  run(ctx) {
    for (const r of ctx.ofKind('DestinationRule')) {
      const spec = r.body.spec;
      const host = spec.host;
      checkPolicy(ctx, r, spec.trafficPolicy, ['spec', 'trafficPolicy'], host);
      (spec.subsets ?? []).forEach((s, i) => {
        checkPolicy(ctx, r, s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy'], `${host} (subset ${s.name})`);
      });
    }
  },
};
