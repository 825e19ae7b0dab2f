/**
 * Root rotation of the managed CA: old + new trusted, then old removed,
 * surviving restarts. Checked with openssl and with real mutual TLS between
 * a workload still on the old root and one already on the new.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, type ServingCertificate } from '../../src/ca/authority.js';
import { fingerprintOfRoot, spiffeIdOf } from '../../src/ca/cert-info.js';

const TD = 'cluster.local';
const A = `spiffe://${TD}/ns/shop/sa/a`;
const B = `spiffe://${TD}/ns/shop/sa/b`;
const dir = mkdtempSync(join(tmpdir(), 'trellis-ca-rot-'));
const state = join(dir, 'state');
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const file = (text: string) => {
  const p = join(dir, `f${n++}.pem`);
  writeFileSync(p, text);
  return p;
};
/** openssl verify's verdict: 'OK' or its error line. */
function verify(bundle: readonly string[], leaf: string): string {
  const r = spawnSync('openssl', ['verify', '-CAfile', file(bundle.join('')), file(leaf)], { encoding: 'utf8' });
  return r.status === 0 ? 'OK' : `${r.stdout}${r.stderr}`;
}

/** A mutual-TLS exchange: `server` and `client` present their certs; each trusts its own bundle. */
async function handshake(server: ServingCertificate, serverCa: string[], client: ServingCertificate, clientCa: string[]): Promise<{ ok: boolean; seen?: string; error?: string }> {
  const srv = createServer({ key: server.keyPem, cert: server.chainPem, ca: serverCa, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (s: TLSSocket) => s.end(spiffeIdOf(s.getPeerCertificate()) ?? '?'));
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    return await new Promise((resolve) => {
      let data = '';
      const sock = connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, key: client.keyPem, cert: client.chainPem, ca: clientCa, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
      sock.on('data', (b: Buffer) => (data += b));
      sock.on('error', (e: Error) => resolve({ ok: false, error: e.message }));
      sock.on('end', () => resolve(data ? { ok: true, seen: data } : { ok: false, error: 'closed without an answer' }));
    });
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

let ca: CertificateAuthority;
let oldRoot: string;
let oldCert: ServingCertificate;
before(async () => {
  ca = await CertificateAuthority.loadOrCreate(state, { trustDomain: TD });
  oldRoot = ca.trustBundle()[0]!;
  oldCert = await ca.issueServing({ identity: A });
  await ca.rotateRoot();
});

test('after rotateRoot the bundle holds the new root first and the old one, and new certificates come from the new root', async () => {
  const bundle = ca.trustBundle();
  assert.equal(bundle.length, 2);
  assert.equal(bundle[1], oldRoot);
  assert.notEqual(bundle[0], oldRoot);
  assert.equal(ca.rootFingerprint, fingerprintOfRoot(bundle[0]!));
  const fresh = await ca.issueServing({ identity: B });
  assert.equal(verify([bundle[0]!], fresh.certPem), 'OK', 'signed by the new root');
  assert.notEqual(verify([oldRoot], fresh.certPem), 'OK', 'not by the old one');
});

test('a certificate from the old root still verifies against the bundle (openssl)', () => {
  assert.equal(verify(ca.trustBundle(), oldCert.certPem), 'OK');
});

test('during the rotation a workload on the old root and one on the new talk mutual TLS both ways', async () => {
  const fresh = await ca.issueServing({ identity: B });
  assert.deepEqual(await handshake(fresh, ca.trustBundle(), oldCert, ca.trustBundle()), { ok: true, seen: A });
  assert.deepEqual(await handshake(oldCert, ca.trustBundle(), fresh, ca.trustBundle()), { ok: true, seen: B });
});

test('the rotation survives a restart: same signing root, old root still in the bundle (ca/previous-roots.pem)', async () => {
  assert.ok(existsSync(join(state, 'ca', 'previous-roots.pem')));
  const restarted = await CertificateAuthority.loadOrCreate(state, { trustDomain: TD });
  assert.deepEqual(restarted.trustBundle(), ca.trustBundle());
  assert.equal(restarted.rootFingerprint, ca.rootFingerprint);
});

test('dropPreviousRoots removes the old root, across restarts too; then the old certificate is refused', async () => {
  const fresh = await ca.issueServing({ identity: B });
  await ca.dropPreviousRoots();
  assert.deepEqual(ca.trustBundle(), [ca.trustBundle()[0]]);
  assert.ok(!ca.trustBundle().includes(oldRoot));
  const restarted = await CertificateAuthority.loadOrCreate(state, { trustDomain: TD });
  assert.deepEqual(restarted.trustBundle(), ca.trustBundle());
  assert.match(verify(ca.trustBundle(), oldCert.certPem), /unable to get local issuer certificate/);
  const r = await handshake(fresh, ca.trustBundle(), oldCert, ca.trustBundle());
  assert.equal(r.ok, false, 'the server refuses the old client certificate');
  assert.deepEqual(await handshake(fresh, ca.trustBundle(), await ca.issueServing({ identity: A }), ca.trustBundle()), { ok: true, seen: A });
});
