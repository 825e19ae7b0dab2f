/**
 * Identities in certificates, and what a failed TLS connection means.
 *
 * - Subject alternative names as Node prints them (`URI:spiffe://…, DNS:…`,
 *   a value with special characters JSON-quoted), and the SPIFFE ID among them.
 * - Principals as Istio writes them: the SPIFFE ID without `spiffe://`.
 * - Secure naming: the server's SPIFFE ID must be one the destination service
 *   may run as (the cluster's `tls.subjectAltNames`); an empty list accepts
 *   any certificate of the trust bundle, as Istio does.
 * - `UpstreamTlsError`: every TLS failure of a connection the proxy opens,
 *   with a reason for the metrics and a message that says what to fix.
 */
import type { PeerCertificate } from 'node:tls';

export const SPIFFE_PREFIX = 'spiffe://';

/** Why a TLS connection was not made or not accepted (a label of the TLS metrics). */
export type TlsFailureReason =
  | 'no_certificate' // the peer sent none (inbound), or this proxy has none yet (outbound, strict)
  | 'untrusted' // the chain does not lead to a root of the trust bundle
  | 'expired' // the peer's certificate is outside its validity
  | 'secure_naming' // the server's identity is not one the destination may run as
  | 'unsupported' // a TLS mode the proxy cannot originate (MUTUAL without client certificate files)
  | 'handshake'; // anything else the TLS layer refused (versions, ALPN, a reset mid-handshake)

/** The code of UpstreamTlsError: the proxy could not open a TLS connection to the upstream. */
export const UPSTREAM_TLS_CODE = 'TRL_PROXY_UPSTREAM_TLS';

/** A connection to an upstream that TLS refused; `reason` labels the metrics, the message names the fix. */
export class UpstreamTlsError extends Error {
  readonly code = UPSTREAM_TLS_CODE;
  constructor(readonly reason: TlsFailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Every `TYPE:value` of a subject alternative name string as Node prints it. */
export function parseSubjectAltNames(s: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (!s) return out;
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const type = s.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      // JSON-quoted: find the closing quote that is not escaped.
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      try { value = JSON.parse(s.slice(colon + 1, j + 1)) as string; } catch { value = s.slice(colon + 2, j); }
      next = s.indexOf(', ', j);
    } else {
      next = s.indexOf(', ', colon);
      value = s.slice(colon + 1, next < 0 ? s.length : next);
    }
    out.push({ type, value });
    if (next < 0) break;
    i = next + 2;
  }
  return out;
}

/** The URI SANs of a certificate's subject alternative name string. */
export function uriSans(subjectAltName: string | undefined): string[] {
  return parseSubjectAltNames(subjectAltName).filter((n) => n.type === 'URI').map((n) => n.value);
}

/** The first `spiffe://` URI SAN, if any. */
export function spiffeIdOf(subjectAltName: string | undefined): string | undefined {
  return uriSans(subjectAltName).find((u) => u.startsWith(SPIFFE_PREFIX));
}

/** `spiffe://cluster.local/ns/x/sa/y` → `cluster.local/ns/x/sa/y` (Istio's principal form). */
export function principalOf(spiffeId: string): string {
  return spiffeId.startsWith(SPIFFE_PREFIX) ? spiffeId.slice(SPIFFE_PREFIX.length) : spiffeId;
}

/**
 * The secure-naming check of an upstream's certificate: undefined when one
 * of its URI SANs is in `expected` (or `expected` is empty), else the error.
 */
export function checkSecureNaming(cert: PeerCertificate | undefined, expected: readonly string[], address: string): UpstreamTlsError | undefined {
  if (expected.length === 0) return undefined;
  const presented = uriSans(cert?.subjectaltname);
  if (presented.some((u) => expected.includes(u))) return undefined;
  const shown = presented.length ? presented.join(', ') : 'no URI SAN';
  return new UpstreamTlsError('secure_naming', `secure naming: server ${address} presented ${shown}, expected one of ${expected.join(', ')}`);
}

/**
 * A non-mesh server's certificate against the names a DestinationRule lists
 * (SIMPLE with `subjectAltNames`): any DNS or URI SAN that is in the list.
 */
export function checkListedNames(cert: PeerCertificate | undefined, expected: readonly string[], address: string): UpstreamTlsError | undefined {
  const names = parseSubjectAltNames(cert?.subjectaltname).filter((n) => n.type === 'DNS' || n.type === 'URI').map((n) => n.value);
  if (names.some((n) => expected.includes(n))) return undefined;
  return new UpstreamTlsError('secure_naming', `server ${address} presented ${names.join(', ') || 'no DNS or URI SAN'}, expected one of ${expected.join(', ')}`);
}

/** OpenSSL verification results and what they mean here. */
const VERIFY_REASONS: Readonly<Record<string, TlsFailureReason>> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'expired',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'untrusted',
  CERT_SIGNATURE_FAILURE: 'untrusted',
  CERT_UNTRUSTED: 'untrusted',
  CERT_REJECTED: 'untrusted',
  INVALID_CA: 'untrusted',
  INVALID_PURPOSE: 'untrusted',
  PATH_LENGTH_EXCEEDED: 'untrusted',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no_certificate',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'no_certificate',
};

/** The reason of a TLS error (Node's, OpenSSL's or ours); undefined for errors that are not TLS failures. */
export function tlsFailureReason(err: unknown): TlsFailureReason | undefined {
  if (err instanceof UpstreamTlsError) return err.reason;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  const r = VERIFY_REASONS[code];
  if (r) return r;
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'handshake';
  return undefined;
}

/** A failed TLS connection to `address` as an UpstreamTlsError (the original as its cause); undefined for other errors. */
export function upstreamTlsError(err: unknown, address: string): UpstreamTlsError | undefined {
  if (err instanceof UpstreamTlsError) return err;
  const reason = tlsFailureReason(err);
  if (!reason) return undefined;
  const e = err as Error & { code: string };
  const what = reason === 'expired' ? 'its certificate is expired or not yet valid'
    : reason === 'untrusted' ? 'its certificate is not signed by a root of the trust bundle'
    : reason === 'no_certificate' ? 'it wanted a client certificate that this proxy did not send'
    : 'the TLS handshake failed';
  return new UpstreamTlsError(reason, `TLS to ${address}: ${what} (${describe(e)})`, { cause: err });
}

/** The code, and the message when it is a sentence (OpenSSL's own are a stack of internals: the code says it). */
function describe(e: Error & { code: string }): string {
  return /routines:/.test(e.message) ? e.code : `${e.code}: ${e.message}`;
}
