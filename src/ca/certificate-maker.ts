/**
 * Makes the CA's certificates with @peculiar/x509: self-signed roots, and
 * workload / serving leaves that carry exactly the names they are given.
 * The caller decides names and validity; nothing here reads a request.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import type { SigningKey } from './key-files.js';
import { derToPem } from './pem.js';
import type { Extension, PeculiarCertificate, PublicKeyType, X509 } from './x509.js';

type Certificate = PeculiarCertificate;

/** A certificate that signs, with its key. */
export interface Issuer {
  readonly cert: Certificate;
  readonly signing: SigningKey;
}

/** What a leaf certificate says: its key, its names and its validity. */
export interface LeafSpec {
  readonly publicKey: PublicKeyType;
  /** The SPIFFE ID: the one URI SAN. */
  readonly identity: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A positive, non-zero 128-bit serial number in hex (RFC 5280 §4.1.2.2 allows up to 20 octets). */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

/** A new EC P-256 key pair (extractable, so the private half can be saved or handed out). */
export async function newP256KeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/** PKCS#8 PEM of an extractable private key. */
export async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return derToPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A self-signed EC P-256 root: CA:true (critical), keyCertSign + cRLSign (critical), subject key identifier. */
export async function makeRoot(
  x509: X509,
  opts: { subject: string; notBefore: Date; notAfter: Date },
): Promise<{ cert: Certificate; keyPem: string; signing: SigningKey }> {
  const keys = await newP256KeyPair();
  const algorithm = { name: 'ECDSA', hash: 'SHA-256' };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: opts.subject,
    keys,
    serialNumber: randomSerial(),
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keyPem: await privateKeyPem(keys.privateKey), signing: { key: keys.privateKey, algorithm } };
}


/**
 * A leaf signed by `issuer`: empty subject with the SANs critical (RFC 5280
 * §4.2.1.6), the SPIFFE ID as the only URI, serverAuth + clientAuth,
 * digitalSignature + keyEncipherment, CA:false, a random serial.
 */
export async function makeLeaf(x509: X509, issuer: Issuer, spec: LeafSpec): Promise<Certificate> {
  const names: { type: 'url' | 'dns' | 'ip'; value: string }[] = [{ type: 'url', value: spec.identity }];
  for (const dns of spec.dnsNames ?? []) names.push({ type: 'dns', value: dns });
  for (const ip of spec.ipAddresses ?? []) names.push({ type: 'ip', value: ip });
  const publicKey = spec.publicKey;
  const extensions: Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectAlternativeNameExtension(names, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ];
  const issuerKeyId = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (issuerKeyId) extensions.push(new x509.AuthorityKeyIdentifierExtension(issuerKeyId));
  return x509.X509CertificateGenerator.create({
    subject: '',
    issuer: issuer.cert.subjectName,
    publicKey,
    signingKey: issuer.signing.key,
    serialNumber: randomSerial(),
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    signingAlgorithm: issuer.signing.algorithm,
    extensions,
  });
}
