/**
 * The control plane's identity service: the CA (kept in the state directory,
 * or plugged in from files), the one-time join tokens, the control plane's
 * own serving certificate for the gRPC server, and the Certify call that
 * signs proxies' CSRs — only for the identity the configuration gives the
 * instance the caller has proved it is (src/protocol/certify.ts).
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ServerCredentials } from '@grpc/grpc-js';
import { CertificateAuthority } from '../ca/authority.js';
import { fingerprintOfRoot, spiffeIdsOf } from '../ca/cert-info.js';
import { JoinTokenStore } from '../ca/join-token.js';
import { controlPlaneIdentity, type CertifyRequest, type CertifyResponse } from '../protocol/certify.js';

/** The join token store of a state dir. */
export const joinTokenFile = (stateDir: string) => join(stateDir, 'join-tokens.json');
/** The trust bundle a running control plane keeps in its state dir (public). */
export const trustBundleFile = (stateDir: string) => join(stateDir, 'ca', 'trust-bundle.pem');

/** A plugged-in root or intermediate (`--ca-cert --ca-key --ca-chain`). */
export interface CaFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly chainFile?: string;
}

export interface MeshIdentityOptions {
  /** Where the CA and the join tokens live; without it, an ephemeral CA in a temporary directory (tests, throw-away meshes). */
  readonly stateDir?: string;
  readonly trustDomain: string;
  readonly caFiles?: CaFiles;
  /** Workload certificate lifetime; 24 h by default. */
  readonly workloadCertTtlMs?: number;
  /** Join token lifetime; 1 h by default. */
  readonly joinTokenTtlMs?: number;
  /** Addresses the control plane's serving certificate names (IP or DNS), besides 127.0.0.1 and localhost. */
  readonly serverNames?: readonly string[];
}

/** Why a Certify call was refused: a message for the caller and the log. */
export class CertifyRefused extends Error {}

const sortedEntries = (m: Readonly<Record<string, string>>) => Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

export const DEFAULT_WORKLOAD_CERT_TTL_MS = 24 * 3600_000;
export const DEFAULT_JOIN_TOKEN_TTL_MS = 3600_000;

const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+)$/i;

export interface CaStatus {
  readonly trustDomain: string;
  /** The root lives in the state dir (it can be rotated); false for a plugged-in CA. */
  readonly managed: boolean;
  readonly roots: readonly { readonly fingerprint: string; readonly signing: boolean; readonly notAfter: string }[];
  /** More than one root is trusted: a rotation is under way. */
  readonly rotating: boolean;
  /** The last certificate issued to each instance since this control plane started. */
  readonly issued: readonly { readonly instance: string; readonly root: string; readonly serial: string; readonly notAfter: string; readonly fromSigningRoot: boolean }[];
}

export class MeshIdentity {
  #creds: ServerCredentials | undefined;
  readonly #issued = new Map<string, { root: string; serial: string; notAfter: string }>();

  private constructor(
    private readonly dir: string,
    readonly ca: CertificateAuthority,
    readonly tokens: JoinTokenStore,
    readonly ephemeral: boolean,
    readonly workloadCertTtlMs: number,
    readonly joinTokenTtlMs: number,
    private serving: { keyPem: string; certPem: string; chainPem: string },
    private readonly serverNames: readonly string[],
  ) {}

  static async create(o: MeshIdentityOptions): Promise<MeshIdentity> {
    const dir = o.stateDir ?? mkdtempSync(join(tmpdir(), 'trellis-ca-'));
    const ca = o.caFiles
      ? await CertificateAuthority.fromFiles({ ...o.caFiles, trustDomain: o.trustDomain })
      : await CertificateAuthority.loadOrCreate(dir, { trustDomain: o.trustDomain });
    const tokens = new JoinTokenStore(joinTokenFile(dir));
    // The public roots, for `trellis token create` and `trellis up` to pin in the tokens they mint.
    mkdirSync(dirname(trustBundleFile(dir)), { recursive: true, mode: 0o700 });
    writeFileSync(trustBundleFile(dir), ca.trustBundle().join('\n'), { mode: 0o644 });
    const names = ['127.0.0.1', 'localhost', ...(o.serverNames ?? [])];
    const serving = await MeshIdentity.#issueServing(ca, names);
    return new MeshIdentity(dir, ca, tokens, o.stateDir === undefined, o.workloadCertTtlMs ?? DEFAULT_WORKLOAD_CERT_TTL_MS,
      o.joinTokenTtlMs ?? DEFAULT_JOIN_TOKEN_TTL_MS, serving, names);
  }

  static async #issueServing(ca: CertificateAuthority, names: readonly string[]) {
    const issued = await ca.issueServing({
      identity: controlPlaneIdentity(ca.trustDomain),
      dnsNames: names.filter((n) => !IP.test(n)),
      ipAddresses: names.filter((n) => IP.test(n)),
      ttlMs: 30 * 24 * 3600_000,
    });
    return { keyPem: issued.keyPem, certPem: issued.certPem, chainPem: issued.chainPem };
  }

  get trustDomain(): string {
    return this.ca.trustDomain;
  }

  trustBundle(): string[] {
    return this.ca.trustBundle();
  }

  /**
   * The gRPC server's TLS: the serving certificate with the root appended (a
   * proxy bootstrapping with a join token pins the root by its hash, so it
   * must see it), client certificates requested but checked per call: the
   * stream demands one, Certify accepts a join token instead.
   */
  serverCredentials(): ServerCredentials {
    const { ca, cert, key } = this.#tlsMaterial();
    const creds = ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], false);
    this.#creds = creds;
    // grpc-js either demands a verified client certificate or asks for none; Certify needs "ask, but let a
    // token-holder in without one". The certificate a caller presents is verified per call (peerIdentities).
    const base = creds._getConstructorOptions.bind(creds);
    return Object.assign(creds, { _getConstructorOptions: () => ({ ...base(), requestCert: true, rejectUnauthorized: false }) });
  }

  /**
   * The SPIFFE IDs of a caller's TLS client certificate, once this CA is
   * shown to have issued it (the handshake does not verify it: see
   * serverCredentials); none without a certificate or with a foreign one.
   */
  peerIdentities(cert: { raw?: Buffer; subjectaltname?: string } | undefined | null): string[] {
    if (!cert?.raw || !cert.subjectaltname) return [];
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(cert.raw);
    } catch {
      return [];
    }
    return this.ca.checkIssued(leaf) === undefined ? spiffeIdsOf(leaf) : [];
  }

  /** A join token for one instance (bound to the identity and labels the configuration gives it). */
  mintJoinToken(binding: { instance: string; identity: string; labels?: Readonly<Record<string, string>>; serviceAccount?: string; locality?: string }, ttlMs = this.joinTokenTtlMs): string {
    return this.tokens.mint({ ...binding, ...(binding.labels ? { labels: { ...binding.labels } } : {}) }, { ttlMs, rootFingerprint: this.ca.rootFingerprint });
  }

  /**
   * Signs the CSR of `req.instance` for `identity` (what the configuration
   * gives the instance; undefined when it declares no such instance). The
   * caller proves the instance with the TLS client certificate it presented
   * (`peerIdentities`) or a join token.
   */
  async certify(req: CertifyRequest, identity: string | undefined, peerIdentities: readonly string[], labels?: Readonly<Record<string, string>>): Promise<CertifyResponse> {
    if (typeof req?.instance !== 'string' || typeof req.csr !== 'string') throw new CertifyRefused('the request needs an instance and a CSR');
    if (identity === undefined) throw new CertifyRefused(`the configuration declares no instance "${req.instance}"`);
    if (peerIdentities.length > 0) {
      if (!peerIdentities.includes(identity)) {
        throw new CertifyRefused(`the client certificate is for ${peerIdentities.join(', ')}, but instance "${req.instance}" is ${identity}`);
      }
    } else if (typeof req.joinToken === 'string' && req.joinToken !== '') {
      const r = this.tokens.redeem(req.joinToken, req.instance);
      if (!r.ok) throw new CertifyRefused(`join token refused (${r.reason}): ${r.message}`);
      if (r.binding.identity !== identity) {
        throw new CertifyRefused(`the join token was minted for ${r.binding.identity}, but the configuration now gives instance "${req.instance}" the identity ${identity}`);
      }
      // The token is bound to what the instance was when it was minted: labels changed since then need a new token.
      if (labels && r.binding.labels && JSON.stringify(sortedEntries(r.binding.labels)) !== JSON.stringify(sortedEntries(labels))) {
        throw new CertifyRefused(`the join token was minted for instance "${req.instance}" with labels ${JSON.stringify(r.binding.labels)}, but the configuration now gives it ${JSON.stringify(labels)}; mint a new token`);
      }
    } else {
      throw new CertifyRefused('neither a client certificate nor a join token: a proxy proves who it is with the token minted for its instance (trellis up mints them; trellis token create in hosts mode)');
    }
    let issued;
    try {
      issued = await this.ca.signCsr(req.csr, identity, { ttlMs: this.workloadCertTtlMs });
    } catch (e) {
      throw new CertifyRefused(`the CSR cannot be signed: ${(e as Error).message}`);
    }
    this.#issued.set(req.instance, { root: this.ca.rootFingerprint, serial: new X509Certificate(issued.certPem).serialNumber.toLowerCase(), notAfter: issued.notAfter.toISOString() });
    return {
      identity,
      certChain: [issued.certPem, issued.chainPem].filter((p) => p && p.trim()).join('\n'),
      trustBundle: this.ca.trustBundle(),
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
    };
  }

  #tlsMaterial() {
    const chain = [this.serving.chainPem, ...this.ca.trustBundle()].filter((p) => p && p.trim()).join('\n');
    return { ca: Buffer.from(this.ca.trustBundle().join('\n')), cert: Buffer.from(chain), key: Buffer.from(this.serving.keyPem) };
  }

  /** An ephemeral CA's directory is removed (its root dies with this control plane). */
  close(): void {
    if (this.ephemeral) rmSync(this.dir, { recursive: true, force: true });
  }

  /** After a root rotation: the serving certificate from the new root, in force for new connections of the gRPC server. */
  async #reissueServing(): Promise<void> {
    this.serving = await MeshIdentity.#issueServing(this.ca, this.serverNames);
    const { ca, cert, key } = this.#tlsMaterial();
    // grpc-js servers watch their credentials for new secure contexts (the protected updateSecureContextOptions).
    (this.#creds as unknown as { updateSecureContextOptions?(o: object): void } | undefined)?.updateSecureContextOptions?.({ ca, cert: [cert], key: [key] });
    this.#writeBundle();
  }

  #writeBundle(): void {
    mkdirSync(dirname(trustBundleFile(this.dir)), { recursive: true, mode: 0o700 });
    writeFileSync(trustBundleFile(this.dir), this.ca.trustBundle().join('\n'), { mode: 0o644 });
  }

  /** What the CA is doing: its roots, and which root each instance's last certificate came from. */
  status(): CaStatus {
    const signing = this.ca.rootFingerprint;
    return {
      trustDomain: this.trustDomain,
      managed: this.ca.managed,
      roots: this.ca.trustBundle().map((pem) => {
        const c = new X509Certificate(pem);
        const fingerprint = fingerprintOfRoot(pem);
        return { fingerprint, signing: fingerprint === signing, notAfter: new Date(c.validTo).toISOString() };
      }),
      rotating: this.ca.trustBundle().length > 1,
      issued: [...this.#issued].map(([instance, i]) => ({ instance, ...i, fromSigningRoot: i.root === signing })).sort((a, b) => (a.instance < b.instance ? -1 : 1)),
    };
  }

  /**
   * Starts a root rotation: a new root signs from now on; old and new are
   * both trusted (the bundle the snapshots carry has both), so nothing
   * breaks while proxies renew onto the new root at their half life.
   */
  async rotateRoot(): Promise<CaStatus> {
    await this.ca.rotateRoot();
    await this.#reissueServing();
    return this.status();
  }

  /**
   * Ends a rotation: the old roots are no longer trusted. Refused while one of
   * `connected` still holds a certificate from an old root (it would be cut
   * off), unless forced.
   */
  async finishRotation(connected: readonly string[], force = false): Promise<{ ok: true; status: CaStatus } | { ok: false; pending: string[] }> {
    const signing = this.ca.rootFingerprint;
    const pending = connected.filter((i) => this.#issued.get(i)?.root !== signing);
    if (pending.length && !force) return { ok: false, pending };
    await this.ca.dropPreviousRoots();
    await this.#reissueServing();
    return { ok: true, status: this.status() };
  }
}

