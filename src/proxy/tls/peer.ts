/**
 * Who is on the other end of an inbound request: whether its connection is
 * mTLS and, if so, the SPIFFE ID of its verified client certificate. The
 * inbound listener only hands a TLS connection on once the chain verified
 * against the trust bundle (inbound-tls.ts), so a certificate found here is
 * a verified one. Read once per connection (HTTP/1.1: the socket; HTTP/2:
 * the session, whose streams share it) and cached.
 */
import type { IncomingMessage } from 'node:http';
import type { ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { principalOf, spiffeIdOf } from './identity.js';

/** The downstream peer of a request. */
export interface Peer {
  /** The connection is TLS (always mutual: a peer without a valid certificate never gets this far). */
  readonly tls: boolean;
  /** Istio's principal: the SPIFFE ID without `spiffe://` (`cluster.local/ns/x/sa/y`). */
  readonly principal?: string;
  /** `spiffe://cluster.local/ns/x/sa/y`. */
  readonly spiffeId?: string;
  /** The client certificate's serial (hex, upper case). */
  readonly serial?: string;
  /** SHA-256 of the client certificate (hex, lower case), as x-forwarded-client-cert's `Hash`. */
  readonly hash?: string;
}

const PLAINTEXT: Peer = Object.freeze({ tls: false });
const TLS_WITHOUT_ID: Peer = Object.freeze({ tls: true });

const cache = new WeakMap<object, Peer>();

/** The peer of a request that arrived on a listener (HTTP/1.1 `req.socket`, HTTP/2 `req.stream.session.socket`). */
export function peerOf(req: IncomingMessage): Peer {
  const session = (req as unknown as { stream?: { session?: ServerHttp2Session } }).stream?.session;
  const key: object | undefined = session ?? req.socket;
  if (!key) return PLAINTEXT;
  let p = cache.get(key);
  if (!p) {
    p = read((session ? session.socket : req.socket) as Partial<TLSSocket> | undefined);
    cache.set(key, p);
  }
  return p;
}

/** The peer of a socket (a CONNECT request's, an upgrade's): the same rule. */
function read(socket: Partial<TLSSocket> | undefined): Peer {
  if (!socket?.encrypted || typeof socket.getPeerCertificate !== 'function') return PLAINTEXT;
  const cert = socket.getPeerCertificate();
  if (!cert || !('subjectaltname' in cert)) return TLS_WITHOUT_ID;
  const spiffeId = spiffeIdOf(cert.subjectaltname);
  const serial = typeof cert.serialNumber === 'string' ? cert.serialNumber.toUpperCase() : undefined;
  const hash = typeof cert.fingerprint256 === 'string' ? cert.fingerprint256.replaceAll(':', '').toLowerCase() : undefined;
  if (!spiffeId) return Object.freeze({ tls: true, ...(serial ? { serial } : {}), ...(hash ? { hash } : {}) });
  return Object.freeze({ tls: true, principal: principalOf(spiffeId), spiffeId, ...(serial ? { serial } : {}), ...(hash ? { hash } : {}) });
}
