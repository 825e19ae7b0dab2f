/**
 * Certificates the mesh CA would never issue, for mTLS tests: a root of
 * their own (a foreign root, a private web root), leaves with any URI SAN
 * (a SPIFFE ID or not), serverAuth and clientAuth, made here with
 * @peculiar/x509 on Node's WebCrypto (ECDSA P-256). Workload certificates of
 * the mesh come from the project's CA (mtls-pki.ts).
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** A certificate authority of the tests: its key stays in memory. */
export interface TestCa {
  readonly certPem: string;
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

/** What DataPlane.setCertificate takes, plus what the tests compare. */
export interface TestLeaf {
  readonly keyPem: string;
  /** Leaf first, then the issuing chain (without the root). */
  readonly certChainPem: string;
  /** Hex, upper case, as X509Certificate.serialNumber gives it. */
  readonly serial: string;
  readonly spiffeId: string;
}

export interface LeafOptions {
  /** Default: now − 1 minute. */
  readonly notBefore?: Date;
  /** Default: now + 1 day. */
  readonly notAfter?: Date;
  /** Extended key usages; default serverAuth + clientAuth. */
  readonly usages?: readonly x509.ExtendedKeyUsage[];
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

function serial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0]! &= 0x7f; // positive
  b[0]! |= 0x01; // no leading zero byte, so the hex round-trips
  return Buffer.from(b).toString('hex');
}

/** A self-signed root CA (10 years). */
export async function createTestCa(name = 'Trellis test root'): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}, O=cluster.local`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3650 * DAY),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', cert, keys };
}

/** The SPIFFE ID of a workload: `spiffe://<trust domain>/ns/<ns>/sa/<sa>`. */
export function spiffeId(ns: string, sa: string, trustDomain = 'cluster.local'): string {
  return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
}

/** A workload certificate for `id` (a SPIFFE ID) signed by `ca`. */
export async function issueLeaf(ca: TestCa, id: string, o: LeafOptions = {}): Promise<TestLeaf> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const serialNumber = serial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: 'O=cluster.local',
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: o.notAfter ?? new Date(Date.now() + DAY),
    signingAlgorithm: SIGN,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([...(o.usages ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }], true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  const keyPem = pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { keyPem, certChainPem: cert.toString('pem') + '\n', serial: serialNumber.toUpperCase(), spiffeId: id };
}
