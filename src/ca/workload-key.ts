/**
 * For the proxy: a fresh workload key and the CSR that asks the CA for a
 * certificate of it. The private key never leaves the workload; the CA signs
 * the public half for the identity the proxy proved.
 */
import { webcrypto } from 'node:crypto';
import { newP256KeyPair, privateKeyPem } from './certificate-maker.js';
import { loadX509 } from './load-x509.js';
import { parseSpiffeId } from './spiffe.js';

/** A new key and its CSR. */
export interface KeyAndCsr {
  /** PKCS#8 PEM of the ECDSA P-256 private key. */
  readonly keyPem: string;
  /** PEM PKCS#10 request, signed by that key, with `identity` as URI SAN. */
  readonly csrPem: string;
}

/**
 * Makes an ECDSA P-256 key and a CSR for `identity` (a SPIFFE ID). Loads
 * @peculiar/x509 on the first call only.
 */
export async function newKeyAndCsr(identity: string): Promise<KeyAndCsr> {
  const parsed = parseSpiffeId(identity);
  if (!parsed.ok) throw new TypeError(parsed.message);
  const [x509, keys] = await Promise.all([loadX509(), newP256KeyPair()]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }])],
  });
  return { keyPem: await privateKeyPem(keys.privateKey), csrPem: `${csr.toString('pem')}\n` };
}
