/**
 * Zero trust with real sockets, the parts mtls*.test.ts do not already show
 * (plaintext to a STRICT port, foreign-root, expired and missing client
 * certificates are in mtls.test.ts; secure naming in mtls-origination.test.ts):
 *
 * - identity headers a caller forges (`x-forwarded-client-cert` and every
 *   other one the sanitize stage strips) never reach the app — sent through
 *   the caller's sidecar over mTLS, straight to the inbound listener with a
 *   valid client certificate (HTTP/1.1, repeated and mixed-case, and HTTP/2),
 *   and in plaintext to a PERMISSIVE port — and cannot satisfy a policy;
 * - request authentication end to end: a real control plane fetches the JWKS
 *   from a real server on loopback and inlines it; valid token 200, none 403,
 *   bad 401, expired 401, and the proxies never fetch keys themselves;
 * - TCP tunnels (CONNECT) are authorized: a DENY by principal closes the
 *   tunnel; an ALLOW whose rule has HTTP-only fields allows no TCP (the rule
 *   is dropped) while a DENY's HTTP-only condition is dropped (wider deny),
 *   as in Istio.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import { IDENTITY_HEADERS } from '../../src/proxy/headers.js';
import { startTcpEchoApp } from '../helpers/mtls-apps.js';
import { MtlsMesh, MTLS_YAML, recordTap, type Tap } from '../helpers/mtls-mesh.js';
import { eventually, type Echo } from '../helpers/proxy.js';
import { spiffeId } from '../helpers/test-pki.js';
import { JwtMesh, signingKey, tokenOf, type SigningKey } from '../helpers/zt-jwt-mesh.js';
import { applyCalleeYaml, probeTcp } from '../helpers/zt-mesh.js';
import { rawHttp } from '../helpers/zt-raw-http.js';

const API = 'api-v1.shop';
const DB = 'db-v1.shop';
const FORGED = 'FORGED-by-the-caller';
const CALLER = 'cluster.local/ns/shop/sa/client';

/**
 * Headers that carry an identity, as Istio / Envoy and Trellis name them —
 * this test's own list, joined with the proxy's, so that dropping one from
 * the proxy's list fails here.
 */
const IDENTITY = [...new Set([
  'x-forwarded-client-cert', 'x-client-cert', 'x-ssl-client-cert', 'x-envoy-peer-metadata', 'x-envoy-peer-metadata-id',
  'x-istio-attributes', 'x-trellis-peer-identity', 'x-trellis-source-identity', ...IDENTITY_HEADERS,
])];

const forgedValue = (name: string) => (name === 'x-forwarded-client-cert'
  ? `By=spiffe://cluster.local/ns/shop/sa/api;URI=spiffe://cluster.local/ns/shop/sa/admin;Hash=${FORGED}`
  : `spiffe://cluster.local/ns/shop/sa/admin#${FORGED}`);

/** Asserts that nothing forged reached the app (by any header name), and that it did get the request. */
function assertClean(how: string, status: number, headers: Echo['headers'] | undefined): void {
  assert.equal(status, 200, `${how}: the request reaches the app`);
  const text = JSON.stringify(headers);
  assert.ok(!text.includes(FORGED), `${how}: a forged value reached the app: ${text}`);
  for (const h of IDENTITY) {
    const v = headers?.[h];
    if (v === undefined) continue;
    // The proxy may set x-forwarded-client-cert itself; then it names the verified caller, never the forged one.
    assert.equal(h, 'x-forwarded-client-cert', `${how}: ${h} reached the app (${String(v)})`);
    assert.match(String(v), new RegExp(`URI=spiffe://${CALLER.replace(/\//g, '\\/')}`), `${how}: x-forwarded-client-cert is the proxy's`);
  }
}

describe('zero trust over mTLS between real sidecars', () => {
  let m: MtlsMesh;
  let records: Tap<RequestRecord>;
  let creds: { ca: string[]; key: string; cert: string };

  before(async () => {
    records = recordTap();
    m = await MtlsMesh.start({
      yaml: MTLS_YAML,
      caller: { workload: 'client', namespace: 'shop' },
      callerOptions: { upstreams: [{ host: 'db', port: 5432, localPort: 0 }] },
      apps: { [DB]: startTcpEchoApp },
      calleeMode: 'PERMISSIVE',
    });
    const leaf = await m.pki.issue(spiffeId('shop', 'client'));
    creds = { ca: [m.pki.rootPem], key: leaf.keyPem, cert: leaf.certChainPem };
  });

  after(async () => {
    records?.stop();
    await m?.close();
  });

  test('zero trust: forged identity headers sent through the caller\'s sidecar (mTLS) never reach the app', async () => {
    const headers = Object.fromEntries(IDENTITY.map((h) => [h, forgedValue(h)]));
    const r = await m.client.call('http://api/forged', { headers });
    assertClean('via the caller sidecar', r.status, r.status === 200 ? r.json().headers : undefined);
  });

  test('zero trust: forged identity headers sent straight to the inbound with a valid client certificate never reach the app (HTTP/1.1, repeated, mixed case)', async () => {
    const lines: [string, string][] = [];
    for (const h of IDENTITY) {
      lines.push([h, forgedValue(h)]);
      lines.push([h.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase()), forgedValue(h)]); // X-Forwarded-Client-Cert
    }
    const a = await rawHttp(m.callee(API).inbound, { method: 'GET', target: '/forged-raw', host: 'api.shop', headers: lines }, creds);
    assert.ok(a.secured, 'mTLS was set up');
    assertClean('raw HTTP/1.1 over mTLS', a.status, a.status === 200 ? (JSON.parse(a.body) as Echo).headers : undefined);
  });

  test('zero trust: forged identity headers over HTTP/2 (TLS) straight to the inbound never reach the app', async () => {
    const api = m.callee(API);
    const [host, port] = api.inbound.split(':');
    const session = h2connect(`https://${api.inbound}`, { createConnection: () => tlsConnect({ host: host!, port: Number(port), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined, ...creds }) });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/forged-h2', ':authority': 'api.shop', ...Object.fromEntries(IDENTITY.map((h) => [h, forgedValue(h)])) });
        let status = 0;
        let body = '';
        req.once('response', (h) => { status = Number(h[':status']); });
        req.setEncoding('utf8');
        req.on('data', (c: string) => { body += c; });
        req.once('end', () => resolve({ status, body }));
        req.once('error', reject);
        req.end();
      });
      assertClean('HTTP/2 over mTLS', status, status === 200 ? (JSON.parse(body) as Echo).headers : undefined);
    } finally {
      session.close();
    }
  });

  test('zero trust: forged identity headers in plaintext to a PERMISSIVE port never reach the app', async () => {
    const a = await rawHttp(m.callee(API).inbound, { method: 'GET', target: '/forged-plain', host: 'api.shop', headers: IDENTITY.map((h) => [h, forgedValue(h)] as const) });
    assert.equal(a.secured, false);
    assertClean('plaintext', a.status, a.status === 200 ? (JSON.parse(a.body) as Echo).headers : undefined);
  });

  test('zero trust: a forged identity header cannot satisfy an AuthorizationPolicy (it is stripped before authorization)', async (t) => {
    const restore = applyCalleeYaml(m, API, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: only-with-headers, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  action: ALLOW
  rules:
  - when: [{ key: "request.headers[x-forwarded-client-cert]", values: ["*"] }]
  - when: [{ key: "request.headers[x-trellis-peer-identity]", values: ["*"] }]
  - when: [{ key: "request.headers[x-role]", values: ["reader"] }]
`);
    t.after(restore);
    const hits = m.callee(API).app.hits;
    const forged = await m.client.call('http://api/needs-identity', { headers: { 'x-forwarded-client-cert': forgedValue('x-forwarded-client-cert'), 'x-trellis-peer-identity': forgedValue('x') } });
    assert.equal(forged.status, 403, forged.text);
    assert.match(forged.text, /RBAC: access denied/);
    const raw = await rawHttp(m.callee(API).inbound, { method: 'GET', target: '/needs-identity', host: 'api.shop', headers: [['x-forwarded-client-cert', forgedValue('x-forwarded-client-cert')]] }, creds);
    assert.equal(raw.status, 403, raw.body);
    assert.equal(m.callee(API).app.hits, hits, 'the app saw neither');
    // The same policy does match a header a caller may send: the denial above is the stripping, not the matcher.
    const ok = await m.client.call('http://api/needs-identity', { headers: { 'x-role': 'reader' } });
    assert.equal(ok.status, 200, ok.text);
  });

  const dbPort = () => Number(m.caller.addresses.upstreams!['db:5432']!.split(':')[1]);
  const tunnelRecord = (after: number) => eventually(
    () => records.items.slice(after).find((r) => r.direction === 'inbound' && r.proxy === m.callee(DB).snapshot.node.id && r.protocol === 'TCP'),
    5_000, () => `records: ${JSON.stringify(records.items.slice(after))}`);

  /** Applies `policy` to db, then checks a tunnel through the caller's local port is closed unopened (denied) or echoes (allowed). */
  async function tunnelUnder(t: { after(f: () => void): void }, policy: string, want: 'denied' | 'allowed'): Promise<void> {
    t.after(applyCalleeYaml(m, DB, policy));
    const app = m.callee(DB).app;
    const hits = app.hits;
    const seen = records.items.length;
    const line = `bytes for db ${Math.random().toString(16).slice(2)}\n`;
    const p = await probeTcp(dbPort(), line);
    const rec = await tunnelRecord(seen);
    if (want === 'denied') {
      assert.equal(p.timedOut, false, 'the tunnel was closed, not left hanging');
      assert.equal(p.closedByPeer, true);
      assert.equal(p.echoed, '', 'no byte came back');
      assert.equal(app.hits, hits, 'the app never got a connection');
      assert.equal(rec.status, 403);
      assert.ok(rec.responseFlags.includes('RBAC'), `flags ${JSON.stringify(rec.responseFlags)}`);
      assert.equal(rec.sourceIdentity, `spiffe://${CALLER}`);
    } else {
      assert.equal(p.echoed, line, 'the bytes came back through the tunnel');
      assert.equal(app.hits, hits + 1);
      assert.equal(rec.status, 200);
    }
  }

  const dbPolicy = (action: string, rule: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: db-${action.toLowerCase()}, namespace: shop }
spec:
  selector: { matchLabels: { app: db } }
  action: ${action}
  rules:
${rule}`;

  test('zero trust: a TCP tunnel is allowed by an ALLOW policy naming the caller\'s principal', async (t) => {
    await tunnelUnder(t, dbPolicy('ALLOW', `  - from: [{ source: { principals: ["${CALLER}"] } }]\n`), 'allowed');
  });

  test('zero trust: a DENY by principal closes the TCP tunnel before the app sees a connection', async (t) => {
    await tunnelUnder(t, dbPolicy('DENY', `  - from: [{ source: { principals: ["${CALLER}"] } }]\n`), 'denied');
  });

  test('zero trust: an ALLOW-only policy whose rule has HTTP-only fields allows no TCP (Istio drops the rule)', async (t) => {
    await tunnelUnder(t, dbPolicy('ALLOW', `  - from: [{ source: { principals: ["${CALLER}"] } }]\n    to: [{ operation: { methods: ["GET"], paths: ["/*"] } }]\n`), 'denied');
  });

  test('zero trust: a DENY rule\'s HTTP-only condition is dropped on TCP, so the tunnel is denied (wider deny)', async (t) => {
    await tunnelUnder(t, dbPolicy('DENY', `  - from: [{ source: { principals: ["${CALLER}"] } }]\n    to: [{ operation: { paths: ["/admin"] } }]\n`), 'denied');
  });
});

describe('request authentication end to end: a real control plane fetches the JWKS', () => {
  let m: JwtMesh;
  let key: SigningKey;
  let other: SigningKey;

  before(async () => {
    key = await signingKey('zt-1');
    other = await signingKey('zt-1'); // the same kid, another key: a forgery
    m = await JwtMesh.start(key);
    // Ready once a valid token gets through both sidecars (certificates, snapshots, endpoints and keys in place).
    const token = await tokenOf(key, 'alice');
    const deadline = Date.now() + 15_000;
    let last = '';
    for (;;) {
      const r = await m.client.call('http://api:8080/ready', { headers: { authorization: `Bearer ${token}` } }).catch((e: Error) => ({ status: 0, text: e.message }));
      if (r.status === 200) break;
      last = `${r.status} ${r.text}`;
      if (Date.now() > deadline) throw new Error(`the mesh did not come up within 15 s; last answer: ${last}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  });

  after(async () => {
    await m?.close();
  });

  test('jwt e2e: the control plane fetched the keys and inlined them into the callee\'s snapshot', () => {
    assert.ok(m.jwksHits >= 1, 'the JWKS server was asked');
    const rules = m.api.snapshot?.requestAuthn?.rules ?? [];
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0]!.keys.map((k) => k.kid), ['zt-1']);
    assert.equal(m.caller.snapshot?.requestAuthn, undefined, 'the caller is not selected');
  });

  test('jwt e2e: a valid token is 200, and the app does not get the token', async () => {
    const r = await m.client.call('http://api:8080/with-token', { headers: { authorization: `Bearer ${await tokenOf(key, 'alice')}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().url, '/with-token');
    assert.equal(r.json().headers.authorization, undefined);
  });

  test('jwt e2e: no token is 403 (authentication passes, the policy requiring requestPrincipals stops it)', async () => {
    const hits = m.app.hits;
    const r = await m.client.call('http://api:8080/no-token');
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /RBAC: access denied/);
    assert.equal(m.app.hits, hits);
  });

  test('jwt e2e: a bad token (signed by another key with the same kid, or from another issuer) is 401', async () => {
    const hits = m.app.hits;
    for (const token of [await tokenOf(other, 'mallory'), await tokenOf(key, 'alice', { issuer: 'https://other.example' }), 'not.a.jwt']) {
      const r = await m.client.call('http://api:8080/bad-token', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 401, `${token.slice(0, 20)}…: ${r.text}`);
      assert.match(String(r.headers['www-authenticate']), /Bearer/);
    }
    assert.equal(m.app.hits, hits);
  });

  test('jwt e2e: an expired token is 401', async () => {
    const r = await m.client.call('http://api:8080/expired', { headers: { authorization: `Bearer ${await tokenOf(key, 'alice', { expiresAt: Math.floor(Date.now() / 1000) - 600 })}` } });
    assert.equal(r.status, 401, r.text);
  });

  test('jwt e2e: the proxies verify tokens without fetching keys themselves', async () => {
    const before = m.jwksHits;
    for (let i = 0; i < 5; i++) {
      const r = await m.client.call(`http://api:8080/n${i}`, { headers: { authorization: `Bearer ${await tokenOf(key, `user${i}`)}` } });
      assert.equal(r.status, 200);
    }
    assert.equal(m.jwksHits, before, 'no request reached the JWKS server while tokens were verified');
  });
});
