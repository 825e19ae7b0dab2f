/**
 * `gateway.duplicate-certificates` (Istio's CertificateAnalyzer): two
 * Gateways on the same workloads that present the same certificate. An
 * HTTP/2 client reuses one connection for every host the certificate
 * covers, so requests for the second Gateway's hosts can land on the first
 * one's server and get 404.
 *
 * As Istio: Gateway A is checked against every other Gateway B whose
 * selector contains all of A's labels (B's workloads are then A's too); the
 * same certificate is the same `credentialName` (or one of
 * `credentialNames`), or the same `serverCertificate` and `privateKey` pair
 * (also inside `tlsCertificates`). A Gateway without a selector configures no
 * workload in Trellis and is not compared.
 */
import type { Server } from '../../api/kinds/gateway.js';
import type { Analyzer } from '../analyzer.js';
import { gatewaySelector, nsName } from './gw-common.js';

type Path = readonly (string | number)[];

/** Each certificate a server presents, as a comparable key with the field that names it. */
function certificates(server: Server): { key: string; field: Path }[] {
  const t = server.tls;
  if (!t || t.mode === 'ISTIO_MUTUAL') return [];
  const out: { key: string; field: Path }[] = [];
  if (t.credentialName) out.push({ key: `credential ${t.credentialName}`, field: ['tls', 'credentialName'] });
  t.credentialNames?.forEach((c, j) => out.push({ key: `credential ${c}`, field: ['tls', 'credentialNames', j] }));
  if (t.serverCertificate && t.privateKey) out.push({ key: `files ${t.serverCertificate} ${t.privateKey}`, field: ['tls', 'serverCertificate'] });
  t.tlsCertificates?.forEach((c, j) => {
    if (c.serverCertificate && c.privateKey) out.push({ key: `files ${c.serverCertificate} ${c.privateKey}`, field: ['tls', 'tlsCertificates', j, 'serverCertificate'] });
  });
  return out;
}

/** Whether every label of `inner` is in `outer` with the same value. */
function subsetOf(inner: Readonly<Record<string, string>>, outer: Readonly<Record<string, string>>): boolean {
  return Object.entries(inner).every(([k, v]) => outer[k] === v);
}

export const gatewayCertificatesAnalyzer: Analyzer = {
  name: 'gateway.duplicate-certificates',
  description: 'No two Gateways on the same workloads present the same certificate.',
  reads: ['Gateway'],
  messages: ['GatewayDuplicateCertificate'],
  istio: ['gateway.CertificateAnalyzer'],
  run(ctx) {
    const gateways = ctx.ofKind('Gateway');
    for (const a of gateways) {
      const selA = gatewaySelector(a);
      if (!selA) continue;
      const wider = gateways.filter((b) => {
        const selB = gatewaySelector(b);
        return b !== a && selB !== undefined && subsetOf(selA, selB);
      });
      const theirs = wider.map((b) => ({ b, keys: new Set(b.body.spec.servers.flatMap((s) => certificates(s).map((c) => c.key))) }));
      a.body.spec.servers.forEach((server, i) => {
        const mine = certificates(server);
        const hit = mine.find((c) => theirs.some((t) => t.keys.has(c.key)));
        if (!hit) return;
        const others = theirs.filter((t) => mine.some((c) => t.keys.has(c.key))).map((t) => `Gateway ${nsName(t.b)}`);
        ctx.report('GatewayDuplicateCertificate', { others: others.join(', ') }, { resource: a, field: ['spec', 'servers', i, ...hit.field] });
      });
    }
  },
};
