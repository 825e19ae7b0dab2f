/**
 * For the proxy's bootstrap, before it trusts anything: the join token
 * carries the sha256 of the CA root, and the control plane presents its
 * chain up to that root. This checks the chain a TLS peer sent against the
 * pinned hash, with Node's X509Certificate only.
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate } from 'node:tls';
import { spiffeIdOf } from './cert-info.js';
import { derToPem } from './pem.js';

/** A peer chain that ends in the pinned root: the root (PEM, to use as `ca` from now on) and the leaf's SPIFFE ID. */
export type PinnedPeer = { ok: true; rootPem: string; identity?: string } | { ok: false; message: string };

/**
 * Checks `peer` (`tlsSocket.getPeerCertificate(true)` of a connection made
 * with `rejectUnauthorized: false`): each certificate is issued and signed by
 * the next and valid at `now`, and the last is a self-signed root whose
 * sha256 is `rootFingerprint`. The server must send its chain including the
 * root. Send nothing secret on the connection unless this says ok (and the
 * identity is the control plane's).
 */
export function checkPinnedPeer(peer: DetailedPeerCertificate, rootFingerprint: string, now: number = Date.now()): PinnedPeer {
  const chain: X509Certificate[] = [];
  for (let c: DetailedPeerCertificate | undefined = peer; c?.raw && chain.length < 10; c = c.issuerCertificate) {
    chain.push(new X509Certificate(c.raw));
    if (c.issuerCertificate === c) break; // Node links a self-signed root to itself
  }
  if (chain.length === 0) return { ok: false, message: 'the server sent no certificate' };
  for (const [i, cert] of chain.entries()) {
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
      return { ok: false, message: `certificate ${i + 1} of the server's chain is valid from ${cert.validFrom} to ${cert.validTo}, not now` };
    }
    const parent = chain[i + 1] ?? cert;
    if (!cert.checkIssued(parent) || !cert.verify(parent.publicKey)) {
      return { ok: false, message: i + 1 < chain.length ? `certificate ${i + 1} of the server's chain is not signed by the next one` : 'the server\'s chain does not end in a self-signed root (it must send its root too)' };
    }
  }
  const root = chain[chain.length - 1]!;
  const got = createHash('sha256').update(root.raw).digest('hex');
  if (got !== rootFingerprint) {
    return { ok: false, message: `the server's root has sha256 ${got}, not the ${rootFingerprint} the join token pins: this is not the control plane that minted the token` };
  }
  const identity = spiffeIdOf(chain[0]!);
  return { ok: true, rootPem: derToPem(root.raw, 'CERTIFICATE'), ...(identity === undefined ? {} : { identity }) };
}
