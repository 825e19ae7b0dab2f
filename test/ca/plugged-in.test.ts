/**
 * A root or intermediate plugged in from files (`--ca-cert --ca-key
 * --ca-chain`), made by openssl: the trust bundle is the chain's root, the
 * chain a leaf carries is right, and each broken set-up is refused with an
 * error that names the file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { CA_ERRORS, CaError } from '../../src/ca/errors.js';
import { splitPem } from '../../src/ca/pem.js';
import { newKeyAndCsr } from '../../src/ca/workload-key.js';

const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/shop/sa/web`;
const dir = mkdtempSync(join(tmpdir(), 'trellis-ca-plug-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const at = (name: string) => join(dir, name);
const refusedWith = (code: string, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CaError, `a CaError, got ${e}`);
  assert.equal(e.code, code);
  assert.match(e.message, message);
  return true;
};

function ecKey(name: string): string {
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', name);
  chmodSync(at(name), 0o600);
  return at(name);
}

/** openssl x509 -req: `subject` signed by `issuer` (cert, key) with the extensions of section `ext`. */
function sign(name: string, key: string, subject: string, issuer: [string, string], ext: string, days = 20): string {
  openssl('req', '-new', '-key', key, '-subj', subject, '-out', `${name}.csr`);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', issuer[0], '-CAkey', issuer[1], '-CAcreateserial', '-days', String(days), '-sha256',
    '-extfile', 'ext.cnf', '-extensions', ext, '-out', `${name}.pem`);
  return at(`${name}.pem`);
}

let root: string;
let rootKey: string;
let mid: string;
let midKey: string;
let issuing: string;
let issuingKey: string;
before(() => {
  writeFileSync(at('ext.cnf'), [
    '[ca]', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid',
    '[leaf]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', '',
  ].join('\n'));
  rootKey = ecKey('root.key');
  openssl('req', '-x509', '-new', '-key', rootKey, '-subj', '/O=Corp/CN=Corp Root', '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root.pem');
  root = at('root.pem');
  midKey = ecKey('mid.key');
  mid = sign('mid', midKey, '/O=Corp/CN=Corp Mesh Intermediate', [root, rootKey], 'ca');
  issuingKey = ecKey('issuing.key');
  issuing = sign('issuing', issuingKey, '/O=Corp/CN=Corp Cluster Issuing CA', [mid, midKey], 'ca');
});

test('an intermediate two levels below the root: the bundle is the root, a leaf chain is leaf + issuing + middle, openssl verifies it', async () => {
  writeFileSync(at('chain.pem'), readFileSync(mid, 'utf8') + readFileSync(root, 'utf8'));
  const ca = await CertificateAuthority.fromFiles({ certFile: issuing, keyFile: issuingKey, chainFile: at('chain.pem'), trustDomain: TD });
  assert.equal(ca.managed, false);
  assert.deepEqual(ca.trustBundle(), splitPem(readFileSync(root, 'utf8')));
  const rootFp = openssl('x509', '-noout', '-fingerprint', '-sha256', '-in', root).trim().split('=')[1]!.replace(/:/g, '').toLowerCase();
  assert.equal(ca.rootFingerprint, rootFp);
  const issued = await ca.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB);
  const chain = splitPem(issued.chainPem);
  assert.deepEqual(chain.slice(1), [...splitPem(readFileSync(issuing, 'utf8')), ...splitPem(readFileSync(mid, 'utf8'))]);
  writeFileSync(at('leaf.pem'), chain[0]!);
  writeFileSync(at('untrusted.pem'), chain.slice(1).join(''));
  assert.match(openssl('verify', '-CAfile', root, '-untrusted', 'untrusted.pem', 'leaf.pem'), /leaf\.pem: OK/);
  assert.match(openssl('x509', '-noout', '-issuer', '-in', 'leaf.pem'), /Corp Cluster Issuing CA/);
});

test("a chain file that starts with the CA certificate itself (Istio's cert-chain.pem) is accepted", async () => {
  writeFileSync(at('istio-chain.pem'), readFileSync(mid, 'utf8') + readFileSync(root, 'utf8'));
  const ca = await CertificateAuthority.fromFiles({ certFile: mid, keyFile: midKey, chainFile: at('istio-chain.pem'), trustDomain: TD });
  const issued = await ca.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB);
  assert.equal(splitPem(issued.chainPem).length, 2, 'leaf + the CA certificate, once');
});

test('a leaf never outlives the CA that signs it: notAfter is capped at the intermediate expiry', async () => {
  const shortKey = ecKey('short.key');
  const short = sign('short', shortKey, '/O=Corp/CN=Short-lived CA', [root, rootKey], 'ca', 1);
  const ca = await CertificateAuthority.fromFiles({ certFile: short, keyFile: shortKey, chainFile: root, trustDomain: TD });
  const issued = await ca.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB, { ttlMs: 7 * 24 * 3600_000 });
  const caEnd = Date.parse(openssl('x509', '-noout', '-enddate', '-in', short).trim().replace('notAfter=', ''));
  assert.equal(issued.notAfter.getTime(), caEnd);
});

test('a key that does not belong to the certificate is refused, naming both files', async () => {
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: root, keyFile: midKey, trustDomain: TD }),
    refusedWith(CA_ERRORS.KEY_MISMATCH, new RegExp(`the key ${midKey} does not belong to the certificate .*Corp Root in ${root}`)));
});

test('a certificate that is not a CA is refused', async () => {
  const leafKey = ecKey('notca.key');
  const leaf = sign('notca', leafKey, '/CN=not a ca', [root, rootKey], 'leaf');
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: leaf, keyFile: leafKey, chainFile: root, trustDomain: TD }),
    refusedWith(CA_ERRORS.NOT_A_CA, new RegExp(`CN=not a ca in ${leaf} is not a CA certificate`)));
});

test('an intermediate without its chain, or with a chain that stops short of the root, is refused', async () => {
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: mid, keyFile: midKey, trustDomain: TD }),
    refusedWith(CA_ERRORS.BAD_CHAIN, /not a self-signed root; this CA certificate is an intermediate: give its chain up to the root \(--ca-chain\)/));
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: issuing, keyFile: issuingKey, chainFile: mid, trustDomain: TD }),
    refusedWith(CA_ERRORS.BAD_CHAIN, new RegExp(`ends with .*Corp Mesh Intermediate \\(${mid}\\), which is not a self-signed root; add the root`)));
});

test('a chain in the wrong order or from another CA is refused', async () => {
  writeFileSync(at('reversed.pem'), readFileSync(root, 'utf8') + readFileSync(mid, 'utf8'));
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: issuing, keyFile: issuingKey, chainFile: at('reversed.pem'), trustDomain: TD }),
    refusedWith(CA_ERRORS.BAD_CHAIN, /Corp Cluster Issuing CA .* is not signed by the next certificate of the chain, O=Corp, CN=Corp Root/));
});

test('a CA key open to other users is refused, naming the file', async () => {
  chmodSync(rootKey, 0o640);
  try {
    await assert.rejects(CertificateAuthority.fromFiles({ certFile: root, keyFile: rootKey, trustDomain: TD }),
      refusedWith(CA_ERRORS.KEY_PERMISSIONS, new RegExp(`${rootKey} has mode 0640`)));
  } finally {
    chmodSync(rootKey, 0o600);
  }
});

test('missing and unreadable files are refused, naming the file', async () => {
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: at('nope.pem'), keyFile: rootKey, trustDomain: TD }),
    refusedWith(CA_ERRORS.BAD_FILE, /cannot read the CA certificate .*nope\.pem/));
  writeFileSync(at('garbage.pem'), 'not a certificate\n');
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: at('garbage.pem'), keyFile: rootKey, trustDomain: TD }),
    refusedWith(CA_ERRORS.BAD_FILE, /garbage\.pem holds no PEM certificate/));
  writeFileSync(at('garbage.key'), 'not a key\n', { mode: 0o600 });
  await assert.rejects(CertificateAuthority.fromFiles({ certFile: root, keyFile: at('garbage.key'), trustDomain: TD }),
    refusedWith(CA_ERRORS.BAD_FILE, /garbage\.key is not an unencrypted PEM private key/));
});

test('a plugged-in CA cannot rotate its root: that belongs to whoever made it', async () => {
  const ca = await CertificateAuthority.fromFiles({ certFile: root, keyFile: rootKey, trustDomain: TD });
  await assert.rejects(ca.rotateRoot(), refusedWith(CA_ERRORS.NOT_MANAGED, /plugged in from files/));
});
