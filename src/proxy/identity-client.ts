/**
 * The proxy's workload identity: it makes its own key, has the control
 * plane's CA sign a CSR (src/protocol/certify.ts), hands key and chain to the
 * data plane, and renews at half life. The key never leaves the process (or
 * the `identityDir`, when one is given, so a restarted proxy proves itself
 * with the certificate it still holds instead of a new join token).
 *
 * Bootstrap with a join token: the token carries the SHA-256 of the CA root.
 * Before anything is sent, a TLS connection to the control plane fetches the
 * chain it presents; the certificate with that hash becomes the only trust
 * anchor, and the Certify call runs over TLS verified against it. Never
 * plaintext, never trust on first use.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { Client, credentials, Metadata, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { spiffeIdsOf } from '../ca/cert-info.js';
import { parseJoinToken } from '../ca/join-token.js';
import { checkPinnedPeer } from '../ca/pinned-root.js';
import type { CertifyRequest, CertifyResponse } from '../protocol/certify.js';
import { meshService, STREAM_CHANNEL_OPTIONS } from '../protocol/stream.js';

export interface WorkloadCertificate {
  readonly identity: string;
  readonly keyPem: string;
  /** Leaf first. */
  readonly certChainPem: string;
  readonly trustBundle: readonly string[];
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface IdentityClientOptions {
  /** `host:port` of the control plane. */
  readonly controlPlane: string;
  readonly instance: string;
  readonly joinToken?: string;
  /** Where key, chain and bundle are kept (0600) across restarts; none by default. */
  readonly identityDir?: string;
  /** A new certificate (first, and every renewal). */
  readonly onCertificate: (c: WorkloadCertificate) => void;
  readonly log?: (text: string) => void;
  /** When a renewal failed: the next attempt is this much later (doubling, up to a tenth of the lifetime); 1 s first. */
  readonly retryMs?: number;
  readonly now?: () => number;
}

/** Why no certificate could be had: `fatal` when retrying cannot help (token refused, no token). */
export class IdentityError extends Error {
  constructor(message: string, readonly fatal: boolean) {
    super(message);
  }
}

/** What a first CSR asks for (the proxy does not know its identity yet; the CA ignores the CSR's names). */
const BOOTSTRAP_NAME = 'spiffe://bootstrap.invalid/ns/unknown/sa/unknown';
const CP_IDENTITY = /^spiffe:\/\/[^/]+\/ns\/trellis-system\/sa\/control-plane$/;

export class IdentityClient {
  #cert: WorkloadCertificate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** While a renewal that failed waits for its retry: runs it at once (a new trust bundle may be what it lacked). */
  #retryNow: (() => void) | undefined;
  /**
   * The key and CSR of the renewal under way, kept across its retries: making
   * them is a child process (csr-main.ts), a second or more on a busy machine,
   * which a short-lived certificate may not have to spare.
   */
  #csr: { readonly name: string; readonly keyPem: string; readonly csrPem: string } | undefined;
  readonly #now: () => number;

  constructor(readonly opts: IdentityClientOptions) {
    this.#now = opts.now ?? Date.now;
  }

  get certificate(): WorkloadCertificate | undefined {
    return this.#cert;
  }

  /** Gets the first certificate (from the identity dir while valid, else with the join token); renewals follow by themselves. */
  async start(): Promise<WorkloadCertificate> {
    const kept = this.#load();
    if (kept) {
      try {
        return this.#install(await this.#certify(kept));
      } catch (e) {
        if (!this.opts.joinToken) throw e;
        this.#log(`renewal with the kept certificate failed (${(e as Error).message}); using the join token`);
      }
    }
    if (!this.opts.joinToken) {
      throw new IdentityError(`no join token, and no valid certificate${this.opts.identityDir ? ` in ${this.opts.identityDir}` : ''}: start the proxy with --join-token (trellis token create ${this.opts.instance})`, true);
    }
    return this.#install(await this.#bootstrap(this.opts.joinToken));
  }

  /** Credentials for the control-plane stream: mTLS with the current certificate, the server checked to be the control plane. */
  channelCredentials(): ChannelCredentials {
    const c = this.#cert;
    if (!c) throw new Error('no certificate yet');
    return mtlsCredentials(c.trustBundle, c);
  }

  /**
   * A new bundle from a snapshot (root rotation): kept for the next
   * connection and the next renewal. A renewal that failed is tried again at
   * once: after a rotation the control plane serves from the new root, and a
   * renewal that started before this bundle arrived could not verify it.
   */
  setTrustBundle(bundle: readonly string[]): void {
    const c = this.#cert;
    if (!c || sameList(c.trustBundle, bundle)) return;
    this.#cert = { ...c, trustBundle: [...bundle] };
    this.#save(this.#cert);
    this.#retryNow?.();
  }

  close(): void {
    this.#closed = true;
    this.#retryNow = undefined;
    if (this.#timer) clearTimeout(this.#timer);
  }

  async #bootstrap(token: string): Promise<WorkloadCertificate> {
    const parsed = parseJoinToken(token);
    if (!parsed.ok) throw new IdentityError(`the join token is malformed: ${parsed.message}`, true);
    if (parsed.instance !== this.opts.instance) {
      throw new IdentityError(`the join token is for instance "${parsed.instance}", not "${this.opts.instance}"`, true);
    }
    const root = await pinnedRoot(this.opts.controlPlane, parsed.rootFingerprint);
    return this.#call([root], undefined, token);
  }

  async #certify(current: WorkloadCertificate): Promise<WorkloadCertificate> {
    return this.#call(current.trustBundle, current);
  }

  async #call(roots: readonly string[], auth: WorkloadCertificate | undefined, joinToken?: string): Promise<WorkloadCertificate> {
    const identity = auth?.identity ?? `instance ${this.opts.instance}`;
    // The CA puts the identity the configuration gives the instance, whatever the CSR asks for.
    const name = auth?.identity ?? BOOTSTRAP_NAME;
    const { keyPem, csrPem } = this.#csr?.name === name ? this.#csr : (this.#csr = { name, ...(await keyAndCsr(name)) });
    const client = new Client(this.opts.controlPlane, mtlsCredentials(roots, auth), { ...STREAM_CHANNEL_OPTIONS });
    const req: CertifyRequest = { instance: this.opts.instance, csr: csrPem, ...(joinToken ? { joinToken } : {}) };
    try {
      const res = await new Promise<CertifyResponse>((resolve, reject) => {
        client.makeUnaryRequest(meshService.certify.path, meshService.certify.requestSerialize, meshService.certify.responseDeserialize, req,
          new Metadata(), { deadline: Date.now() + 10_000 }, (err: ServiceError | null, r?: CertifyResponse) => (err || !r ? reject(err) : resolve(r)));
      });
      return {
        identity: res.identity, keyPem, certChainPem: res.certChain, trustBundle: [...res.trustBundle],
        notBefore: Date.parse(res.notBefore), notAfter: Date.parse(res.notAfter),
      };
    } catch (e) {
      const err = e as ServiceError;
      // PERMISSION_DENIED (7): the CA said no; retrying the same proof cannot help.
      throw new IdentityError(`the control plane refused a certificate for ${identity}: ${err.details || err.message}`, err.code === 7);
    } finally {
      client.close();
    }
  }

  #install(c: WorkloadCertificate): WorkloadCertificate {
    this.#cert = c;
    this.#csr = undefined;
    this.#save(c);
    this.opts.onCertificate(c);
    this.#log(`certificate ${c.identity} valid until ${new Date(c.notAfter).toISOString()}`);
    this.#schedule(c, (c.notAfter - c.notBefore) / 2);
    return c;
  }

  /** Renewal at half life (from now, the first time: what is left of it); after a failure, `failedMs` from now. */
  #schedule(c: WorkloadCertificate, halfLifeMs: number, failedMs = 0): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#retryNow = undefined;
    const at = failedMs > 0 ? failedMs : Math.max(0, c.notBefore + halfLifeMs - this.#now());
    const renew = () => {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#retryNow = undefined;
      const tried = this.#cert ?? c;
      void this.#certify(tried).then((n) => { if (!this.#closed) this.#install(n); }, (e: Error) => {
        // A new bundle that arrived while this attempt was under way is tried at once.
        const bundleChanged = (this.#cert ?? c).trustBundle !== tried.trustBundle;
        const next = bundleChanged ? 1 : Math.min(Math.max(1000, (this.opts.retryMs ?? 1000), failedMs * 2), Math.max(1000, halfLifeMs / 5));
        const when = bundleChanged ? 'now, with the trust bundle that arrived meanwhile' : `in ${Math.round(next)} ms`;
        this.#log(`certificate renewal failed: ${e.message}; trying again ${when} (the current one is valid until ${new Date(c.notAfter).toISOString()})`);
        this.#schedule(c, halfLifeMs, next);
      });
    };
    this.#timer = setTimeout(renew, Math.min(at, 2 ** 31 - 1));
    this.#timer.unref();
    if (failedMs > 0) this.#retryNow = renew;
  }

  #load(): WorkloadCertificate | undefined {
    const dir = this.opts.identityDir;
    if (!dir) return undefined;
    try {
      const c = JSON.parse(readFileSync(join(dir, 'identity.json'), 'utf8')) as WorkloadCertificate;
      const leaf = new X509Certificate(c.certChainPem);
      if (Date.parse(leaf.validTo) <= this.#now() + 5000) return undefined;
      return c;
    } catch {
      return undefined;
    }
  }

  #save(c: WorkloadCertificate): void {
    const dir = this.opts.identityDir;
    if (!dir) return;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = join(dir, `.identity.${process.pid}.json`);
      writeFileSync(tmp, JSON.stringify(c), { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, join(dir, 'identity.json'));
    } catch (e) {
      this.#log(`cannot keep the certificate in ${dir}: ${(e as Error).message}`);
    }
  }

  #log(text: string): void {
    this.opts.log?.(text);
  }
}

/** TLS to the control plane: its chain verified against `roots`, its certificate the control plane's SPIFFE ID; with `cert`, our client certificate. */
function mtlsCredentials(roots: readonly string[], cert: Pick<WorkloadCertificate, 'keyPem' | 'certChainPem'> | undefined): ChannelCredentials {
  return credentials.createSsl(Buffer.from(roots.join('\n')), cert ? Buffer.from(cert.keyPem) : null, cert ? Buffer.from(cert.certChainPem) : null, {
    checkServerIdentity: (_host: string, peer: PeerCertificate) => {
      const ids = spiffeIdsOf(peer);
      return ids.some((id) => CP_IDENTITY.test(id)) ? undefined : new Error(`the server is not a Trellis control plane (its certificate names ${ids.join(', ') || 'no SPIFFE ID'})`);
    },
  });
}

/** The control plane's root, fetched over TLS and accepted only if its SHA-256 is `fingerprint`. */
export function pinnedRoot(controlPlane: string, fingerprint: string, timeoutMs = 10_000): Promise<string> {
  const i = controlPlane.lastIndexOf(':');
  const host = controlPlane.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(controlPlane.slice(i + 1));
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], timeout: timeoutMs });
    const fail = (m: string, fatal = false) => { s.destroy(); reject(new IdentityError(m, fatal)); };
    s.once('timeout', () => fail(`no TLS answer from the control plane ${controlPlane} within ${timeoutMs} ms`));
    s.once('error', (e) => fail(`cannot reach the control plane ${controlPlane}: ${e.message}`));
    s.once('secureConnect', () => {
      const r = checkPinnedPeer(s.getPeerCertificate(true), fingerprint.toLowerCase());
      if (!r.ok) return fail(`the control plane ${controlPlane} failed the join token's pin: ${r.message}`, true);
      if (!r.identity || !CP_IDENTITY.test(r.identity)) return fail(`the server at ${controlPlane} is not a Trellis control plane (its certificate names ${r.identity ?? 'no SPIFFE ID'})`, true);
      s.end();
      resolve(r.rootPem);
    });
  });
}

/**
 * A new key and CSR, made by a child process (src/ca/csr-main.ts): loading
 * the X.509 library in the sidecar itself would cost it ~20 MiB of RSS for
 * good, for a few milliseconds of work every half life.
 */
function keyAndCsr(identity: string): Promise<{ keyPem: string; csrPem: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [fileURLToPath(new URL('../ca/csr-main.js', import.meta.url)), identity], { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) { reject(new IdentityError(`cannot make a key and CSR: ${stderr.trim() || err.message}`, false)); return; }
      try {
        resolve(JSON.parse(stdout) as { keyPem: string; csrPem: string });
      } catch (e) {
        reject(new IdentityError(`cannot make a key and CSR: ${(e as Error).message}`, false));
      }
    });
  });
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
