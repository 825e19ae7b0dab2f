/**
 * The caller's side of mTLS, with real data planes and TLS servers: secure
 * naming (a server with a valid certificate for another identity is refused,
 * 503 with the reason), the proxy without a certificate (plaintext for now —
 * the transition of issue 6 — then mTLS from the first certificate on; or a
 * 503 when told to refuse), a certificate without a trust bundle, MUTUAL
 * with the rule's certificate files, SIMPLE to a server outside the
 * mesh (public roots, the SNI of the rule), and what setCertificate and
 * setTrustBundle refuse.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import type { Cluster, Snapshot, UpstreamTls } from '../../src/protocol/snapshot.js';
import { metricValue, MtlsMesh, MTLS_YAML, recordTap, type Tap } from '../helpers/mtls-mesh.js';
import { Client, eventually, startApp, startProxy, withEndpoints } from '../helpers/proxy.js';
import { createTestCa, issueLeaf, spiffeId } from '../helpers/test-pki.js';

const API = 'api-v1.shop';
const H2 = 'h2web-v1.shop';
const API_80 = 'outbound|80||api.shop.svc.cluster.local';

let m: MtlsMesh;
let records: Tap<RequestRecord>;

before(async () => {
  records = recordTap();
  m = await MtlsMesh.start({ yaml: MTLS_YAML, caller: { workload: 'client', namespace: 'shop' }, calleeMode: 'PERMISSIVE' });
});

after(async () => {
  records.stop();
  await m?.close();
});

function inboundRecord(path: string): Promise<RequestRecord> {
  const node = m.callee(API).snapshot.node.id;
  return eventually(() => records.items.find((r) => r.direction === 'inbound' && r.proxy === node && r.path === path), 5_000,
    () => `inbound records: ${JSON.stringify(records.items.filter((r) => r.proxy === node).map((r) => r.path))}`);
}

function outboundRecord(path: string): Promise<RequestRecord> {
  return eventually(() => records.items.find((r) => r.direction === 'outbound' && r.path === path), 5_000, () => 'no outbound record');
}

/** The caller's snapshot with the api cluster's tls replaced. */
const withApiTls = (tls: UpstreamTls) => (s: Snapshot): Snapshot => ({
  ...s,
  clusters: s.clusters.map((c: Cluster) => (c.name === API_80 ? { ...c, tls } : c)),
});

/** A data plane serving `instance`'s snapshot whose certificate names someone else (same root: the chain is valid). */
async function startImpostor(instance = API) {
  const app = await startApp('impostor');
  const proxy = await startProxy({ mode: 'sidecar', appPort: app.port }, m.callee(instance).snapshot);
  await m.certify(proxy, spiffeId('shop', 'impostor'));
  const [address, port] = proxy.addresses.inbound!.split(':');
  const endpoint = { address: address!, port: Number(port), health: 'HEALTHY' as const };
  return { app, proxy, endpoint, close: async () => { await proxy.close(100); await app.close(); } };
}

const NAMING = /secure naming: server 127\.0\.0\.1:\d+ presented spiffe:\/\/cluster\.local\/ns\/shop\/sa\/impostor, expected one of spiffe:\/\/cluster\.local\/ns\/shop\/sa\//;

test('secure naming: a server with a valid certificate for another identity is refused, 503 with the reason', async (t) => {
  const impostor = await startImpostor();
  const h2Impostor = await startImpostor(H2);
  t.after(async () => { await impostor.close(); await h2Impostor.close(); });
  m.applyCaller((s) => withEndpoints(s, { [API]: impostor.endpoint, [H2]: h2Impostor.endpoint }));
  t.after(() => m.applyCaller((s) => s));
  const before = await metricValue(m.caller, 'trellis_proxy_tls_handshake_failures_total', { direction: 'outbound', reason: 'secure_naming' });
  const r = await m.client.call('http://api/naming');
  assert.equal(r.status, 503, r.text);
  assert.match(r.text, NAMING);
  assert.match(r.text, /expected one of spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api\b/);
  // The same check on every kind of connection: HTTP/2 sessions and WebSocket upgrades.
  const h2 = await m.client.call('http://h2web:8080/naming');
  assert.equal(h2.status, 503, h2.text);
  assert.match(h2.text, /expected one of spiffe:\/\/cluster\.local\/ns\/shop\/sa\/h2web\b/);
  const ws = await wsRefusal('/naming-ws');
  assert.equal(ws.status, 503, ws.body);
  assert.match(ws.body, NAMING);
  assert.equal(impostor.app.hits + h2Impostor.app.hits, 0, 'no request reached an impostor');
  assert.ok(await metricValue(m.caller, 'trellis_proxy_tls_handshake_failures_total', { direction: 'outbound', reason: 'secure_naming' }) >= before + 3);
});

/** A WebSocket handshake through the caller to api that must be answered without switching: its status and body. */
function wsRefusal(path: string): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(`ws://${m.caller.addresses.outbound}${path}`, { headers: { host: 'api' }, handshakeTimeout: 5_000 });
  return new Promise((resolve, reject) => {
    ws.once('open', () => { ws.terminate(); reject(new Error('the handshake succeeded')); });
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.once('end', () => { req.destroy(); resolve({ status: res.statusCode ?? 0, body }); });
    });
  });
}

test('secure naming: the refusal is a connect failure (UF), retried as one (URX once the retries are spent)', async (t) => {
  const impostor = await startImpostor();
  t.after(() => impostor.close());
  m.applyCaller((s) => withEndpoints(s, { [API]: impostor.endpoint }));
  t.after(() => m.applyCaller((s) => s));
  records.clear();
  const r = await m.client.call('http://api/naming-flag');
  assert.equal(r.status, 503);
  assert.deepEqual((await outboundRecord('/naming-flag')).responseFlags, ['UF', 'URX']);
});

test('a data plane made with mtlsWithoutCertificate plaintext: ISTIO_MUTUAL is plaintext until the first certificate, then mTLS', async (t) => {
  const dp = await startProxy({ mode: 'sidecar' }, m.snapshot);
  const client = new Client(dp.addresses.outbound!);
  t.after(async () => { await client.close(); await dp.close(100); });
  records.clear();
  const plain = await client.call('http://api/before-cert');
  assert.equal(plain.status, 200, plain.text);
  assert.equal((await inboundRecord('/before-cert')).sourceIdentity, undefined, 'plaintext: no peer identity');
  await m.certify(dp, m.callerIdentity);
  const mutual = await client.call('http://api/after-cert');
  assert.equal(mutual.status, 200, mutual.text);
  assert.equal((await inboundRecord('/after-cert')).sourceIdentity, m.callerIdentity, 'the pool moved to mTLS');
});

test('no certificate yet, told to refuse: 503 with the reason', async (t) => {
  const dp = await startProxy({ mode: 'sidecar', mtlsWithoutCertificate: 'refuse' }, m.snapshot);
  const client = new Client(dp.addresses.outbound!);
  t.after(async () => { await client.close(); await dp.close(100); });
  const hits = m.callee(API).app.hits;
  const r = await client.call('http://api/no-cert');
  assert.equal(r.status, 503, r.text);
  assert.match(r.text, /this proxy has no workload certificate yet/);
  assert.equal(m.callee(API).app.hits, hits);
});

test('a certificate without a trust bundle trusts no server: 503', async (t) => {
  const dp = await startProxy({ mode: 'sidecar' }, m.snapshot);
  const client = new Client(dp.addresses.outbound!);
  t.after(async () => { await client.close(); await dp.close(100); });
  dp.setCertificate(await m.pki.issue(m.callerIdentity));
  const r = await client.call('http://api/no-bundle');
  assert.equal(r.status, 503, r.text);
  assert.match(r.text, /not signed by a root of the trust bundle/);
});

/** An HTTPS server outside the mesh with a certificate of a private root, asking for client certificates of another private root. */
async function externalServer(t: { after(f: () => unknown): void }, requireClient: boolean) {
  const serverCa = await createTestCa('private web root');
  const clientCa = await createTestCa('private client root');
  const leaf = await issueLeaf(serverCa, 'https://api.example.test/');
  const clients: (string | undefined)[] = [];
  const server = createHttpsServer({ key: leaf.keyPem, cert: leaf.certChainPem, ca: clientCa.certPem, requestCert: requireClient, rejectUnauthorized: requireClient }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    clients.push(peer?.subjectaltname);
    res.end(`external ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  const dir = mkdtempSync(join(tmpdir(), 'trellis-mutual-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const client = await issueLeaf(clientCa, 'spiffe://cluster.local/ns/shop/sa/web');
  const file = (name: string, text: string) => { const f = join(dir, name); writeFileSync(f, text, { mode: 0o600 }); return f; };
  return {
    port: (server.address() as AddressInfo).port, clients,
    ca: file('server-root.pem', serverCa.certPem), cert: file('client.pem', client.certChainPem), key: file('client-key.pem', client.keyPem), dir,
  };
}

test('MUTUAL: the client certificate and key files the rule names are presented, and the server is verified with its caCertificates', async (t) => {
  const x = await externalServer(t, true);
  const at = { [API]: { address: '127.0.0.1', port: x.port, health: 'HEALTHY' as const } };
  m.applyCaller((s) => withEndpoints(withApiTls({ mode: 'MUTUAL', sni: 'api.example.test', subjectAltNames: ['https://api.example.test/'], caCertificates: x.ca, clientCertificate: x.cert, privateKey: x.key })(s), at));
  t.after(() => m.applyCaller((s) => s));
  const r = await m.client.call('http://api/mutual');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, 'external /mutual');
  assert.deepEqual(x.clients, ['URI:spiffe://cluster.local/ns/shop/sa/web'], 'the server saw the client certificate of the rule');
  // Without the rule's CA the private server root is refused; a key file that cannot be read is named.
  m.applyCaller((s) => withEndpoints(withApiTls({ mode: 'MUTUAL', sni: 'api.example.test', subjectAltNames: ['https://api.example.test/'], clientCertificate: x.cert, privateKey: x.key })(s), at));
  const noCa = await m.client.call('http://api/mutual-no-ca');
  assert.equal(noCa.status, 503, noCa.text);
  m.applyCaller((s) => withEndpoints(withApiTls({ mode: 'MUTUAL', sni: 'api.example.test', subjectAltNames: ['https://api.example.test/'], caCertificates: x.ca, clientCertificate: x.cert, privateKey: join(x.dir, 'gone.pem') })(s), at));
  const gone = await m.client.call('http://api/mutual-gone');
  assert.equal(gone.status, 503, gone.text);
  assert.match(gone.text, /TLS mode MUTUAL to 127\.0\.0\.1:\d+: cannot read privateKey .*gone\.pem: ENOENT/);
  assert.equal(x.clients.length, 1, 'no request reached the server without the right setup');
});

test('SIMPLE with caCertificates: a server of a private root is trusted through the rule\'s CA file', async (t) => {
  const x = await externalServer(t, false);
  m.applyCaller((s) => withEndpoints(withApiTls({ mode: 'SIMPLE', sni: 'api.example.test', subjectAltNames: ['https://api.example.test/'], caCertificates: x.ca })(s), { [API]: { address: '127.0.0.1', port: x.port, health: 'HEALTHY' } }));
  t.after(() => m.applyCaller((s) => s));
  const r = await m.client.call('http://api/simple-ca');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, 'external /simple-ca');
});

test('SIMPLE: TLS with the rule\'s SNI and the public roots; a server of a private root is refused', async (t) => {
  const ca = await createTestCa('private web root');
  const leaf = await issueLeaf(ca, 'https://api.example.test/');
  const sni: string[] = [];
  const server: TlsServer = createTlsServer({
    key: leaf.keyPem, cert: leaf.certChainPem,
    SNICallback: (name, cb) => { sni.push(name); cb(null); },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  m.applyCaller((s) => withEndpoints(withApiTls({ mode: 'SIMPLE', sni: 'api.example.test', subjectAltNames: [] })(s), { [API]: { address: '127.0.0.1', port, health: 'HEALTHY' } }));
  t.after(() => m.applyCaller((s) => s));
  const r = await m.client.call('http://api/simple');
  assert.equal(r.status, 503, r.text);
  assert.match(r.text, /not signed by a root of the trust bundle|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  assert.ok(sni.includes('api.example.test'), `the server saw SNI ${JSON.stringify(sni)}`);
});

test('setCertificate and setTrustBundle refuse what cannot be used, and keep what is in use', async () => {
  const dp = m.caller;
  const inUse = dp.certificate!;
  assert.equal(inUse.serial, m.callerLeaf!.serial);
  assert.equal(inUse.spiffeId, m.callerIdentity);
  const a = await m.pki.issue(m.callerIdentity);
  const b = await m.pki.issue(m.callerIdentity);
  assert.throws(() => dp.setCertificate({ keyPem: a.keyPem, certChainPem: b.certChainPem }), /the workload key does not match the certificate/);
  const noSpiffe = await issueLeaf(await createTestCa(), 'https://not-a-workload.example/');
  assert.throws(() => dp.setCertificate(noSpiffe), /has no spiffe:\/\/ URI SAN/);
  assert.throws(() => dp.setCertificate({ keyPem: a.keyPem, certChainPem: 'not pem' }), /has no PEM certificate/);
  assert.throws(() => dp.setTrustBundle(['garbage']), /trust bundle entry 0 has no PEM certificate/);
  assert.equal(dp.certificate!.serial, inUse.serial, 'the certificate in use stayed');
  const r = await m.client.call('http://api/still-fine');
  assert.equal(r.status, 200, r.text);
});
