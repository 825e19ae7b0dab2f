/**
 * Loads @peculiar/x509 (through x509.ts) on first use, so that a process that
 * only reads certificates (the proxy) never pays for it.
 */
import type { X509 } from './x509.js';

let loading: Promise<X509> | undefined;

/** The @peculiar/x509 module, set up with Node's WebCrypto; loaded once. */
export function loadX509(): Promise<X509> {
  loading ??= import('./x509.js').then((m) => m.x509);
  return loading;
}
