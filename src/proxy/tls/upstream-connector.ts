/**
 * How the proxy opens a connection to one upstream address of a cluster,
 * per the cluster's `tls` (DestinationRule `trafficPolicy.tls`, or auto mTLS):
 *
 * - `ISTIO_MUTUAL`: TLS 1.3 with the workload certificate (the secure context
 *   in force when the connection is opened, so a rotation applies to new
 *   connections only), the server's chain verified against the trust bundle
 *   and **secure naming** in place of Node's hostname check: the server's
 *   URI SAN must be one of `subjectAltNames` (when the list is not empty).
 * - `SIMPLE`: TLS to a server outside the mesh with Node's public roots (or
 *   the rule's `caCertificates` file) and its hostname check against the SNI
 *   (`sni`, else the service host), or against `subjectAltNames` when the
 *   rule lists some; `insecureSkipVerify` turns verification off.
 * - `MUTUAL`: the same, presenting the client certificate and key the rule
 *   names (`clientCertificate`, `privateKey`: files on the proxy's host, as
 *   Istio reads them on the sidecar's file system). A file that cannot be
 *   read refuses every connection with a reason naming it; `credentialName`
 *   (Kubernetes secrets) is not supported.
 * - `DISABLE` (or no tls): plaintext, and no connector at all.
 *
 * TLS sessions are resumed: the last session ticket of each ALPN protocol is
 * kept (only from a connection that passed verification, only for the
 * certificate generation it was made under) and offered on the next
 * connection, so a pool's later connections skip the certificate exchange.
 * Node does not re-run the identity check on a resumed session, which is
 * why a ticket is only ever kept per connector (one address, one SAN list).
 *
 * Every TLS failure surfaces as an UpstreamTlsError (identity.ts) with the
 * reason, and is counted (tls-events.ts).
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, TLSSocket, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { UpstreamTls } from '../../protocol/snapshot.js';
import { checkListedNames, checkSecureNaming, upstreamTlsError, UpstreamTlsError } from './identity.js';
import type { TlsObserver } from './tls-events.js';
import type { WorkloadTls } from './workload-tls.js';

export type Alpn = 'h2' | 'http/1.1';


/** What every connector of a data plane shares. */
export interface ConnectorEnv {
  readonly workload: WorkloadTls;
  readonly observer: TlsObserver;
  /**
   * ISTIO_MUTUAL while the proxy has no certificate yet: `refuse` (503 UF
   * with the reason; the default) or `plaintext` (embedded data planes
   * without an identity, see DataPlaneOptions.mtlsWithoutCertificate).
   */
  readonly withoutCertificate: 'plaintext' | 'refuse';
}

/** The part of a pool key that the TLS settings make: '' for plaintext. */
export function tlsKey(tls: UpstreamTls | undefined, service: string): string {
  if (!tls || tls.mode === 'DISABLE') return '';
  const files = tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL' ? `|${tls.caCertificates ?? ''}|${tls.clientCertificate ?? ''}|${tls.privateKey ?? ''}|${tls.insecureSkipVerify ? 'insecure' : ''}` : '';
  return `|${tls.mode}|${tls.sni ?? ''}|${tls.subjectAltNames.join(',')}${tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL' ? `|${service}` : ''}${files}`;
}

/** A connector for a cluster's tls settings; undefined for plaintext clusters. */
export function connectorFor(tls: UpstreamTls | undefined, service: string, host: string, port: number, env: ConnectorEnv): UpstreamConnector | undefined {
  return tls && tls.mode !== 'DISABLE' ? new UpstreamConnector(tls, service, host, port, env) : undefined;
}

const KEEPALIVE_MS = 60_000;

export class UpstreamConnector {
  readonly address: string;
  readonly #sessions = new Map<Alpn, Buffer>();
  #generation = -1;

  constructor(readonly tls: UpstreamTls, readonly service: string, readonly host: string, readonly port: number, readonly env: ConnectorEnv) {
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  /** SIMPLE / MUTUAL: the files the rule names, read once per connector (a snapshot with other files makes another). */
  #files: { ca?: string; cert?: string; key?: string } | UpstreamTlsError | undefined;

  #readFiles(): { ca?: string; cert?: string; key?: string } | UpstreamTlsError {
    if (this.#files) return this.#files;
    const t = this.tls;
    const read = (what: string, file: string | undefined) => {
      if (file === undefined) return undefined;
      try {
        return readFileSync(file, 'utf8');
      } catch (e) {
        throw new UpstreamTlsError('unsupported', `TLS mode ${t.mode} to ${this.address}: cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    };
    try {
      if (t.mode === 'MUTUAL' && (!t.clientCertificate || !t.privateKey)) {
        throw new UpstreamTlsError('unsupported', `TLS mode MUTUAL to ${this.address} needs clientCertificate and privateKey (files on the proxy's host); credentialName (Kubernetes secrets) is not supported`);
      }
      const ca = read('caCertificates', t.caCertificates);
      const cert = read('clientCertificate', t.clientCertificate);
      const key = read('privateKey', t.privateKey);
      this.#files = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
    } catch (e) {
      this.#files = e as UpstreamTlsError;
    }
    return this.#files;
  }

  /** Why no connection may be opened now; undefined when one may. */
  refusal(): UpstreamTlsError | undefined {
    if (this.tls.mode === 'MUTUAL' || this.tls.mode === 'SIMPLE') {
      const f = this.#readFiles();
      if (f instanceof UpstreamTlsError) return f;
    }
    if (this.tls.mode === 'ISTIO_MUTUAL' && !this.env.workload.ready && this.env.withoutCertificate === 'refuse') {
      return new UpstreamTlsError('no_certificate', `mTLS to ${this.address}: this proxy has no workload certificate yet`);
    }
    return undefined;
  }

  /** Whether a connection opened now is TLS (ISTIO_MUTUAL before the first certificate is not, for now: see ConnectorEnv). */
  get secure(): boolean {
    return this.tls.mode === 'SIMPLE' || this.tls.mode === 'MUTUAL' || (this.tls.mode === 'ISTIO_MUTUAL' && this.env.workload.ready);
  }

  /** The event that says a socket from `open` is ready for bytes. */
  readyEvent(s: Socket): 'secureConnect' | 'connect' {
    return s instanceof TLSSocket ? 'secureConnect' : 'connect';
  }

  /** SIMPLE / MUTUAL: the rule's CA (else Node's public roots), client certificate and key, and insecureSkipVerify. */
  #externalOptions(): ConnectionOptions {
    const f = this.#readFiles();
    if (f instanceof UpstreamTlsError) return {};
    return { ...(f.ca ? { ca: f.ca } : {}), ...(f.cert ? { cert: f.cert } : {}), ...(f.key ? { key: f.key } : {}), ...(this.tls.insecureSkipVerify ? { rejectUnauthorized: false } : {}) };
  }

  /** Opens a connection now (check `refusal()` first): TLS or plaintext per the mode; errors arrive on the socket. */
  open(alpn: Alpn, o: { allowHalfOpen?: boolean; onread?: OnReadOpts } = {}): Socket {
    const { host, port } = this;
    if (!this.secure) return netConnect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS, ...o });
    const w = this.env.workload;
    if (this.#generation !== w.generation) { this.#sessions.clear(); this.#generation = w.generation; }
    const generation = this.#generation;
    const session = this.#sessions.get(alpn);
    const address = this.address;
    const sans = this.tls.subjectAltNames;
    const istio = this.tls.mode === 'ISTIO_MUTUAL';
    const sni = this.tls.sni ?? (istio || isIP(this.service) ? undefined : this.service);
    const options: ConnectionOptions = {
      host, port, ALPNProtocols: [alpn], ...o,
      ...(sni ? { servername: sni } : {}),
      ...(session ? { session } : {}),
      ...(istio
        ? { secureContext: w.clientContext!, checkServerIdentity: (_h: string, cert: PeerCertificate) => checkSecureNaming(cert, sans, address) }
        : { minVersion: 'TLSv1.2', ...this.#externalOptions(), checkServerIdentity: sans.length ? (_h: string, cert: PeerCertificate) => checkListedNames(cert, sans, address) : checkServerIdentity }),
    };
    const s = tlsConnect(options);
    s.setNoDelay(true);
    s.setKeepAlive(true, KEEPALIVE_MS);
    let verified = false;
    s.once('secureConnect', () => {
      verified = true;
      this.env.observer.established('outbound', s, address);
    });
    s.on('session', (ticket: Buffer) => {
      if (verified && generation === this.#generation) this.#sessions.set(alpn, ticket);
    });
    s.once('error', (err: Error) => {
      if (verified) return;
      this.#sessions.delete(alpn);
      const e = upstreamTlsError(err, address);
      if (e) this.env.observer.refused('outbound', e.reason, e.message, address);
    });
    return s;
  }
}
