/**
 * Reading certificates with Node's own `X509Certificate` (no @peculiar/x509,
 * so the proxy stays light): the SPIFFE IDs a certificate or a TLS peer
 * carries, a summary for admin pages, and root fingerprints.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { isSpiffeId } from './spiffe.js';

/** What admin and status pages show about a certificate. */
export interface CertificateSummary {
  /** The SPIFFE ID, when the certificate carries exactly one. */
  readonly identity?: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Serial number, uppercase hex as OpenSSL prints it. */
  readonly serial: string;
  /** The issuer's distinguished name on one line (`O=Trellis, CN=…`). */
  readonly issuer: string;
  /** sha256 of the DER, lowercase hex. */
  readonly fingerprint256: string;
}

/**
 * The entries of Node's `subjectaltname` string (`DNS:a, URI:spiffe://…`).
 * Node writes a value that holds a comma, a quote or other special characters
 * as a JSON string (`URI:"spiffe://a\u002cb"`), so a value can never be
 * split in two or smuggle in a second entry.
 */
export function parseSubjectAltNames(text: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) break;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      end += 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        break; // not Node's format; stop rather than guess
      }
    } else {
      end = text.indexOf(', ', colon + 1);
      if (end === -1) end = text.length;
      value = text.slice(colon + 1, end);
    }
    out.push({ type, value });
    if (end < text.length && !text.startsWith(', ', end)) break;
    i = end + 2;
  }
  return out;
}

/**
 * The valid SPIFFE IDs among the URI SANs of a certificate, or of a TLS
 * peer (`tlsSocket.getPeerCertificate()`). An X.509 SVID carries exactly one;
 * see `spiffeIdOf`.
 */
export function spiffeIdsOf(cert: X509Certificate | { subjectaltname?: string }): string[] {
  const text = cert instanceof X509Certificate ? cert.subjectAltName : cert.subjectaltname;
  if (!text) return [];
  return parseSubjectAltNames(text).filter((n) => n.type === 'URI' && isSpiffeId(n.value)).map((n) => n.value);
}

/** The one SPIFFE ID of a certificate; undefined when it has none or several (such a certificate names no one). */
export function spiffeIdOf(cert: X509Certificate | { subjectaltname?: string }): string | undefined {
  const ids = spiffeIdsOf(cert);
  return ids.length === 1 ? ids[0] : undefined;
}

/** A summary of the first certificate of `pem` (a chain's leaf). */
export function certificateSummary(pem: string): CertificateSummary {
  const cert = new X509Certificate(pem);
  const identity = spiffeIdOf(cert);
  return {
    ...(identity === undefined ? {} : { identity }),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber,
    issuer: cert.issuer.split('\n').join(', '),
    fingerprint256: fingerprintOf(cert),
  };
}

/** sha256 of the DER of the first certificate of `pem`, lowercase hex: the root hash a join token carries. */
export function fingerprintOfRoot(pem: string): string {
  return fingerprintOf(new X509Certificate(pem));
}

function fingerprintOf(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}
