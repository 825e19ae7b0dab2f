/**
 * VirtualService `tls` rules end to end, TLS never terminated by the mesh:
 * real TLS clients (node:tls, curl) on a per-upstream local port of the
 * caller's sidecar, which peeks the ClientHello's SNI and routes by it; the
 * raw TLS bytes then ride the mesh's mTLS tunnel (CONNECT, both sidecars
 * certified by the project's CA) to the callee's sidecar and its HTTPS app,
 * whose certificate (a test root, DNS names) the client verifies. Also a
 * ServiceEntry's external TLS host reached directly, an SNI no rule names
 * (PASSTHROUGH under ALLOW_ANY, closed under REGISTRY_ONLY), a ClientHello
 * dribbled over several TCP segments, garbage and a stalled hello.
 */
import 'reflect-metadata';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Server as HttpServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import { compile } from '../../src/compile/index.js';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';
import { MtlsMesh, recordTap, type Tap } from '../helpers/mtls-mesh.js';
import { eventually, tally, withEndpoints, withMesh, type App, type EndpointPatch } from '../helpers/proxy.js';
import { createTestCa, type TestCa } from '../helpers/test-pki.js';

const YAML = [
  k8sService('secure', 'shop', { name: 'https', port: 443, targetPort: 8443 }),
  k8sDeployment('secure-v1', 'shop', 'secure', { labels: { version: 'v1' } }),
  k8sDeployment('secure-v2', 'shop', 'secure', { labels: { version: 'v2' } }),
  k8sDeployment('client', 'shop', 'client'),
].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: secure, namespace: shop }
spec:
  host: secure
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: secure, namespace: shop }
spec:
  hosts: [secure, "*.secure.test"]
  tls:
  - match: [{ sniHosts: [v2.secure.test], sourceLabels: { app: nobody } }]
    route: [{ destination: { host: secure, subset: v1 } }]
  - match: [{ sniHosts: [v2.secure.test, secure] }]
    route: [{ destination: { host: secure, subset: v2 } }]
  - match: [{ sniHosts: ["*.secure.test"] }]
    route: [{ destination: { host: secure, subset: v1 } }]
  - match: [{ sniHosts: [split.secure.test] }]
    route:
    - { destination: { host: secure, subset: v1 }, weight: 50 }
    - { destination: { host: secure, subset: v2 }, weight: 50 }
`;

const externalEntry = (port: number) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: shop }
spec:
  hosts: [api.external.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.1 }]
`;

/** A server certificate for DNS names, signed by the test root. */
async function serverCert(ca: TestCa, names: readonly string[]): Promise<{ key: string; cert: string }> {
  const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject: `CN=${names[0]}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: 'dns' as const, value: n }))),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const key = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`;
  return { key, cert: cert.toString('pem') + '\n' };
}

/** An HTTPS app answering `{app, sni}`: who served, and the SNI it saw. */
async function startHttpsApp(name: string, tls: { key: string; cert: string }): Promise<App> {
  const server: HttpsServer = createHttpsServer({ ...tls }, (req, res) => {
    app.hits++;
    const body = JSON.stringify({ app: name, sni: (req.socket as TLSSocket).servername || null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const app: App = {
    name, hits: 0, port: (server.address() as AddressInfo).port, server: server as unknown as HttpServer,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  return app;
}

let ca: TestCa;
let dir: string;
let external: App;
let mesh: MtlsMesh;
let full: Snapshot;
let tap: Tap<RequestRecord>;
const logs: string[] = [];
const local: Record<string, number> = {};

before(async () => {
  ca = await createTestCa('tls routes test root');
  dir = mkdtempSync(join(tmpdir(), 'trellis-tls-routes-'));
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  const meshCert = await serverCert(ca, ['secure.shop.svc.cluster.local', 'secure', '*.secure.test', '*.x.secure.test']);
  external = await startHttpsApp('external', await serverCert(ca, ['api.external.test']));
  const q = external.port;
  const upstreams = [['secure', 443], ['api.external.test', q], ['127.0.0.1', q]] as const;
  mesh = await MtlsMesh.start({
    yaml: YAML,
    caller: { workload: 'client', namespace: 'shop' },
    apps: { 'secure-v1.shop': (i) => startHttpsApp(i, meshCert), 'secure-v2.shop': (i) => startHttpsApp(i, meshCert) },
    callerOptions: { upstreams: upstreams.map(([host, port]) => ({ host, port, localPort: 0 })), log: (l) => logs.push(l), limits: { headersTimeoutMs: 1000 } },
  });
  for (const [host, port] of upstreams) local[`${host}:${port}`] = Number(mesh.caller.addresses.upstreams![`${host}:${port}`]!.split(':')[1]);
  // The caller's snapshot with the ServiceEntry of the external host, mesh endpoints filled in.
  const m = meshFromYaml(YAML + externalEntry(q));
  const patch: Record<string, EndpointPatch> = {};
  for (const c of mesh.callees.values()) patch[c.instance] = { address: '127.0.0.1', port: Number(c.inbound.split(':')[1]), health: 'HEALTHY' };
  full = withEndpoints(compile(m.config, m.registry, { workload: 'client', namespace: 'shop' }), patch);
  assert.deepEqual(mesh.caller.apply(full), { ok: true });
  tap = recordTap();
});

after(async () => {
  tap?.stop();
  await mesh?.close();
  await external?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Writes the first chunk it is given (the ClientHello) in pieces of `size` bytes, `gapMs` apart; the rest as it comes. */
class Dribble extends Duplex {
  #first = true;
  constructor(readonly raw: Socket, readonly size: number, readonly gapMs: number) {
    super();
    raw.on('data', (c: Buffer) => { this.push(c); });
    raw.once('end', () => this.push(null));
    raw.on('error', (e) => this.destroy(e));
  }
  override _read(): void { /* pushed as it arrives */ }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (!this.#first) { this.raw.write(chunk, cb); return; }
    this.#first = false;
    let at = 0;
    const next = () => {
      if (at >= chunk.length) { cb(); return; }
      this.raw.write(chunk.subarray(at, at + this.size));
      at += this.size;
      setTimeout(next, this.gapMs);
    };
    next();
  }
  override _final(cb: () => void): void { this.raw.end(); cb(); }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void { this.raw.destroy(); cb(err); }
}

interface Answer { readonly app?: string; readonly sni?: string | null; readonly error?: string; readonly closedEmpty?: boolean }

/**
 * One HTTPS request over TLS to a local port: `servername` as SNI (none when
 * undefined); with `verify`, the server's certificate must chain to the test
 * root and carry that name.
 */
function call(upstream: string, o: { servername?: string; verify?: boolean; dribble?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const raw = connect({ host: '127.0.0.1', port: local[upstream]!, noDelay: true });
    raw.on('error', () => undefined);
    const verify = o.verify === true;
    const s = tlsConnect({
      socket: o.dribble ? new Dribble(raw, 60, 25) : raw,
      ...(o.servername !== undefined ? { servername: o.servername } : {}),
      ca: [ca.certPem],
      rejectUnauthorized: verify,
    });
    let text = '';
    let secured = false;
    let error: string | undefined;
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.once('secureConnect', () => { secured = true; s.write(`GET / HTTP/1.1\r\nhost: ${o.servername ?? 'x'}\r\nconnection: close\r\n\r\n`); });
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      // The whole response is here: done (a dribbling socket would not see the close on its own).
      const end = text.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(text.slice(0, end));
      if (end > 0 && len && text.length >= end + 4 + Number(len[1])) s.destroy();
    });
    s.on('error', (e: Error & { code?: string }) => { error = e.code ?? e.message; });
    s.once('close', () => {
      clearTimeout(timer);
      raw.destroy();
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      if (!secured) { resolve({ error: error ?? 'closed', closedEmpty: text === '' }); return; }
      try { resolve(JSON.parse(body) as Answer); } catch { resolve({ error: `not JSON: ${JSON.stringify(text.slice(0, 200))}` }); }
    });
  });
}

const outboundRecord = (from: number, pred: (r: RequestRecord) => boolean = () => true) =>
  eventually(() => tap.items.slice(from).find((r) => r.direction === 'outbound' && r.protocol === 'TCP' && pred(r)), 5000, () => JSON.stringify(tap.items.slice(from)));

test('an exact SNI picks its rule (one whose sourceLabels exclude the caller is passed over); TLS rides mTLS between the sidecars', async () => {
  const from = tap.items.length;
  const a = await call('secure:443', { servername: 'v2.secure.test', verify: true });
  assert.deepEqual(a, { app: 'secure-v2.shop', sni: 'v2.secure.test' }, 'the app itself terminated TLS and saw the SNI');
  const out = await outboundRecord(from, (r) => r.authority === 'v2.secure.test:443');
  assert.deepEqual([out.status, out.route, out.cluster, out.authority], [200, 'secure.tls.1', 'outbound|443|v2|secure.shop.svc.cluster.local', 'v2.secure.test:443']);
  assert.equal(out.upstream, mesh.callee('secure-v2.shop').inbound);
  const inb = await eventually(() => tap.items.slice(from).find((r) => r.direction === 'inbound' && r.protocol === 'TCP'), 5000, () => JSON.stringify(tap.items.slice(from)));
  assert.equal(inb.mtls, true, 'the tunnel to the callee\'s sidecar was mTLS');
  assert.equal(inb.sourceIdentity, mesh.callerIdentity);
  assert.equal(inb.bytesReceived, out.bytesReceived, 'the callee passed on every byte the caller did');
});

test('a wildcard sniHost takes names under it, one level or more', async () => {
  assert.deepEqual(await call('secure:443', { servername: 'shop.secure.test', verify: true }), { app: 'secure-v1.shop', sni: 'shop.secure.test' });
  assert.deepEqual(await call('secure:443', { servername: 'a.x.secure.test', verify: true }), { app: 'secure-v1.shop', sni: 'a.x.secure.test' });
});

test('an exact name beats a wildcard listed before it; its 50/50 split is per connection', { timeout: 60_000 }, async () => {
  const served: string[] = [];
  for (let i = 0; i < 4; i++) {
    const batch = await Promise.all(Array.from({ length: 10 }, () => call('secure:443', { servername: 'split.secure.test', verify: true })));
    served.push(...batch.map((a) => a.app ?? `error ${a.error}`));
  }
  const n = tally(served);
  assert.equal((n['secure-v1.shop'] ?? 0) + (n['secure-v2.shop'] ?? 0), 40, JSON.stringify(n));
  assert.ok((n['secure-v1.shop'] ?? 0) >= 8 && (n['secure-v2.shop'] ?? 0) >= 8, JSON.stringify(n));
});

test('a short name in sniHosts and in the SNI; no SNI at all routes by the upstream\'s host', async () => {
  assert.deepEqual(await call('secure:443', { servername: 'secure', verify: true }), { app: 'secure-v2.shop', sni: 'secure' });
  assert.deepEqual(await call('secure:443', {}), { app: 'secure-v2.shop', sni: null });
});

const HAVE_CURL = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).status === 0;

test('curl, verifying the app\'s certificate, through the local port', { skip: HAVE_CURL ? false : 'curl is not installed' }, async () => {
  const r = await promisify(execFile)('curl', ['-s', '-m', '10', '--cacert', join(dir, 'ca.pem'), '--connect-to', `v2.secure.test:443:127.0.0.1:${local['secure:443']}`, 'https://v2.secure.test/'], { encoding: 'utf8', timeout: 15_000, env: { PATH: process.env.PATH } });
  assert.deepEqual(JSON.parse(r.stdout), { app: 'secure-v2.shop', sni: 'v2.secure.test' });
});

test('a ClientHello dribbled over several TCP segments is still read and routed', async () => {
  assert.deepEqual(await call('secure:443', { servername: 'v2.secure.test', verify: true, dribble: true }), { app: 'secure-v2.shop', sni: 'v2.secure.test' });
});

test('a ServiceEntry\'s external TLS host: its own route, straight to the server (no CONNECT)', async () => {
  const from = tap.items.length;
  assert.deepEqual(await call(`api.external.test:${external.port}`, { servername: 'api.external.test', verify: true }), { app: 'external', sni: 'api.external.test' });
  const out = await outboundRecord(from, (r) => r.authority.startsWith('api.external.test:'));
  assert.deepEqual([out.status, out.cluster, out.upstream], [200, `outbound|${external.port}||api.external.test`, `127.0.0.1:${external.port}`]);
});

test('ALLOW_ANY: an SNI no rule names passes through to the address the client dialled', async () => {
  const from = tap.items.length;
  const a = await call(`127.0.0.1:${external.port}`, { servername: 'stranger.example.org' });
  assert.deepEqual(a, { app: 'external', sni: 'stranger.example.org' });
  const out = await outboundRecord(from, (r) => r.authority.startsWith('stranger.example.org:'));
  assert.deepEqual([out.status, out.cluster, out.upstream], [200, 'PassthroughCluster', `127.0.0.1:${external.port}`]);
});

test('REGISTRY_ONLY: an SNI no rule names is closed (BlackHoleCluster); named ones still pass', async () => {
  assert.deepEqual(mesh.caller.apply(withMesh(full, { outboundTrafficPolicy: 'REGISTRY_ONLY' })), { ok: true });
  try {
    for (const [upstream, sni] of [['secure:443', 'nobody.example.org'], [`127.0.0.1:${external.port}`, 'stranger.example.org']] as const) {
      const from = tap.items.length;
      const a = await call(upstream, { servername: sni });
      assert.equal(a.app, undefined, JSON.stringify(a));
      assert.equal(a.closedEmpty, true, 'nothing came back');
      const out = await outboundRecord(from, (r) => r.authority.startsWith(`${sni}:`));
      assert.deepEqual([out.cluster, out.responseFlags, out.authority], ['BlackHoleCluster', ['NR'], `${sni}:${upstream.split(':')[1]}`]);
    }
    assert.equal((await call('secure:443', { servername: 'v2.secure.test', verify: true })).app, 'secure-v2.shop');
  } finally {
    mesh.caller.apply(full);
  }
});

/** Writes `bytes` raw to a local port; resolves with what came back once the proxy closed, and how long that took. */
function raw(upstream: string, bytes: string | Buffer): Promise<{ text: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = connect({ host: '127.0.0.1', port: local[upstream]! }, () => s.write(bytes));
    let text = '';
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    s.on('error', () => undefined);
    s.once('close', () => { clearTimeout(timer); resolve({ text, ms: Date.now() - t0 }); });
  });
}

test('garbage instead of a ClientHello is closed at once (DPE, the reason logged once); a stalled hello after the timeout (DT)', async () => {
  let from = tap.items.length;
  for (let i = 0; i < 2; i++) assert.equal((await raw('secure:443', 'GET / HTTP/1.1\r\nhost: secure\r\n\r\n')).text, '');
  const bad = await outboundRecord(from, (r) => r.status === 400);
  assert.deepEqual([bad.status, bad.responseFlags], [400, ['DPE']]);
  assert.deepEqual(logs.filter((l) => l.includes('not a TLS handshake record')).length, 1, logs.join('\n'));
  from = tap.items.length;
  const stalled = await raw('secure:443', Buffer.from([22, 3, 1, 0, 200, 1, 0]));
  assert.equal(stalled.text, '');
  assert.ok(stalled.ms >= 900, `closed after ${stalled.ms} ms, before the 1 s timeout`);
  const slow = await outboundRecord(from, (r) => r.status === 408);
  assert.deepEqual([slow.status, slow.responseFlags], [408, ['DT']]);
  assert.equal((await call('secure:443', { servername: 'v2.secure.test', verify: true })).app, 'secure-v2.shop', 'the proxy keeps serving');
});

test('the snapshot: TLS routes by port with their SNI names, the external host\'s own route, no TCP route for TLS ports', () => {
  const tls = full.outbound.tls ?? [];
  assert.deepEqual(tls.filter((t) => t.port === 443).map((t) => [t.name, t.sniHosts, t.match ?? null]), [
    ['secure.tls.0', ['v2.secure.test'], [{ sourceLabels: { app: 'nobody' } }]],
    ['secure.tls.1', ['v2.secure.test', 'secure.shop.svc.cluster.local'], null],
    ['secure.tls.2', ['*.secure.test'], null],
    ['secure.tls.3', ['split.secure.test'], null],
  ]);
  assert.deepEqual(tls.filter((t) => t.port === external.port).map((t) => [t.name, t.sniHosts]), [[`tls api.external.test:${external.port}`, ['api.external.test']]]);
  assert.equal(full.outbound.tcp.filter((t) => t.port === 443 || t.port === external.port).length, 0);
});
