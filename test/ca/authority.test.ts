/**
 * The managed CA of a state directory and the checks `signCsr` makes: files
 * and permissions, the same root across restarts, the root's own shape
 * (read by openssl), refused CSRs (tampered, RSA, P-384, garbage), identities
 * outside the trust domain, lifetimes down to seconds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { fingerprintOfRoot } from '../../src/ca/cert-info.js';
import { CA_ERRORS, CaError } from '../../src/ca/errors.js';
import { newKeyAndCsr } from '../../src/ca/workload-key.js';

const TD = 'bank.example';
const WEB = `spiffe://${TD}/ns/bank/sa/web`;
const dir = mkdtempSync(join(tmpdir(), 'trellis-ca-'));
const state = join(dir, 'state');
after(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (args: string[], input?: string) =>
  execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
/** openssl's stdout and stderr together (`req -verify` reports on stderr). */
const opensslAll = (args: string[], input: string) => {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', input });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout + r.stderr;
};
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const refusedWith = (code: string, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CaError, `a CaError, got ${e}`);
  assert.equal(e.code, code);
  assert.match(e.message, message);
  return true;
};

let ca: CertificateAuthority;
before(async () => {
  ca = await CertificateAuthority.loadOrCreate(state, { trustDomain: TD });
});

test('the first start makes the root in <state>/ca: directory 0700, key 0600, certificate 0644', () => {
  assert.equal(statSync(join(state, 'ca')).mode & 0o777, 0o700);
  assert.equal(statSync(join(state, 'ca', 'root-key.pem')).mode & 0o777, 0o600);
  assert.equal(statSync(join(state, 'ca', 'root-cert.pem')).mode & 0o777, 0o644);
  assert.equal(ca.managed, true);
});

test('the root is a self-signed ECDSA P-256 CA for 10 years, keyCertSign + cRLSign, named after the trust domain', () => {
  const root = write('root.pem', ca.trustBundle()[0]!);
  const text = openssl(['x509', '-noout', '-text', '-in', root]);
  assert.match(text, /Subject: O *= *Trellis, CN *= *Trellis root CA bank\.example\n/);
  assert.match(text, /Issuer: O *= *Trellis, CN *= *Trellis root CA bank\.example\n/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:TRUE/);
  assert.match(text, /X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
  assert.match(openssl(['verify', '-CAfile', root, root]), /: OK$/m);
  const end = Date.parse(openssl(['x509', '-noout', '-enddate', '-in', root]).trim().replace('notAfter=', ''));
  const years = (end - Date.now()) / (365 * 24 * 3600_000);
  assert.ok(years > 9.9 && years <= 10, `valid ${years.toFixed(2)} years`);
});

test('rootFingerprint is the sha256 of the root DER, as openssl computes it', () => {
  const fp = openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', write('root.pem', ca.trustBundle()[0]!)]);
  assert.equal(ca.rootFingerprint, fp.trim().split('=')[1]!.replace(/:/g, '').toLowerCase());
  assert.equal(ca.rootFingerprint, fingerprintOfRoot(ca.trustBundle()[0]!));
  assert.match(ca.rootFingerprint, /^[0-9a-f]{64}$/);
});

test('a second start on the same state directory loads the same root, and its certificates verify against the first bundle', async () => {
  const again = await CertificateAuthority.loadOrCreate(state, { trustDomain: TD });
  assert.equal(again.rootFingerprint, ca.rootFingerprint);
  assert.deepEqual(again.trustBundle(), ca.trustBundle());
  const issued = await again.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB);
  assert.match(openssl(['verify', '-CAfile', write('b.pem', ca.trustBundle()[0]!), write('l.pem', issued.certPem)]), /: OK$/m);
});

test('a root key readable by others (0644) is refused on load, naming the file', async () => {
  const d = join(dir, 'open-key');
  await CertificateAuthority.loadOrCreate(d, { trustDomain: TD });
  const key = join(d, 'ca', 'root-key.pem');
  chmodSync(key, 0o644);
  await assert.rejects(CertificateAuthority.loadOrCreate(d, { trustDomain: TD }), refusedWith(CA_ERRORS.KEY_PERMISSIONS, new RegExp(`${key.replace(/[/.]/g, '\\$&')} has mode 0644.*chmod 600`)));
});

test('a state directory with a root certificate but no key is refused, not silently replaced', async () => {
  const d = join(dir, 'half');
  await CertificateAuthority.loadOrCreate(d, { trustDomain: TD });
  rmSync(join(d, 'ca', 'root-key.pem'));
  await assert.rejects(CertificateAuthority.loadOrCreate(d, { trustDomain: TD }), refusedWith(CA_ERRORS.BAD_FILE, /root-cert\.pem exists but .*root-key\.pem is missing/));
});

test('a tampered CSR (one byte of its requested name changed) is refused: its signature does not verify', async () => {
  const { csrPem } = await newKeyAndCsr(`spiffe://${TD}/ns/bank/sa/tamperme`);
  const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const at = der.indexOf('tamperme');
  assert.ok(at > 0);
  der[at] = 'T'.charCodeAt(0);
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(ca.signCsr(tampered, WEB), refusedWith(CA_ERRORS.BAD_CSR, /signature does not verify/));
});

test('a CSR that is not a CSR is refused as such', async () => {
  await assert.rejects(ca.signCsr('hello', WEB), refusedWith(CA_ERRORS.BAD_CSR, /not a PEM PKCS#10 request/));
});

test('an RSA CSR (made by openssl) is refused: workload keys must be ECDSA P-256', async () => {
  const csr = openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'rsa.key'), '-subj', '/CN=web', '-addext', `subjectAltName=URI:${WEB}`]);
  assert.match(opensslAll(['req', '-noout', '-verify'], csr), /verify OK/); // a valid request, only of the wrong kind
  await assert.rejects(ca.signCsr(csr, WEB), refusedWith(CA_ERRORS.UNSUPPORTED_KEY, /RSA 2048-bit key; workload keys must be ECDSA P-256/));
});

test('an ECDSA P-384 CSR is refused too', async () => {
  const key = join(dir, 'p384.key');
  openssl(['ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', key]);
  const csr = openssl(['req', '-new', '-key', key, '-subj', '/CN=web']);
  await assert.rejects(ca.signCsr(csr, WEB), refusedWith(CA_ERRORS.UNSUPPORTED_KEY, /curve secp384r1/));
});

test('identities outside the trust domain, or not SPIFFE IDs, are not signed', async () => {
  const { csrPem } = await newKeyAndCsr(WEB);
  await assert.rejects(ca.signCsr(csrPem, 'spiffe://other.example/ns/bank/sa/web'), refusedWith(CA_ERRORS.BAD_IDENTITY, /trust domain other\.example; this CA signs only identities of bank\.example/));
  await assert.rejects(ca.signCsr(csrPem, 'https://bank.example/web'), refusedWith(CA_ERRORS.BAD_IDENTITY, /must start with spiffe:\/\//));
  await assert.rejects(ca.signCsr(csrPem, `spiffe://${TD}/ns/../sa/web`), refusedWith(CA_ERRORS.BAD_IDENTITY, /'\.\.' segment/));
  await assert.rejects(ca.signCsr(csrPem, `spiffe://${TD}`), refusedWith(CA_ERRORS.BAD_IDENTITY, /trust domain itself/));
});

test('a ttl of 2 s gives notAfter = now + 2 s (openssl: valid now, expired 3 s later); under 1 s is refused', async () => {
  const t0 = Date.now();
  const issued = await ca.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB, { ttlMs: 2000 });
  const end = issued.notAfter.getTime();
  assert.ok(end > t0 + 1000 - 1 && end <= Date.now() + 2000, `notAfter ${issued.notAfter.toISOString()} is now + 2 s (t0 ${new Date(t0).toISOString()})`);
  const root = write('r.pem', ca.trustBundle()[0]!);
  const leaf = write('short.pem', issued.certPem);
  assert.match(openssl(['verify', '-attime', String(Math.floor(t0 / 1000) + 1), '-CAfile', root, leaf]), /: OK$/m);
  assert.throws(() => openssl(['verify', '-attime', String(Math.ceil(t0 / 1000) + 3), '-CAfile', root, leaf]), /certificate has expired/);
  await assert.rejects(ca.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB, { ttlMs: 999 }), refusedWith(CA_ERRORS.BAD_TTL, /at least 1000 ms/));
});

test('an injected clock sets the validity exactly: now - 60 s to now + ttl', async () => {
  const now = Date.UTC(2031, 0, 1, 12, 0, 0);
  const clocked = await CertificateAuthority.loadOrCreate(join(dir, 'clocked'), { trustDomain: TD, now: () => now });
  const issued = await clocked.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB, { ttlMs: 3600_000 });
  assert.equal(issued.notBefore.getTime(), now - 60_000);
  assert.equal(issued.notAfter.getTime(), now + 3600_000);
});

test('issueServing makes the key itself and puts the SPIFFE ID, DNS names and IP addresses in the certificate', async () => {
  const served = await ca.issueServing({ identity: `spiffe://${TD}/ns/trellis-system/sa/control-plane`, dnsNames: ['trellis.local', 'localhost'], ipAddresses: ['127.0.0.1', '::1'] });
  const text = openssl(['x509', '-noout', '-text', '-in', write('cp.pem', served.certPem)]);
  assert.match(text, /URI:spiffe:\/\/bank\.example\/ns\/trellis-system\/sa\/control-plane, DNS:trellis\.local, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
  const pub = (args: string[], input: string) => openssl(args, input);
  assert.equal(pub(['pkey', '-pubout'], served.keyPem), pub(['x509', '-noout', '-pubkey'], served.certPem), 'the key is the certificate\'s');
  assert.match(pub(['pkey', '-noout', '-text'], served.keyPem), /prime256v1/);
  const cp = `spiffe://${TD}/ns/trellis-system/sa/control-plane`;
  await assert.rejects(ca.issueServing({ identity: cp, ipAddresses: ['localhost'] }), refusedWith(CA_ERRORS.BAD_NAME, /"localhost" is not an IP address/));
  await assert.rejects(ca.issueServing({ identity: cp, dnsNames: ['bad name'] }), refusedWith(CA_ERRORS.BAD_NAME, /"bad name" is not a DNS name/));
});

test('newKeyAndCsr makes a P-256 PKCS#8 key and a CSR with the SPIFFE ID as URI SAN that openssl verifies', async () => {
  const { keyPem, csrPem } = await newKeyAndCsr(WEB);
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const text = opensslAll(['req', '-noout', '-text', '-verify'], csrPem);
  assert.match(text, /verify OK/);
  assert.match(text, /URI:spiffe:\/\/bank\.example\/ns\/bank\/sa\/web/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.equal(openssl(['pkey', '-pubout'], keyPem), openssl(['req', '-noout', '-pubkey'], csrPem));
  await assert.rejects(newKeyAndCsr('web'), /not a SPIFFE ID/);
});
