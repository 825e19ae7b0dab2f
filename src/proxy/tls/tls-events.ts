/**
 * What happens to TLS handshakes, for the metrics (always: a few counter
 * increments) and for whoever subscribes to the `trellis:proxy:tls`
 * diagnostics channel (one event per handshake, built only when someone
 * listens): both directions, resumed or full, the peer's identity and
 * certificate serial, or why the handshake was refused.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { TLSSocket } from 'node:tls';
import type { ProxyMetrics } from '../metrics.js';
import { spiffeIdOf, type TlsFailureReason } from './identity.js';
import type { WorkloadTls } from './workload-tls.js';

export const TLS_CHANNEL = 'trellis:proxy:tls';

/** One handshake as the channel reports it. */
export interface TlsHandshakeEvent {
  /** inbound: a peer connected to this proxy; outbound: this proxy connected to an upstream. */
  readonly direction: 'inbound' | 'outbound';
  readonly ok: boolean;
  /** Why it was refused (ok false). */
  readonly reason?: TlsFailureReason;
  readonly detail?: string;
  /** The session was resumed (no certificate exchange). */
  readonly resumed: boolean;
  /** The ALPN protocol agreed (`h2`, `http/1.1`), if any. */
  readonly alpn?: string;
  /** The peer: the remote `host:port`. */
  readonly address?: string;
  /** This proxy's SPIFFE ID and certificate serial at the time. */
  readonly local?: string;
  readonly localSerial?: string;
  /** The peer's SPIFFE ID and certificate serial (inbound: the client's; outbound: the server's, absent on resumed sessions). */
  readonly peer?: string;
  readonly peerSerial?: string;
}

const channel = diagnostics_channel.channel(TLS_CHANNEL);

/** Where the TLS code reports handshakes. */
export interface TlsObserver {
  established(direction: 'inbound' | 'outbound', socket: TLSSocket, address: string): void;
  refused(direction: 'inbound' | 'outbound', reason: TlsFailureReason, detail: string, address: string, socket?: TLSSocket): void;
}

/** An observer that counts in `metrics` and publishes on the channel when it has subscribers. */
export function tlsObserver(metrics: ProxyMetrics | undefined, workload: WorkloadTls): TlsObserver {
  const local = () => {
    const c = workload.certificate;
    return c ? { local: c.spiffeId, localSerial: c.serial } : {};
  };
  return {
    established(direction, socket, address) {
      const resumed = socket.isSessionReused();
      metrics?.tlsHandshake(direction, resumed);
      if (!channel.hasSubscribers) return;
      const cert = socket.getPeerCertificate();
      const peer = cert && 'subjectaltname' in cert ? spiffeIdOf(cert.subjectaltname) : undefined;
      const serial = cert && typeof cert.serialNumber === 'string' ? cert.serialNumber.toUpperCase() : undefined;
      const alpn = socket.alpnProtocol || undefined;
      channel.publish({ direction, ok: true, resumed, address, ...(alpn ? { alpn } : {}), ...local(), ...(peer ? { peer } : {}), ...(serial ? { peerSerial: serial } : {}) } satisfies TlsHandshakeEvent);
    },
    refused(direction, reason, detail, address, socket) {
      metrics?.tlsHandshakeFailed(direction, reason);
      if (!channel.hasSubscribers) return;
      const cert = socket?.getPeerCertificate();
      const peer = cert && 'subjectaltname' in cert ? spiffeIdOf(cert.subjectaltname) : undefined;
      channel.publish({ direction, ok: false, reason, detail, resumed: false, address, ...local(), ...(peer ? { peer } : {}) } satisfies TlsHandshakeEvent);
    },
  };
}

/** An observer that drops everything (pools built without a data plane). */
export const NO_TLS_OBSERVER: TlsObserver = { established: () => undefined, refused: () => undefined };
