/**
 * The one door to @peculiar/x509: it needs `reflect-metadata` loaded first and
 * a WebCrypto provider, both set here. Heavy (ASN.1 schemas), so nothing
 * imports this module statically except for types: code that makes CSRs or
 * certificates calls `loadX509()` (load-x509.ts) when it needs it.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

// Node's WebCrypto.
x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
export type X509 = typeof x509;
export type { PublicKeyType, X509Certificate as PeculiarCertificate, Extension } from '@peculiar/x509';
