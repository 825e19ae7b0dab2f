/**
 * The workload's TLS material: its key and certificate chain (from the
 * agent, which gets them from the mesh CA) and the trust bundle (the roots
 * a peer's chain must lead to). Both sides of mTLS read it:
 *
 * - origination (upstream-connector.ts) takes `clientContext`, a
 *   `tls.SecureContext` built once per change, at each new connection;
 * - termination (inbound-tls.ts) rebuilds its server's context from
 *   `serverOptions` when told by `onChange`.
 *
 * A change affects new connections only: connections open stay as they are
 * (a rotation never drops one). Between proxies only TLS 1.3 is spoken.
 * Without a trust bundle nothing verifies (the public roots Node ships are
 * never used for mesh traffic), so a peer is refused rather than trusted.
 */
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { spiffeIdOf } from './identity.js';

/** What `DataPlane.setCertificate` takes. */
export interface WorkloadCertificate {
  /** PEM private key (PKCS#8 or SEC1). */
  readonly keyPem: string;
  /** PEM certificates, leaf first, then the intermediates up to (not including) the root. */
  readonly certChainPem: string;
}

/** The certificate in use, for status pages and events. */
export interface CertificateInfo {
  readonly spiffeId: string;
  /** Hex, upper case. */
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

/** Mesh-internal connections: TLS 1.3 only. */
const MESH_TLS = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export class WorkloadTls {
  #cert: WorkloadCertificate | undefined;
  #info: CertificateInfo | undefined;
  #roots: readonly string[] = [];
  #client: SecureContext | undefined;
  #generation = 0;
  readonly #listeners = new Set<() => void>();

  /**
   * Uses a new key and chain from now on. Throws an Error saying what is
   * wrong (no certificate, no SPIFFE ID, a key that does not match); the
   * previous certificate then stays in use.
   */
  setCertificate(cert: WorkloadCertificate): void {
    // The agent may hand over the same material again: nothing changes (sessions stay resumable).
    if (this.#cert && this.#cert.keyPem === cert?.keyPem && this.#cert.certChainPem === cert.certChainPem) return;
    const pems = typeof cert?.certChainPem === 'string' ? cert.certChainPem.match(PEM_CERT) ?? [] : [];
    if (pems.length === 0) throw new Error('the workload certificate chain has no PEM certificate');
    if (typeof cert.keyPem !== 'string' || !cert.keyPem.includes('PRIVATE KEY')) throw new Error('the workload key is not a PEM private key');
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(pems[0]!);
    } catch (err) {
      throw new Error(`the workload certificate cannot be read: ${(err as Error).message}`, { cause: err });
    }
    const spiffeId = spiffeIdOf(leaf.subjectAltName);
    if (!spiffeId) throw new Error(`the workload certificate (serial ${leaf.serialNumber}) has no spiffe:// URI SAN`);
    if (!leaf.checkPrivateKey(keyObject(cert.keyPem))) throw new Error(`the workload key does not match the certificate (serial ${leaf.serialNumber})`);
    const client = build(cert, this.#roots);
    this.#cert = cert;
    this.#info = Object.freeze({ spiffeId, serial: leaf.serialNumber, notBefore: leaf.validFrom, notAfter: leaf.validTo });
    this.#client = client;
    this.#changed();
  }

  /**
   * Trusts these roots (PEM, one or more certificates each) for peers from
   * now on; throws for one that is not a certificate. The same roots again
   * (every snapshot carries the bundle) change nothing.
   */
  setTrustBundle(rootsPem: readonly string[]): void {
    const roots: string[] = [];
    for (const [i, r] of rootsPem.entries()) {
      const pems = typeof r === 'string' ? r.match(PEM_CERT) ?? [] : [];
      if (pems.length === 0) throw new Error(`trust bundle entry ${i} has no PEM certificate`);
      for (const p of pems) {
        try {
          new X509Certificate(p);
        } catch (err) {
          throw new Error(`trust bundle entry ${i} cannot be read: ${(err as Error).message}`, { cause: err });
        }
        roots.push(p);
      }
    }
    if (roots.length === this.#roots.length && roots.every((r, i) => r === this.#roots[i])) return;
    const client = this.#cert ? build(this.#cert, roots) : undefined;
    this.#roots = Object.freeze(roots);
    this.#client = client;
    this.#changed();
  }

  /** Whether a workload certificate is set (mTLS can be spoken). */
  get ready(): boolean {
    return this.#client !== undefined;
  }

  /** Counts changes; a connection made under another generation used other material. */
  get generation(): number {
    return this.#generation;
  }

  /** For connections this proxy opens: key, chain, the bundle as CA, TLS 1.3. */
  get clientContext(): SecureContext | undefined {
    return this.#client;
  }

  /** For a `tls.Server` (setSecureContext): the same material; undefined without a certificate. */
  get serverOptions(): SecureContextOptions | undefined {
    const c = this.#cert;
    return c ? { key: c.keyPem, cert: c.certChainPem, ca: [...this.#roots], ...MESH_TLS } : undefined;
  }

  get certificate(): CertificateInfo | undefined {
    return this.#info;
  }

  get roots(): readonly string[] {
    return this.#roots;
  }

  /** Calls `fn` after each change; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #changed(): void {
    this.#generation++;
    for (const fn of this.#listeners) fn();
  }
}

function keyObject(pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(`the workload key cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** `ca: []` (not undefined): with no bundle nothing is trusted, never Node's public roots. */
function build(cert: WorkloadCertificate, roots: readonly string[]): SecureContext {
  try {
    return createSecureContext({ key: cert.keyPem, cert: cert.certChainPem, ca: [...roots], ...MESH_TLS });
  } catch (err) {
    throw new Error(`the workload certificate cannot be used: ${(err as Error).message}`, { cause: err });
  }
}
