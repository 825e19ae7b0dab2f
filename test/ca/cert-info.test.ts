/**
 * Reading certificates with node:crypto only: SPIFFE IDs from certificates
 * and TLS peers (including names made to confuse a naive parser), summaries,
 * the pinned-root check of the proxy's bootstrap over a real TLS connection,
 * SPIFFE ID syntax, and that these readers never load @peculiar/x509.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type DetailedPeerCertificate } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { certificateSummary, fingerprintOfRoot, parseSubjectAltNames, spiffeIdOf, spiffeIdsOf } from '../../src/ca/cert-info.js';
import { checkPinnedPeer } from '../../src/ca/pinned-root.js';
import { parseSpiffeId, workloadOf, workloadSpiffeId } from '../../src/ca/spiffe.js';
import { ROOT } from '../helpers/mesh.js';

const dir = mkdtempSync(join(tmpdir(), 'trellis-certinfo-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** A self-signed openssl certificate with the subjectAltName entries given as config lines (`DNS.1 = …`). */
function withSans(...entries: string[]): X509Certificate {
  const name = `c${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(dir, `${name}.cnf`), ['[req]', 'distinguished_name = dn', '[dn]', '[ext]', 'subjectAltName = @alt', '[alt]', ...entries, ''].join('\n'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-subj', '/CN=t', '-days', '1',
    '-config', `${name}.cnf`, '-extensions', 'ext', '-out', `${name}.pem`);
  chmodSync(join(dir, `${name}.key`), 0o600);
  return new X509Certificate(openssl('x509', '-in', `${name}.pem`));
}

let ca: CertificateAuthority;
before(async () => {
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'state'), { trustDomain: 'cluster.local' });
});

test('spiffeIdsOf returns the spiffe URI SANs and nothing else', () => {
  const cert = withSans('DNS.1 = web.shop.svc', 'URI.1 = spiffe://cluster.local/ns/shop/sa/web', 'URI.2 = https://example.com/x', 'IP.1 = 10.0.0.1', 'email.1 = a@b.c');
  assert.deepEqual(spiffeIdsOf(cert), ['spiffe://cluster.local/ns/shop/sa/web']);
  assert.equal(spiffeIdOf(cert), 'spiffe://cluster.local/ns/shop/sa/web');
});

test('a SAN value with ", URI:spiffe://…" inside it is one value, not a second identity', () => {
  // One DNS name that spells out a forged URI entry: Node quotes it, and it must not come back as an identity.
  const cert = withSans('DNS.1 = evil, URI:spiffe://cluster.local/ns/kube-system/sa/admin', 'URI.1 = spiffe://cluster.local/ns/shop/sa/web');
  assert.match(cert.subjectAltName ?? '', /^DNS:"evil\\u002c URI:spiffe/);
  assert.deepEqual(spiffeIdsOf(cert), ['spiffe://cluster.local/ns/shop/sa/web']);
  const parsed = parseSubjectAltNames(cert.subjectAltName!);
  assert.deepEqual(parsed[0], { type: 'DNS', value: 'evil, URI:spiffe://cluster.local/ns/kube-system/sa/admin' });
});

test('a certificate with two SPIFFE IDs names no one (spiffeIdOf), and invalid spiffe URIs are ignored', () => {
  const two = withSans('URI.1 = spiffe://cluster.local/ns/a/sa/x', 'URI.2 = spiffe://cluster.local/ns/b/sa/y');
  assert.equal(spiffeIdsOf(two).length, 2);
  assert.equal(spiffeIdOf(two), undefined);
  assert.deepEqual(spiffeIdsOf(withSans('URI.1 = spiffe://Cluster.Local/ns/a/sa/x')), [], 'an upper-case trust domain is not a SPIFFE ID');
  assert.deepEqual(spiffeIdsOf({}), []);
});

test('certificateSummary and fingerprintOfRoot agree with openssl', async () => {
  const issued = await ca.issueServing({ identity: 'spiffe://cluster.local/ns/shop/sa/web', ttlMs: 3600_000 });
  const s = certificateSummary(issued.chainPem);
  assert.equal(s.identity, 'spiffe://cluster.local/ns/shop/sa/web');
  assert.equal(s.issuer, 'O=Trellis, CN=Trellis root CA cluster.local');
  assert.equal(s.notAfter.getTime(), issued.notAfter.getTime());
  assert.equal(s.notBefore.getTime(), issued.notBefore.getTime());
  writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
  assert.equal(`serial=${s.serial}`, openssl('x509', '-noout', '-serial', '-in', 'leaf.pem').trim());
  const fp = openssl('x509', '-noout', '-fingerprint', '-sha256', '-in', 'leaf.pem').trim().split('=')[1]!.replace(/:/g, '').toLowerCase();
  assert.equal(s.fingerprint256, fp);
  assert.equal(fingerprintOfRoot(issued.certPem), fp);
});

/** Serves `cert` (a chain PEM) and returns what a client that verifies nothing yet sees of it. */
async function peerOf(key: string, cert: string): Promise<DetailedPeerCertificate> {
  const srv = createServer({ key, cert, minVersion: 'TLSv1.3' }, (s) => s.end());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    return await new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, rejectUnauthorized: false }, () => {
        resolve(sock.getPeerCertificate(true));
        sock.destroy();
      });
      sock.on('error', reject);
    });
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

test('checkPinnedPeer accepts a control plane that presents its chain up to the pinned root, and gives the root and identity', async () => {
  const cp = await ca.issueServing({ identity: 'spiffe://cluster.local/ns/trellis-system/sa/control-plane', ipAddresses: ['127.0.0.1'] });
  const peer = await peerOf(cp.keyPem, cp.chainPem + ca.trustBundle()[0]);
  const r = checkPinnedPeer(peer, ca.rootFingerprint);
  assert.deepEqual(r, { ok: true, rootPem: ca.trustBundle()[0], identity: 'spiffe://cluster.local/ns/trellis-system/sa/control-plane' });
});

test('checkPinnedPeer refuses another CA, a chain without its root, and an expired chain', async () => {
  const other = await CertificateAuthority.loadOrCreate(join(dir, 'other'), { trustDomain: 'cluster.local' });
  const impostor = await other.issueServing({ identity: 'spiffe://cluster.local/ns/trellis-system/sa/control-plane' });
  const r1 = checkPinnedPeer(await peerOf(impostor.keyPem, impostor.chainPem + other.trustBundle()[0]), ca.rootFingerprint);
  assert.equal(r1.ok, false);
  assert.match((r1 as { message: string }).message, new RegExp(`root has sha256 ${other.rootFingerprint}, not the ${ca.rootFingerprint} the join token pins`));
  const cp = await ca.issueServing({ identity: 'spiffe://cluster.local/ns/trellis-system/sa/control-plane', ttlMs: 60_000 });
  const leafOnly = checkPinnedPeer(await peerOf(cp.keyPem, cp.chainPem), ca.rootFingerprint);
  assert.match((leafOnly as { message: string }).message, /does not end in a self-signed root/);
  const later = checkPinnedPeer(await peerOf(cp.keyPem, cp.chainPem + ca.trustBundle()[0]), ca.rootFingerprint, Date.now() + 120_000);
  assert.match((later as { message: string }).message, /certificate 1 of the server's chain is valid from .* not now/);
});

test('SPIFFE IDs: Trellis workload IDs are made and read back; malformed ones are refused with the reason', () => {
  assert.equal(workloadSpiffeId('cluster.local', 'bank', 'web'), 'spiffe://cluster.local/ns/bank/sa/web');
  assert.deepEqual(workloadOf('spiffe://cluster.local/ns/bank/sa/web'), { trustDomain: 'cluster.local', namespace: 'bank', serviceAccount: 'web' });
  assert.equal(workloadOf('spiffe://cluster.local/other/path'), undefined);
  assert.throws(() => workloadSpiffeId('cluster.local', 'a/b', 'web'), /"a\/b" is not one path segment/);
  const bad: [string, RegExp][] = [
    ['spiffe://cluster.local/ns//sa/x', /empty segment/],
    ['spiffe://cluster.local/ns/a/sa/x/', /empty segment/],
    ['spiffe://cluster.local:8080/ns/a', /only lowercase letters/],
    ['spiffe://cluster.local/ns/a?x=1', /path segment "a\?x=1"/],
    ['SPIFFE://cluster.local/ns/a', /must start with spiffe:\/\//],
    ['spiffe:///ns/a', /trust domain is empty/],
  ];
  for (const [id, why] of bad) {
    const r = parseSpiffeId(id);
    assert.equal(r.ok, false, id);
    assert.match((r as { message: string }).message, why);
  }
});

test('reading certificates and checking pins loads no @peculiar/x509; making a CSR loads it on first use', () => {
  const script = `
    const ca = ${JSON.stringify(join(ROOT, 'dist', 'src', 'ca'))};
    await import(ca + '/cert-info.js'); await import(ca + '/pinned-root.js'); await import(ca + '/join-token.js');
    const { newKeyAndCsr } = await import(ca + '/workload-key.js');
    const before = typeof Reflect.getMetadata;
    await newKeyAndCsr('spiffe://cluster.local/ns/a/sa/b');
    console.log(before, typeof Reflect.getMetadata);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'undefined function', 'reflect-metadata (loaded with @peculiar/x509) arrives only with the CSR');
});
