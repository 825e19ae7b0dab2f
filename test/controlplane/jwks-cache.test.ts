/**
 * The control plane's JWKS cache against real JWKS servers on loopback (http,
 * and https with a certificate made by openssl): fetch, refresh and key
 * rotation, last good keys kept when the server dies, size and time bounds,
 * retry after failure, and the keys reaching a proxy's authenticator through
 * the real compiler.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ConfigSet } from '../../src/api/config-set.js';
import { compileRequestAuthn, jwksSources } from '../../src/compile/request-authentication.js';
import { createJwksCache, type JwksCache } from '../../src/controlplane/jwks-cache.js';
import { buildJwtAuthenticator } from '../../src/proxy/jwt-authn.js';
import { resources } from '../helpers/mesh.js';

interface Key { readonly kid: string; readonly privateKey: CryptoKey; readonly jwk: JWK }
async function key(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** A JWKS server whose answer per path the test sets: a body, a status, a size, or silence. */
interface JwksServer {
  readonly base: string;
  readonly server: Server;
  /** Requests seen per path. */
  readonly hits: Map<string, number>;
  set(path: string, answer: Answer): void;
}
type Answer = { keys: JWK[] } | { status: number } | { bytes: number; chunked: boolean } | { hang: true } | { raw: string };

async function jwksServer(tls?: { key: string; cert: string }): Promise<JwksServer> {
  const answers = new Map<string, Answer>();
  const hits = new Map<string, number>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const a = answers.get(path) ?? { status: 404 };
    if ('hang' in a) return; // never answers
    if ('status' in a) return void res.writeHead(a.status).end('no');
    if ('raw' in a) return void res.writeHead(200, { 'content-type': 'application/json' }).end(a.raw);
    if ('bytes' in a) {
      const body = Buffer.alloc(a.bytes, 0x20);
      if (a.chunked) {
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < body.length; i += 65536) res.write(body.subarray(i, i + 65536));
        return void res.end();
      }
      return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
    }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: a.keys }));
  };
  const server = tls ? createHttps(tls, handle) : createHttp(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, server, hits, set: (p, a) => answers.set(p, a) };
}

const servers: Server[] = [];
const caches: JwksCache[] = [];
let dir: string;
let tlsFiles: { key: string; cert: string; ca: string };

function cache(o: Parameters<typeof createJwksCache>[0] = {}): JwksCache {
  const c = createJwksCache(o);
  caches.push(c);
  return c;
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const src = (uri: string, timeoutMs = 5000) => [{ uri, timeoutMs }];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-jwks-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1',
    '-subj', '/CN=Trellis JWKS test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  run('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '1', '-extfile', 'ext.cnf');
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  tlsFiles = { key: read('srv.key'), cert: read('srv.pem'), ca: read('ca.pem') };
});

after(async () => {
  await Promise.all(caches.map((c) => c.close()));
  await Promise.all(servers.map((s) => new Promise((r) => { s.close(r); (s as { closeAllConnections?: () => void }).closeAllConnections?.(); })));
  rmSync(dir, { recursive: true, force: true });
});

/** The keys of `uri` reach an authenticator through the compiler; does it accept a token signed by `k`? */
async function accepts(c: JwksCache, uri: string, k: Key): Promise<boolean> {
  const config = ConfigSet.of(resources(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: shop }
spec:
  jwtRules: [{ issuer: https://login.example.com, jwksUri: "${uri}" }]
`));
  const authn = compileRequestAuthn({ config, rootNamespace: 'istio-system', workload: { namespace: 'shop', labels: {} }, jwks: c.entries() });
  const t = await new SignJWT({ iss: 'https://login.example.com', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })
    .setProtectedHeader({ alg: 'ES256', kid: k.kid }).sign(k.privateKey);
  const r = await buildJwtAuthenticator(authn?.rules)({ headers: { authorization: `Bearer ${t}` }, path: '/' });
  return r.ok && r.principal === 'https://login.example.com/alice';
}

test('fetches a JWKS over http, signals the change, and its keys verify tokens in a proxy through the compiler', async () => {
  const s = await jwksServer();
  const k1 = await key('k1');
  s.set('/jwks.json', { keys: [k1.jwk] });
  const uri = `${s.base}/jwks.json`;
  const changed: string[] = [];
  const c = cache({ onChange: (u) => changed.push(u) });
  assert.deepEqual(jwksSources(ConfigSet.of(resources(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: shop }
spec: { jwtRules: [{ issuer: x, jwksUri: "${uri}", timeout: 3s }] }
`))), src(uri, 3000), 'the configuration names the URI');
  c.sync(src(uri));
  await c.settled();
  assert.deepEqual(c.get(uri)?.keys, [k1.jwk]);
  assert.equal(c.get(uri)?.error, undefined);
  assert.deepEqual(changed, [uri]);
  assert.equal(c.entries().get(uri), c.get(uri));
  assert.ok(await accepts(c, uri, k1));
});

test('key rotation on the JWKS server is picked up at the next refresh; tokens of the new key pass, of the removed key fail', async () => {
  const s = await jwksServer();
  const [k1, k2] = [await key('k1'), await key('k2')];
  s.set('/rotating', { keys: [k1.jwk] });
  const uri = `${s.base}/rotating`;
  let changes = 0;
  const c = cache({ refreshIntervalMs: 200, onChange: () => changes++ });
  c.sync(src(uri));
  await c.settled();
  assert.ok(await accepts(c, uri, k1));
  const before = c.entries();
  s.set('/rotating', { keys: [k2.jwk] });
  await waitFor(() => c.get(uri)?.keys?.[0]?.kid === 'k2', 'the rotated key');
  assert.equal(changes, 2, 'one change for the first fetch, one for the rotation');
  assert.notEqual(c.entries(), before, 'a new entries map after a change');
  assert.ok(await accepts(c, uri, k2), 'the new key verifies');
  assert.equal(await accepts(c, uri, k1), false, 'the removed key no longer verifies');
  // Unchanged keys on later refreshes signal nothing.
  const hits = s.hits.get('/rotating')!;
  await waitFor(() => s.hits.get('/rotating')! >= hits + 2, 'two more refreshes');
  assert.equal(changes, 2);
});

test('a dead JWKS server: the last good keys stay in use, the error is recorded, and no change is signalled', async () => {
  const s = await jwksServer();
  const k1 = await key('k1');
  s.set('/jwks', { keys: [k1.jwk] });
  const uri = `${s.base}/jwks`;
  let changes = 0;
  const c = cache({ onChange: () => changes++ });
  c.sync(src(uri));
  await c.settled();
  await new Promise((r) => { s.server.close(r); s.server.closeAllConnections(); });
  const entry = await c.refresh(uri);
  assert.deepEqual(entry?.keys, [k1.jwk], 'last good keys kept');
  assert.match(entry?.error ?? '', /ECONNREFUSED|connect/);
  assert.equal(changes, 1);
  assert.ok(await accepts(c, uri, k1), 'tokens still verify with the last good keys');
});

test('a 2 MiB key set is refused, whether it declares its length or streams it', async () => {
  const s = await jwksServer();
  s.set('/big', { bytes: 2 * 1024 * 1024, chunked: false });
  s.set('/big-chunked', { bytes: 2 * 1024 * 1024, chunked: true });
  const c = cache();
  c.sync([...src(`${s.base}/big`), ...src(`${s.base}/big-chunked`)]);
  await c.settled();
  for (const p of ['/big', '/big-chunked']) {
    const e = c.get(`${s.base}${p}`);
    assert.equal(e?.keys, undefined, `${p}: no keys`);
    assert.match(e?.error ?? '', /1048576/, `${p}: ${e?.error}`);
  }
});

test('a server that does not answer times out; an answer that is not a key set is an error', async () => {
  const s = await jwksServer();
  s.set('/hang', { hang: true });
  s.set('/html', { raw: '<html>login</html>' });
  s.set('/obj', { raw: '{"issuer":"x"}' });
  const c = cache();
  c.sync([...src(`${s.base}/hang`, 300), ...src(`${s.base}/html`), ...src(`${s.base}/obj`)]);
  await c.settled();
  assert.match(c.get(`${s.base}/hang`)?.error ?? '', /within 300 ms/);
  assert.match(c.get(`${s.base}/html`)?.error ?? '', /not JSON/);
  assert.match(c.get(`${s.base}/obj`)?.error ?? '', /"keys" list/);
});

test('https: the server certificate is verified; an extra CA makes a private issuer trusted', async () => {
  const s = await jwksServer({ key: tlsFiles.key, cert: tlsFiles.cert });
  const k1 = await key('k1');
  s.set('/jwks', { keys: [k1.jwk] });
  const uri = `${s.base}/jwks`;
  const untrusting = cache();
  untrusting.sync(src(uri));
  await untrusting.settled();
  assert.equal(untrusting.get(uri)?.keys, undefined);
  assert.match(untrusting.get(uri)?.error ?? '', /certificate/i);
  const trusting = cache({ ca: tlsFiles.ca });
  trusting.sync(src(uri));
  await trusting.settled();
  assert.deepEqual(trusting.get(uri)?.keys, [k1.jwk]);
  assert.ok(await accepts(trusting, uri, k1));
});

test('a failed first fetch signals once, is retried with backoff, and the keys arrive when the server recovers', async () => {
  const s = await jwksServer();
  s.set('/flaky', { status: 503 });
  const uri = `${s.base}/flaky`;
  const changed: string[] = [];
  const c = cache({ retryInitialMs: 50, onChange: (u) => changed.push(u) });
  c.sync(src(uri));
  await c.settled();
  assert.match(c.get(uri)?.error ?? '', /503/);
  assert.deepEqual(changed, [uri], 'the first failure is signalled (compile reports it)');
  await waitFor(() => (s.hits.get('/flaky') ?? 0) >= 3, 'two retries');
  assert.deepEqual(changed, [uri], 'further failures are not signalled again');
  const k1 = await key('k1');
  s.set('/flaky', { keys: [k1.jwk] });
  await waitFor(() => c.get(uri)?.keys !== undefined, 'the keys after recovery');
  assert.equal(c.get(uri)?.error, undefined);
  assert.equal(changed.length, 2);
});

test('sync forgets URIs the configuration no longer names', async () => {
  const s = await jwksServer();
  const k1 = await key('k1');
  s.set('/a', { keys: [k1.jwk] });
  s.set('/b', { keys: [k1.jwk] });
  const c = cache();
  c.sync([...src(`${s.base}/a`), ...src(`${s.base}/b`)]);
  await c.settled();
  assert.equal(c.entries().size, 2);
  c.sync(src(`${s.base}/b`));
  assert.equal(c.get(`${s.base}/a`), undefined);
  assert.deepEqual([...c.entries().keys()], [`${s.base}/b`]);
  await c.close();
  assert.equal(await c.refresh(`${s.base}/b`), undefined, 'a closed cache fetches nothing');
});
