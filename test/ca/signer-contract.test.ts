/**
 * The contract every CA signer keeps, run against each kind of CA: the
 * managed root of a state directory, a plugged-in EC root and RSA root made
 * by openssl, and a plugged-in intermediate under an openssl root. Checked
 * with counterparts we did not write: `openssl verify` / `openssl x509`,
 * and a real TLS 1.3 handshake with mutual authentication over loopback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, type IssuedCertificate } from '../../src/ca/authority.js';
import { spiffeIdOf } from '../../src/ca/cert-info.js';
import { splitPem } from '../../src/ca/pem.js';
import { newKeyAndCsr } from '../../src/ca/workload-key.js';

const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/bank/sa/web`;
const API = `spiffe://${TD}/ns/bank/sa/accounts`;

const dir = mkdtempSync(join(tmpdir(), 'trellis-ca-contract-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
let n = 0;
const file = (name: string, text: string) => {
  const p = join(dir, `${n++}-${name}`);
  writeFileSync(p, text);
  return p;
};

/** An openssl-made CA (EC or RSA root, optionally with an intermediate below it) in `sub`. */
function opensslCa(sub: string, opts: { rsa?: boolean; intermediate?: boolean }): { certFile: string; keyFile: string; chainFile?: string } {
  const d = join(dir, sub);
  execFileSync('mkdir', ['-p', d]);
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(join(d, 'ext.cnf'), '[ca]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  if (opts.rsa) run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root.key', '-subj', '/O=Example/CN=Example RSA Root', '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root.pem');
  else {
    run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.key');
    run('req', '-x509', '-new', '-key', 'root.key', '-subj', '/O=Example/CN=Example Root', '-days', '30', '-sha256',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'root.pem');
  }
  chmodSync(join(d, 'root.key'), 0o600);
  if (!opts.intermediate) return { certFile: join(d, 'root.pem'), keyFile: join(d, 'root.key') };
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'int.key');
  chmodSync(join(d, 'int.key'), 0o600);
  run('req', '-new', '-key', 'int.key', '-subj', '/O=Example/CN=Example Intermediate', '-out', 'int.csr');
  run('x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-days', '20', '-sha256',
    '-extfile', 'ext.cnf', '-extensions', 'ca', '-out', 'int.pem');
  return { certFile: join(d, 'int.pem'), keyFile: join(d, 'int.key'), chainFile: join(d, 'root.pem') };
}

const SIGNERS: { name: string; intermediates: number; make: () => Promise<CertificateAuthority> }[] = [
  { name: 'managed root (state directory)', intermediates: 0, make: () => CertificateAuthority.loadOrCreate(join(dir, 'state'), { trustDomain: TD }) },
  { name: 'plugged-in EC root (openssl)', intermediates: 0, make: () => CertificateAuthority.fromFiles({ ...opensslCa('ec-root', {}), trustDomain: TD }) },
  { name: 'plugged-in RSA root (openssl)', intermediates: 0, make: () => CertificateAuthority.fromFiles({ ...opensslCa('rsa-root', { rsa: true }), trustDomain: TD }) },
  { name: 'plugged-in intermediate under an openssl root', intermediates: 1, make: () => CertificateAuthority.fromFiles({ ...opensslCa('int', { intermediate: true }), trustDomain: TD }) },
];

/** Runs one mutual-TLS exchange: the server and the client each report the peer identity they saw. */
async function mtls(server: { key: string; cert: string; ca: string[] }, client: { key: string; cert: string; ca: string[] }, expectServer: string) {
  const seenByServer: string[] = [];
  const refusedByServer: string[] = [];
  const srv = createServer({ ...server, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s: TLSSocket) => {
    seenByServer.push(spiffeIdOf(s.getPeerCertificate()) ?? '(none)');
    s.end('hello');
  });
  srv.on('tlsClientError', (e: Error) => refusedByServer.push(e.message));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    const result = await new Promise<{ data?: string; error?: string; protocol?: string | null; serverId?: string }>((resolve) => {
      let data = '';
      const sock = connect({
        host: '127.0.0.1', port, ...client, minVersion: 'TLSv1.3',
        // Secure naming: the server must be the identity we meant to call, whatever its DNS names.
        checkServerIdentity: (_h: string, cert: PeerCertificate) => (spiffeIdOf(cert) === expectServer ? undefined : new Error(`server is ${spiffeIdOf(cert)}, not ${expectServer}`)),
      });
      sock.on('data', (b: Buffer) => (data += b.toString()));
      sock.on('error', (e: Error) => resolve({ error: e.message }));
      sock.on('end', () => resolve({ data, protocol: sock.getProtocol(), serverId: spiffeIdOf(sock.getPeerCertificate()) }));
    });
    return { ...result, seenByServer, refusedByServer };
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

const foreign = CertificateAuthority.loadOrCreate(join(dir, 'foreign'), { trustDomain: TD });

for (const signer of SIGNERS) {
  describe(`CA signer contract: ${signer.name}`, () => {
    let ca: CertificateAuthority;
    let web: IssuedCertificate & { keyPem: string };
    let bundleFile: string;
    let t0: number;
    before(async () => {
      ca = await signer.make();
      t0 = Date.now();
      const req = await newKeyAndCsr(WEB);
      web = { ...(await ca.signCsr(req.csrPem, WEB)), keyPem: req.keyPem };
      bundleFile = file('bundle.pem', ca.trustBundle().join(''));
    });

    test('the chain is the leaf then the intermediates, without the root, and openssl verifies it against the trust bundle for both TLS purposes', () => {
      const chain = splitPem(web.chainPem);
      assert.equal(chain.length, 1 + signer.intermediates);
      assert.equal(chain[0], web.certPem);
      assert.ok(!chain.some((c) => ca.trustBundle().includes(c)), 'the root is not in the chain');
      assert.equal(ca.trustBundle().length, 1);
      const leaf = file('leaf.pem', web.certPem);
      const untrusted = signer.intermediates ? ['-untrusted', file('inter.pem', chain.slice(1).join(''))] : [];
      for (const purpose of ['sslserver', 'sslclient']) {
        assert.match(openssl('verify', '-purpose', purpose, '-CAfile', bundleFile, ...untrusted, leaf), /: OK$/m);
      }
    });

    test('the certificate carries the SPIFFE ID as its only name, serverAuth + clientAuth, digitalSignature + keyEncipherment, CA:FALSE, 24 h', () => {
      const text = openssl('x509', '-noout', '-text', '-in', file('leaf.pem', web.certPem));
      assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/bank\/sa\/web\s*\n/);
      assert.match(text, /Subject: *\n/, 'empty subject');
      assert.match(text, /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
      assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
      assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
      assert.match(text, /ASN1 OID: prime256v1/);
      assert.ok(Math.abs(web.notBefore.getTime() - (t0 - 60_000)) < 5_000, `notBefore ${web.notBefore.toISOString()} is about now - 60 s`);
      assert.ok(Math.abs(web.notAfter.getTime() - (t0 + 24 * 3600_000)) < 5_000, `notAfter ${web.notAfter.toISOString()} is about now + 24 h`);
      assert.equal(web.identity, WEB);
    });

    test('two certificates get different random serial numbers', async () => {
      const again = await ca.signCsr((await newKeyAndCsr(WEB)).csrPem, WEB);
      const serial = (pem: string) => openssl('x509', '-noout', '-serial', '-in', file('s.pem', pem)).trim();
      assert.notEqual(serial(again.certPem), serial(web.certPem));
    });

    test('a CSR asking for another SPIFFE ID, DNS names and a subject gets only the proved identity', async () => {
      const evilKey = file('evil.key', (await newKeyAndCsr(WEB)).keyPem);
      const csr = openssl('req', '-new', '-key', evilKey, '-subj', '/CN=admin/O=Evil',
        '-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin,DNS:bank.example.com');
      const issued = await ca.signCsr(csr, WEB);
      const text = openssl('x509', '-noout', '-text', '-in', file('leaf.pem', issued.certPem));
      assert.doesNotMatch(text, /admin|bank\.example\.com|Evil/);
      assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/bank\/sa\/web\s*\n/);
    });

    test('mutual TLS 1.3 on loopback succeeds with issued certificates, each side seeing the other SPIFFE ID', async () => {
      const api = await ca.issueServing({ identity: API, dnsNames: ['accounts.bank.svc.cluster.local'], ipAddresses: ['127.0.0.1'] });
      const r = await mtls({ key: api.keyPem, cert: api.chainPem, ca: ca.trustBundle() }, { key: web.keyPem, cert: web.chainPem, ca: ca.trustBundle() }, API);
      assert.equal(r.error, undefined, `handshake failed: ${r.error} / server: ${r.refusedByServer.join('; ')}`);
      assert.equal(r.data, 'hello');
      assert.equal(r.protocol, 'TLSv1.3');
      assert.equal(r.serverId, API);
      assert.deepEqual(r.seenByServer, [WEB]);
    });

    test('a client certificate from a foreign CA is refused by the server', async () => {
      const other = await foreign;
      const req = await newKeyAndCsr(WEB);
      const stranger = await other.signCsr(req.csrPem, WEB);
      const api = await ca.issueServing({ identity: API });
      const r = await mtls({ key: api.keyPem, cert: api.chainPem, ca: ca.trustBundle() }, { key: req.keyPem, cert: stranger.chainPem, ca: ca.trustBundle() }, API);
      assert.deepEqual(r.seenByServer, [], 'the server accepted no connection');
      assert.notEqual(r.data, 'hello');
      assert.equal(r.refusedByServer.length, 1, 'the server refused the handshake');
    });

    test('a server certificate from a foreign CA is refused by the client', async () => {
      const api = await (await foreign).issueServing({ identity: API });
      const r = await mtls({ key: api.keyPem, cert: api.chainPem, ca: [(await foreign).trustBundle()[0]!] }, { key: web.keyPem, cert: web.chainPem, ca: ca.trustBundle() }, API);
      assert.match(r.error ?? '', /unable to (get|verify)|self.signed|unknown ca/i);
      assert.deepEqual(r.seenByServer, []);
    });
  });
}
