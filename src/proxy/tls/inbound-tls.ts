/**
 * mTLS termination for the inbound listener. The listener sniffs the first
 * byte of a connection (listener-server.ts); a TLS ClientHello (0x16) comes
 * here, to a `tls.Server` that never listens itself but is handed the
 * socket. The server asks for a client certificate; a connection goes on
 * only when the chain verified against the trust bundle — no certificate,
 * a foreign root, an expired one: the connection is closed and the refusal
 * counted (tls-events.ts). Node's tls.Server, not a bare TLSSocket, because
 * only the server enforces the verification result and sets the session id
 * context that session resumption with client certificates needs.
 *
 * The server's context is rebuilt from the workload's material on every
 * change (rotation, a new bundle) and gets fresh session ticket keys, so a
 * session of the old certificate is never resumed; connections already
 * open keep theirs. TLS 1.3 only; ALPN h2 and http/1.1.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { tlsFailureReason, type TlsFailureReason } from './identity.js';
import type { TlsObserver } from './tls-events.js';
import type { WorkloadTls } from './workload-tls.js';

export const INBOUND_ALPN = ['h2', 'http/1.1'];

export class InboundTls {
  readonly #server: Server;
  /** Raw sockets of TLS connections (handshaking or not), cut by destroyAll. */
  readonly #raw = new Set<Socket>();
  readonly #stop: () => void;

  /**
   * `secure` gets each verified TLS socket (ALPN negotiated, paused data
   * buffered); `handshakeTimeoutMs` bounds the handshake (0: Node's 120 s).
   */
  constructor(readonly workload: WorkloadTls, readonly observer: TlsObserver, handshakeTimeoutMs: number, secure: (ts: TLSSocket) => void) {
    this.#server = createServer({
      ...(workload.serverOptions ?? { minVersion: 'TLSv1.3' }),
      requestCert: true,
      // Verified below, so that every refusal is counted with its reason (with true, Node closes silently).
      rejectUnauthorized: false,
      ALPNProtocols: INBOUND_ALPN,
      ...(handshakeTimeoutMs > 0 ? { handshakeTimeout: handshakeTimeoutMs } : {}),
    });
    this.#stop = workload.onChange(() => this.#refresh());
    this.#server.on('secureConnection', (ts: TLSSocket) => {
      const address = remote(ts);
      if (!ts.authorized) {
        const cert = ts.getPeerCertificate();
        const reason: TlsFailureReason = !cert || Object.keys(cert).length === 0
          ? 'no_certificate'
          : tlsFailureReason({ code: String(ts.authorizationError) }) ?? 'untrusted';
        this.observer.refused('inbound', reason, `client certificate refused: ${String(ts.authorizationError)}`, address, ts);
        ts.destroy();
        return;
      }
      this.observer.established('inbound', ts, address);
      secure(ts);
    });
    this.#server.on('tlsClientError', (err: Error, ts: TLSSocket) => {
      const address = remote(ts);
      this.observer.refused('inbound', tlsFailureReason(err) ?? 'handshake', (err as Error & { code?: string }).code ?? err.message, address);
    });
  }

  /** Whether TLS can be terminated now (a workload certificate is set). */
  get ready(): boolean {
    return this.workload.ready;
  }

  /** Terminates TLS on `raw`, whose first bytes (the ClientHello) have been put back; closes it when there is no certificate yet. */
  accept(raw: Socket): void {
    if (!this.workload.ready) {
      this.observer.refused('inbound', 'no_certificate', 'this proxy has no workload certificate yet', remote(raw));
      raw.destroy();
      return;
    }
    this.#raw.add(raw);
    raw.once('close', () => this.#raw.delete(raw));
    this.#server.emit('connection', raw);
  }

  /** Cuts every TLS connection, handshaking or not (the listener's closeAllConnections). */
  destroyAll(): void {
    for (const s of this.#raw) s.destroy();
  }

  /** Stops following the workload's changes. */
  close(): void {
    this.#stop();
  }

  #refresh(): void {
    const o = this.workload.serverOptions;
    if (!o) return;
    this.#server.setSecureContext(o);
    this.#server.setTicketKeys(randomBytes(48));
  }
}

function remote(s: Socket): string {
  return `${s.remoteAddress ?? ''}:${s.remotePort ?? 0}`;
}
