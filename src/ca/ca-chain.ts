/**
 * Checks on the certificates a CA signs with, using Node's own X509Certificate:
 * that a certificate is a CA, that its key is the one beside it, that it is
 * within its validity, and that a plugged-in chain leads to a self-signed root.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { CA_ERRORS, CaError } from './errors.js';
import { splitPem } from './pem.js';

/** A parsed certificate and the file it came from (for messages). */
export interface SourcedCert {
  readonly pem: string;
  readonly cert: X509Certificate;
  readonly file: string;
}

/** The certificates of a PEM file, parsed; an error names the file when there are none or one is broken. */
export function readCertificates(text: string, file: string): SourcedCert[] {
  const pems = splitPem(text);
  if (pems.length === 0) throw new CaError(CA_ERRORS.BAD_FILE, `${file} holds no PEM certificate`);
  return pems.map((pem, i) => {
    try {
      return { pem, cert: new X509Certificate(pem), file };
    } catch (e) {
      throw new CaError(CA_ERRORS.BAD_FILE, `certificate ${i + 1} of ${file} cannot be parsed: ${(e as Error).message}`, { cause: e });
    }
  });
}

/** A one-line name for a certificate in messages: its subject on one line. */
export function describe(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ') || `serial ${cert.serialNumber}`;
}

/** True when the certificate is issued by itself and its signature verifies with its own key. */
export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/** Refuses a certificate that is not a CA, or that is outside its validity at `now`. */
export function assertUsableCa(c: SourcedCert, now: number): void {
  if (!c.cert.ca) {
    throw new CaError(CA_ERRORS.NOT_A_CA, `${describe(c.cert)} in ${c.file} is not a CA certificate (basicConstraints CA:TRUE is missing)`);
  }
  const from = Date.parse(c.cert.validFrom);
  const to = Date.parse(c.cert.validTo);
  if (now < from || now > to) {
    throw new CaError(CA_ERRORS.CA_EXPIRED, `${describe(c.cert)} in ${c.file} is valid from ${new Date(from).toISOString()} to ${new Date(to).toISOString()}, not now (${new Date(now).toISOString()})`);
  }
}

/** Refuses a key that is not the private half of the certificate's public key. */
export function assertKeyMatches(c: SourcedCert, key: KeyObject, keyFile: string): void {
  if (!c.cert.checkPrivateKey(key)) {
    throw new CaError(CA_ERRORS.KEY_MISMATCH, `the key ${keyFile} does not belong to the certificate ${describe(c.cert)} in ${c.file}`);
  }
}

/**
 * Orders and checks a plugged-in chain: each certificate is issued and signed
 * by the next, every one is a usable CA, and the last is a self-signed root.
 * `signing` is the CA certificate; `chain` the rest (a copy of `signing` at
 * its head, as Istio's cert-chain.pem has, is skipped). Returns the
 * certificates a leaf's chain carries after the leaf (`signing` first, unless
 * it is the root itself), and the root.
 */
export function checkChain(signing: SourcedCert, chain: readonly SourcedCert[], now: number): { intermediates: SourcedCert[]; root: SourcedCert } {
  const rest = chain.filter((c) => !c.cert.raw.equals(signing.cert.raw));
  const path = [signing, ...rest];
  for (const c of path) assertUsableCa(c, now);
  for (let i = 0; i + 1 < path.length; i++) {
    const child = path[i]!;
    const parent = path[i + 1]!;
    if (!child.cert.checkIssued(parent.cert) || !child.cert.verify(parent.cert.publicKey)) {
      throw new CaError(CA_ERRORS.BAD_CHAIN, `${describe(child.cert)} (${child.file}) is not signed by the next certificate of the chain, ${describe(parent.cert)} (${parent.file}); list the chain from the CA certificate up to the root`);
    }
  }
  const root = path[path.length - 1]!;
  if (!isSelfSigned(root.cert)) {
    const hint = rest.length === 0 ? 'this CA certificate is an intermediate: give its chain up to the root (--ca-chain)' : 'add the root certificate at the end of the chain file';
    throw new CaError(CA_ERRORS.BAD_CHAIN, `the chain ends with ${describe(root.cert)} (${root.file}), which is not a self-signed root; ${hint}`);
  }
  return { intermediates: path.slice(0, -1), root };
}
