/**
 * mTLS between real data planes, certificates from one test root: HTTP/1.1,
 * HTTP/2 (ALPN h2), a WebSocket upgrade and a TCP CONNECT tunnel all cross
 * between the sidecars over TLS 1.3, and the callee's inbound listener sees
 * the caller's SPIFFE ID (its records carry it as the source identity, the
 * TLS channel shows both handshakes). PeerAuthentication modes per port
 * (STRICT, PERMISSIVE, DISABLE) against plaintext and mTLS callers; client
 * certificates that must be refused (foreign root, expired, none, TLS 1.2).
 * Secure naming, MUTUAL and the proxy without a certificate are in
 * mtls-origination.test.ts; rotation and handshake reuse in mtls-rotation.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import type { TlsHandshakeEvent } from '../../src/proxy/tls/tls-events.js';
import { rawRequest, startH2App, startTcpEchoApp, startWsEchoApp } from '../helpers/mtls-apps.js';
import { metricValue, MtlsMesh, MTLS_YAML, recordTap, tlsTap, type Tap } from '../helpers/mtls-mesh.js';
import { eventually } from '../helpers/proxy.js';
import { createTestCa, issueLeaf, spiffeId } from '../helpers/test-pki.js';


const API = 'api-v1.shop';
const H2 = 'h2web-v1.shop';
const DB = 'db-v1.shop';

let m: MtlsMesh;
let records: Tap<RequestRecord>;
let handshakes: Tap<TlsHandshakeEvent>;

before(async () => {
  records = recordTap();
  handshakes = tlsTap();
  m = await MtlsMesh.start({
    yaml: MTLS_YAML,
    caller: { workload: 'client', namespace: 'shop' },
    callerOptions: { upstreams: [{ host: 'db', port: 5432, localPort: 0 }] },
    apps: { [API]: startWsEchoApp, [H2]: startH2App, [DB]: startTcpEchoApp },
    calleeMode: 'PERMISSIVE',
  });
});

after(async () => {
  records.stop();
  handshakes.stop();
  await m?.close();
});

/** The callee's inbound record that `match` picks, once it is published. */
function inboundRecord(instance: string, match: (r: RequestRecord) => boolean = () => true): Promise<RequestRecord> {
  const node = m.callee(instance).snapshot.node.id;
  return eventually(() => records.items.find((r) => r.direction === 'inbound' && r.proxy === node && match(r)), 5_000,
    () => `inbound records of ${node}: ${JSON.stringify(records.items.filter((r) => r.proxy === node))}`);
}

function handshake(local: string, direction: 'inbound' | 'outbound', peer: string): Promise<TlsHandshakeEvent> {
  return eventually(() => handshakes.items.find((e) => e.ok && e.local === local && e.direction === direction && e.peer === peer), 5_000,
    () => `handshakes: ${JSON.stringify(handshakes.items)}`);
}

test('mtls: HTTP/1.1 between the sidecars is mTLS and the callee sees the caller SPIFFE ID', async () => {
  records.clear();
  handshakes.clear();
  const api = m.callee(API);
  const r = await m.client.call('http://api/hello');
  assert.equal(r.status, 200, r.text);
  const rec = await inboundRecord(API, (x) => x.path === '/hello');
  assert.equal(rec.sourceIdentity, m.callerIdentity, 'the inbound read the principal from the client certificate');
  const out = await handshake(m.callerIdentity, 'outbound', api.identity);
  assert.equal(out.alpn, 'http/1.1');
  assert.equal(out.peerSerial, api.leaf!.serial, 'the caller verified the callee certificate');
  const inb = await handshake(api.identity, 'inbound', m.callerIdentity);
  assert.equal(inb.peerSerial, m.callerLeaf!.serial);
});

test('mtls: an HTTP/2 cluster speaks h2 over mTLS (ALPN h2)', async () => {
  records.clear();
  handshakes.clear();
  const h2 = m.callee(H2);
  const r = await m.client.call('http://h2web:8080/two');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, `h2 ${H2} /two`);
  const rec = await inboundRecord(H2, (x) => x.path === '/two');
  assert.equal(rec.protocol, 'HTTP/2.0');
  assert.equal(rec.sourceIdentity, m.callerIdentity);
  assert.equal((await handshake(m.callerIdentity, 'outbound', h2.identity)).alpn, 'h2');
  assert.equal((await handshake(h2.identity, 'inbound', m.callerIdentity)).alpn, 'h2');
});

test('mtls: a WebSocket upgrade crosses over mTLS', async () => {
  records.clear();
  const ws = new WebSocket(`ws://${m.caller.addresses.outbound}/chat`, { headers: { host: 'api' }, handshakeTimeout: 5_000 });
  const got: string[] = [];
  ws.on('message', (d: Buffer) => got.push(d.toString()));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send('ping over tls');
  await eventually(() => (got.length >= 2 ? true : undefined), 5_000, () => `got ${JSON.stringify(got)}`);
  assert.deepEqual(got, [`hello ${API}`, 'ping over tls']);
  ws.close();
  const rec = await inboundRecord(API, (x) => x.path === '/chat');
  assert.equal(rec.status, 101);
  assert.equal(rec.sourceIdentity, m.callerIdentity);
});

test('mtls: a TCP tunnel (CONNECT) crosses over mTLS', async () => {
  records.clear();
  const port = Number(m.caller.addresses.upstreams!['db:5432']!.split(':')[1]);
  const s: Socket = connect({ host: '127.0.0.1', port });
  let echoed = '';
  s.on('data', (c: Buffer) => { echoed += c.toString(); });
  s.write('bytes through the tunnel\n');
  await eventually(() => (echoed.includes('\n') ? true : undefined), 5_000, () => `echoed ${JSON.stringify(echoed)}`);
  assert.equal(echoed, 'bytes through the tunnel\n');
  s.end();
  const rec = await inboundRecord(DB, (x) => x.protocol === 'TCP');
  assert.equal(rec.status, 200);
  assert.equal(rec.sourceIdentity, m.callerIdentity);
});

test('mtls: STRICT on every port closes plaintext connections at once; mTLS callers pass', async (t) => {
  const api = m.callee(API);
  m.setMode(API, 'STRICT');
  t.after(() => m.setMode(API, 'PERMISSIVE'));
  const before = await metricValue(api.proxy, 'trellis_proxy_mtls_refused_total', { reason: 'plaintext_on_strict' });
  const hits = api.app.hits;
  const plain = await rawRequest(api.inbound, 'api.shop');
  assert.equal(plain.text, '', 'no response to plaintext');
  assert.equal(api.app.hits, hits, 'the app saw nothing');
  assert.equal(await metricValue(api.proxy, 'trellis_proxy_mtls_refused_total', { reason: 'plaintext_on_strict' }), before + 1);
  const r = await m.client.call('http://api/strict');
  assert.equal(r.status, 200, r.text);
});

test('mtls: a STRICT port among PERMISSIVE ones refuses plaintext requests to it only', async (t) => {
  const api = m.callee(API);
  m.setMode(API, (port) => (port === 81 ? 'STRICT' : 'PERMISSIVE'));
  t.after(() => m.setMode(API, 'PERMISSIVE'));
  const hits = api.app.hits;
  const strict = await rawRequest(api.inbound, 'api.shop:81');
  assert.equal(strict.text, '', 'the connection is closed without an answer');
  assert.equal(api.app.hits, hits);
  const permissive = await rawRequest(api.inbound, 'api.shop');
  assert.match(permissive.text, /^HTTP\/1\.1 200 /);
  const viaMesh = await m.client.call('http://api:81/strict-port');
  assert.equal(viaMesh.status, 200, viaMesh.text);
});

test('mtls: PERMISSIVE accepts plaintext and mTLS', async () => {
  records.clear();
  const plain = await rawRequest(m.callee(API).inbound, 'api.shop', undefined, '/plain');
  assert.match(plain.text, /^HTTP\/1\.1 200 /);
  const viaMesh = await m.client.call('http://api/mutual');
  assert.equal(viaMesh.status, 200);
  assert.equal((await inboundRecord(API, (x) => x.path === '/plain')).sourceIdentity, undefined);
  assert.equal((await inboundRecord(API, (x) => x.path === '/mutual')).sourceIdentity, m.callerIdentity);
});

test('mtls: DISABLE takes plaintext and refuses mTLS', async (t) => {
  const api = m.callee(API);
  m.setMode(API, 'DISABLE');
  t.after(() => m.setMode(API, 'PERMISSIVE'));
  const plain = await rawRequest(api.inbound, 'api.shop');
  assert.match(plain.text, /^HTTP\/1\.1 200 /);
  const before = await metricValue(api.proxy, 'trellis_proxy_mtls_refused_total', { reason: 'mtls_on_disable' });
  const hits = api.app.hits;
  const r = await m.client.call('http://api/disabled');
  assert.equal(r.status, 503, r.text);
  assert.match(r.text, /reset/, 'the caller saw its connection closed');
  assert.equal(api.app.hits, hits);
  assert.ok(await metricValue(api.proxy, 'trellis_proxy_mtls_refused_total', { reason: 'mtls_on_disable' }) > before);
});

test('mtls: client certificates of a foreign root, expired ones and none are refused at the handshake', async () => {
  const api = m.callee(API);
  const foreign = await createTestCa('foreign root');
  const caller = spiffeId('shop', 'client');
  const cases = [
    { reason: 'untrusted', leaf: await issueLeaf(foreign, caller) },
    { reason: 'expired', leaf: await m.pki.issueExpired(caller) },
    { reason: 'no_certificate', leaf: undefined },
  ] as const;
  for (const c of cases) {
    const before = await metricValue(api.proxy, 'trellis_proxy_tls_handshake_failures_total', { direction: 'inbound', reason: c.reason });
    const hits = api.app.hits;
    const r = await rawRequest(api.inbound, 'api.shop', { ca: [m.pki.rootPem], ...(c.leaf ? { key: c.leaf.keyPem, cert: c.leaf.certChainPem } : {}) });
    assert.equal(r.text, '', `${c.reason}: no HTTP answer (${r.error ?? 'closed'})`);
    assert.equal(api.app.hits, hits, `${c.reason}: the app saw nothing`);
    const after = await metricValue(api.proxy, 'trellis_proxy_tls_handshake_failures_total', { direction: 'inbound', reason: c.reason });
    assert.equal(after, before + 1, `${c.reason} counted`);
  }
  // The same client with a good certificate gets through.
  const good = await m.pki.issue(caller);
  const ok = await rawRequest(api.inbound, 'api.shop', { ca: [m.pki.rootPem], key: good.keyPem, cert: good.certChainPem });
  assert.ok(ok.secured);
  assert.match(ok.text, /^HTTP\/1\.1 200 /);
});

test('mtls: the inbound listener speaks TLS 1.3 only', async () => {
  const api = m.callee(API);
  const leaf = await m.pki.issue(spiffeId('shop', 'client'));
  const r = await rawRequest(api.inbound, 'api.shop', { ca: [m.pki.rootPem], key: leaf.keyPem, cert: leaf.certChainPem, maxVersion: 'TLSv1.2' });
  assert.equal(r.secured, false, 'no TLS 1.2 handshake');
  assert.equal(r.text, '');
  assert.ok(r.error, 'the client saw the handshake fail');
});

test('mtls: a TLS client without ALPN may speak HTTP/1.1 or HTTP/2 (the preface is sniffed inside TLS)', async () => {
  records.clear();
  const api = m.callee(API);
  const leaf = await m.pki.issue(spiffeId('shop', 'outsider'));
  const creds = { ca: [m.pki.rootPem], key: leaf.keyPem, cert: leaf.certChainPem, checkServerIdentity: () => undefined };
  const h1 = await rawRequest(api.inbound, 'api.shop', creds, '/h1-no-alpn');
  assert.ok(h1.secured);
  assert.match(h1.text, /^HTTP\/1\.1 200 /);
  const [host, port] = api.inbound.split(':');
  const session = h2connect(`http://${api.inbound}`, { createConnection: () => tlsConnect({ host: host!, port: Number(port), ...creds }) });
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/h2-no-alpn', ':authority': 'api.shop' });
      req.once('response', (h) => resolve(Number(h[':status'])));
      req.once('error', reject);
      req.resume();
      req.end();
    });
    assert.equal(status, 200);
  } finally {
    session.close();
  }
  const h1rec = await inboundRecord(API, (x) => x.path === '/h1-no-alpn');
  const h2rec = await inboundRecord(API, (x) => x.path === '/h2-no-alpn');
  assert.equal(h1rec.protocol, 'HTTP/1.1');
  assert.equal(h2rec.protocol, 'HTTP/2.0');
  assert.equal(h1rec.sourceIdentity, leaf.spiffeId);
  assert.equal(h2rec.sourceIdentity, leaf.spiffeId);
});
