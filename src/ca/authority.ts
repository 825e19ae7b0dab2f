/**
 * The control plane's certificate authority. It signs workload certificates
 * for identities the caller has already proved (a join token, later a
 * Kubernetes ServiceAccount token): whatever names a CSR asks for, the
 * certificate carries only that identity. Its root is either made and kept in
 * the state directory (and can be rotated), or plugged in from files.
 */
import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { assertKeyMatches, assertUsableCa, checkChain, describe, readCertificates, type SourcedCert } from './ca-chain.js';
import { makeLeaf, makeRoot, newP256KeyPair, privateKeyPem, type Issuer, type LeafSpec } from './certificate-maker.js';
import { CA_ERRORS, CaError } from './errors.js';
import { readPrivateKeyFile, readTextFile, toSigningKey } from './key-files.js';
import { loadX509 } from './load-x509.js';
import { readStoredRoot, rootFiles, writePreviousRoots, writeRoot, type RootFiles } from './root-store.js';
import { parseSpiffeId, trustDomainProblem } from './spiffe.js';
import type { X509 } from './x509.js';

/** A certificate the CA issued. */
export interface IssuedCertificate {
  readonly certPem: string;
  /** The leaf first, then the intermediates up to (not including) the root: what a TLS peer presents. */
  readonly chainPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The SPIFFE ID the certificate carries as its only URI SAN. */
  readonly identity: string;
}

/** A certificate with the private key the CA made for it (the control plane's own serving certificate). */
export interface ServingCertificate extends IssuedCertificate {
  readonly keyPem: string;
}

/** The default lifetime of a workload certificate: 24 h. */
export const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;
/** The shortest lifetime the CA issues: 1 s (for tests of rotation). */
export const MIN_TTL_MS = 1000;
/** How far back a certificate's notBefore goes, for peers whose clocks are behind. */
export const CLOCK_SKEW_MS = 60 * 1000;
const ROOT_VALIDITY_MS = 10 * 365 * 24 * 60 * 60 * 1000;
/** A host name, or a wildcard `*.` before one. */
const DNS_NAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

interface SigningState {
  readonly issuer: Issuer;
  /** PEM certificates after the leaf in an issued chain (empty when a root signs). */
  readonly intermediates: readonly string[];
  readonly rootPem: string;
  readonly rootFingerprint: string;
  /** No certificate is issued past this instant: the earliest notAfter of the signing path. */
  readonly notAfterLimit: number;
}

interface Setup {
  readonly trustDomain: string;
  readonly now: () => number;
  readonly managed?: RootFiles;
}

/** sha256 of a certificate's DER, lowercase hex. */
function fingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/**
 * The CA: `loadOrCreate` (managed root in the state directory) or `fromFiles`
 * (plugged in); `signCsr` for workloads, `issueServing` for the control plane,
 * `trustBundle()` and `rootFingerprint` for everyone who must trust it.
 */
export class CertificateAuthority {
  /** The trust domain of every identity this CA signs. */
  readonly trustDomain: string;
  readonly #x509: X509;
  readonly #now: () => number;
  readonly #managed: RootFiles | undefined;
  #signing: SigningState;
  #previousRoots: readonly string[];

  private constructor(x509: X509, setup: Setup, signing: SigningState, previousRoots: readonly string[]) {
    this.#x509 = x509;
    this.trustDomain = setup.trustDomain;
    this.#now = setup.now;
    this.#managed = setup.managed;
    this.#signing = signing;
    this.#previousRoots = previousRoots;
  }

  /**
   * The CA of a state directory: loads `<stateDir>/ca/root-{cert,key}.pem`, or
   * on first start makes an ECDSA P-256 root valid 10 years and saves it (key
   * 0600, directory 0700). A key file open to other users is refused.
   */
  static async loadOrCreate(stateDir: string, opts: { trustDomain: string; now?: () => number }): Promise<CertificateAuthority> {
    checkTrustDomain(opts.trustDomain);
    const x509 = await loadX509();
    const now = opts.now ?? Date.now;
    const files = rootFiles(stateDir);
    const stored = await readStoredRoot(files);
    if (stored) {
      const [root] = readCertificates(stored.certPem, files.cert);
      const signing = await signingState(x509, root!, [], root!, stored.key, files.key, now());
      return new CertificateAuthority(x509, { trustDomain: opts.trustDomain, now, managed: files }, signing, stored.previousRoots);
    }
    const made = await newRoot(x509, opts.trustDomain, now());
    await writeRoot(files, { certPem: made.certPem, keyPem: made.keyPem, previousRoots: [] });
    return new CertificateAuthority(x509, { trustDomain: opts.trustDomain, now, managed: files }, made.signing, []);
  }

  /**
   * A plugged-in root or intermediate (`--ca-cert --ca-key --ca-chain`). The
   * chain file lists the intermediates above the CA certificate up to the
   * root; the root (the chain's last certificate, or the CA certificate when
   * it is self-signed) becomes the trust bundle. Checks that the key belongs
   * to the certificate, that every certificate is a CA in its validity and that
   * the chain links up; errors name the file.
   */
  static async fromFiles(opts: { certFile: string; keyFile: string; chainFile?: string; trustDomain: string; now?: () => number }): Promise<CertificateAuthority> {
    checkTrustDomain(opts.trustDomain);
    const x509 = await loadX509();
    const now = opts.now ?? Date.now;
    const [signingCert, ...extra] = readCertificates(await readTextFile(opts.certFile, 'CA certificate'), opts.certFile);
    const chain = opts.chainFile ? readCertificates(await readTextFile(opts.chainFile, 'CA chain'), opts.chainFile) : [];
    const key = await readPrivateKeyFile(opts.keyFile);
    const { intermediates, root } = checkChain(signingCert!, [...extra, ...chain], now());
    const signing = await signingState(x509, signingCert!, intermediates, root, key, opts.keyFile, now(), [...intermediates, root]);
    return new CertificateAuthority(x509, { trustDomain: opts.trustDomain, now }, signing, []);
  }

  /** The PEM roots every workload must trust: the signing root first, then roots kept from a rotation. */
  trustBundle(): string[] {
    return [this.#signing.rootPem, ...this.#previousRoots];
  }

  /**
   * Whether `leaf` is a certificate this CA issued and still valid: signed by
   * the signing certificate (or a root kept from a rotation), within its
   * dates. For a TLS peer that was not verified by the handshake itself (the
   * control plane's gRPC port accepts callers without a certificate, for
   * join tokens). Returns why not, or undefined.
   */
  checkIssued(leaf: X509Certificate): string | undefined {
    const now = this.#now();
    if (now < Date.parse(leaf.validFrom) || now > Date.parse(leaf.validTo)) return `the certificate is valid from ${leaf.validFrom} to ${leaf.validTo}, not now`;
    const signers = [new X509Certificate(Buffer.from(this.#signing.issuer.cert.rawData)), ...this.#previousRoots.map((p) => new X509Certificate(p))];
    if (signers.some((s) => leaf.checkIssued(s) && leaf.verify(s.publicKey))) return undefined;
    return 'the certificate was not issued by this mesh\'s CA';
  }

  /** sha256 of the signing root's DER, lowercase hex: the hash a join token carries. */
  get rootFingerprint(): string {
    return this.#signing.rootFingerprint;
  }

  /** True when the root lives in the state directory (and can be rotated); false for a plugged-in CA. */
  get managed(): boolean {
    return this.#managed !== undefined;
  }

  /**
   * Signs a workload CSR for `identity`, which the caller has proved. The CSR
   * must carry a valid self-signature and an EC P-256 key; the names it asks
   * for are ignored. Valid from now - 60 s to now + `ttlMs` (default 24 h,
   * at least 1 s, never past the CA's own expiry).
   */
  async signCsr(csrPem: string, identity: string, opts: { ttlMs?: number } = {}): Promise<IssuedCertificate> {
    this.#checkIdentity(identity);
    const ttlMs = checkTtl(opts.ttlMs);
    const x509 = this.#x509;
    let csr: InstanceType<X509['Pkcs10CertificateRequest']>;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (e) {
      throw new CaError(CA_ERRORS.BAD_CSR, `the CSR for ${identity} is not a PEM PKCS#10 request: ${(e as Error).message}`, { cause: e });
    }
    const verified = await csr.verify().catch(() => false);
    if (!verified) throw new CaError(CA_ERRORS.BAD_CSR, `the CSR for ${identity} is refused: its signature does not verify with its own key (a damaged or altered request)`);
    assertP256(createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' }), `the CSR for ${identity}`);
    return this.#issue({ publicKey: csr.publicKey, identity }, ttlMs);
  }

  /**
   * A key and certificate for the control plane's own TLS server: the SPIFFE
   * ID as URI SAN plus the given DNS names and IP addresses. The CA makes the
   * key here (EC P-256) and returns it with the certificate.
   */
  async issueServing(opts: { identity: string; dnsNames?: readonly string[]; ipAddresses?: readonly string[]; ttlMs?: number }): Promise<ServingCertificate> {
    this.#checkIdentity(opts.identity);
    const ttlMs = checkTtl(opts.ttlMs);
    const dnsNames = opts.dnsNames ?? [];
    const ipAddresses = opts.ipAddresses ?? [];
    for (const dns of dnsNames) if (!DNS_NAME.test(dns)) throw new CaError(CA_ERRORS.BAD_NAME, `${JSON.stringify(dns)} is not a DNS name`);
    for (const ip of ipAddresses) if (isIP(ip) === 0) throw new CaError(CA_ERRORS.BAD_NAME, `${JSON.stringify(ip)} is not an IP address`);
    const keys = await newP256KeyPair();
    const issued = await this.#issue({ publicKey: keys.publicKey, identity: opts.identity, dnsNames, ipAddresses }, ttlMs);
    return { ...issued, keyPem: await privateKeyPem(keys.privateKey) };
  }

  /**
   * Root rotation, step 1: makes a new root and signs with it from now on; the
   * old root stays in the trust bundle (saved in `ca/previous-roots.pem`) so
   * certificates it issued keep verifying. Only for a root in the state directory.
   */
  async rotateRoot(): Promise<void> {
    const files = this.#requireManaged('rotate the root');
    const made = await newRoot(this.#x509, this.trustDomain, this.#now());
    const previousRoots = [this.#signing.rootPem, ...this.#previousRoots];
    await writeRoot(files, { certPem: made.certPem, keyPem: made.keyPem, previousRoots });
    this.#signing = made.signing;
    this.#previousRoots = previousRoots;
  }

  /** Root rotation, step 2 (once every workload has a certificate of the new root): the old roots leave the bundle. */
  async dropPreviousRoots(): Promise<void> {
    const files = this.#requireManaged('drop previous roots');
    await writePreviousRoots(files, []);
    this.#previousRoots = [];
  }

  async #issue(spec: Omit<LeafSpec, 'notBefore' | 'notAfter'>, ttlMs: number): Promise<IssuedCertificate> {
    const signing = this.#signing; // a rotation during this call does not mix two roots
    const now = this.#now();
    const cert = await makeLeaf(this.#x509, signing.issuer, {
      ...spec,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(Math.min(now + ttlMs, signing.notAfterLimit)),
    });
    const certPem = `${cert.toString('pem')}\n`;
    return { certPem, chainPem: [certPem, ...signing.intermediates].join(''), notBefore: cert.notBefore, notAfter: cert.notAfter, identity: spec.identity };
  }

  #checkIdentity(identity: string): void {
    const parsed = parseSpiffeId(identity);
    if (!parsed.ok) throw new CaError(CA_ERRORS.BAD_IDENTITY, parsed.message);
    if (parsed.id.trustDomain !== this.trustDomain) {
      throw new CaError(CA_ERRORS.BAD_IDENTITY, `${identity} is in trust domain ${parsed.id.trustDomain}; this CA signs only identities of ${this.trustDomain}`);
    }
    if (parsed.id.path === '') throw new CaError(CA_ERRORS.BAD_IDENTITY, `${identity} names the trust domain itself, not a workload`);
  }

  #requireManaged(what: string): RootFiles {
    if (!this.#managed) throw new CaError(CA_ERRORS.NOT_MANAGED, `cannot ${what}: the CA is plugged in from files; replace those files to change it`);
    return this.#managed;
  }
}

function checkTrustDomain(trustDomain: string): void {
  const problem = trustDomainProblem(trustDomain);
  if (problem) throw new CaError(CA_ERRORS.BAD_IDENTITY, problem);
}

function checkTtl(ttlMs: number | undefined): number {
  if (ttlMs === undefined) return DEFAULT_TTL_MS;
  if (!Number.isFinite(ttlMs) || ttlMs < MIN_TTL_MS) {
    throw new CaError(CA_ERRORS.BAD_TTL, `a certificate lifetime of ${ttlMs} ms is refused: it must be at least ${MIN_TTL_MS} ms`);
  }
  return ttlMs;
}

function assertP256(key: KeyObject, what: string): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return;
  const has = key.asymmetricKeyType === 'ec' ? `an EC key on curve ${curve}`
    : key.asymmetricKeyType === 'rsa' ? `an RSA ${key.asymmetricKeyDetails?.modulusLength}-bit key`
    : `a ${key.asymmetricKeyType} key`;
  throw new CaError(CA_ERRORS.UNSUPPORTED_KEY, `${what} is refused: it has ${has}; workload keys must be ECDSA P-256`);
}

async function newRoot(x509: X509, trustDomain: string, now: number): Promise<{ certPem: string; keyPem: string; signing: SigningState }> {
  const made = await makeRoot(x509, {
    subject: `O=Trellis, CN=Trellis root CA ${trustDomain}`,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + ROOT_VALIDITY_MS),
  });
  const certPem = `${made.cert.toString('pem')}\n`;
  const signing: SigningState = {
    issuer: { cert: made.cert, signing: made.signing },
    intermediates: [],
    rootPem: certPem,
    rootFingerprint: fingerprint(certPem),
    notAfterLimit: made.cert.notAfter.getTime(),
  };
  return { certPem, keyPem: made.keyPem, signing };
}

/** Checks a loaded CA certificate (a CA, in its validity, allowed to sign certificates) and prepares it for signing. */
async function signingState(
  x509: X509, cert: SourcedCert, intermediates: readonly SourcedCert[], root: SourcedCert,
  key: KeyObject, keyFile: string, now: number, path: readonly SourcedCert[] = [cert],
): Promise<SigningState> {
  assertUsableCa(cert, now);
  assertKeyMatches(cert, key, keyFile);
  const parsed = new x509.X509Certificate(cert.pem);
  const usage = parsed.getExtension(x509.KeyUsagesExtension);
  if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new CaError(CA_ERRORS.NOT_A_CA, `${describe(cert.cert)} in ${cert.file} may not sign certificates (its keyUsage lacks keyCertSign)`);
  }
  return {
    issuer: { cert: parsed, signing: await toSigningKey(key, keyFile) },
    intermediates: intermediates.map((c) => c.pem),
    rootPem: root.pem,
    rootFingerprint: fingerprint(root.pem),
    notAfterLimit: Math.min(...path.map((c) => Date.parse(c.cert.validTo))),
  };
}
