/**
 * Certificate signing between a proxy and the control plane's CA: the unary
 * call `/trellis.v1.Mesh/Certify` (JSON), beside the stream. The proxy makes
 * its key and sends a CSR; the key never leaves it.
 *
 * How the caller proves who it is:
 * - first time (bootstrap): a one-time join token minted for the instance. The
 *   token carries the SHA-256 of the CA root, and the proxy checks that the
 *   control plane's TLS chain ends in that root before it sends anything.
 * - afterwards (renewal at half life, reconnects, restarts): the certificate it
 *   holds, presented as the TLS client certificate of the call.
 *
 * Whatever names the CSR asks for, the certificate carries only the identity
 * the configuration gives the instance.
 */

export interface CertifyRequest {
  /** The instance the proxy serves, as in hello (`workload.namespace#i`). */
  readonly instance: string;
  /** PKCS#10 CSR, PEM. */
  readonly csr: string;
  /** The join token, on the first call; absent when the TLS client certificate authenticates the call. */
  readonly joinToken?: string;
}

export interface CertifyResponse {
  /** The SPIFFE ID the certificate carries. */
  readonly identity: string;
  /** Leaf first, then any intermediates (not the root), PEM. */
  readonly certChain: string;
  /** PEM roots to trust (two during a root rotation). */
  readonly trustBundle: readonly string[];
  /** ISO 8601. */
  readonly notBefore: string;
  readonly notAfter: string;
}

/** The SPIFFE ID of the control plane's own serving certificate, in `trustDomain`. */
export function controlPlaneIdentity(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/trellis-system/sa/control-plane`;
}
