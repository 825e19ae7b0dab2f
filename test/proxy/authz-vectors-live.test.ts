/**
 * Istio's authorization vectors (integrationAuthz, advisories, docsTasks;
 * test/helpers/authz-vectors.ts) through a REAL inbound data plane: for each
 * case the callee's snapshot is compiled from the case's policies by the real
 * compiler (zt-vector-mesh.ts) and applied to one running sidecar (its
 * certificate, for the callee's identity, from the project's CA); a raw
 * HTTP/1.1 client sends the case's exact request bytes (target, Host,
 * headers, a JWT signed for the case's claims) over mTLS with a client
 * certificate for the case's peer identity (plaintext when the case has
 * none), or opens a CONNECT tunnel for a TCP case; a real echo app behind the
 * sidecar answers. 200 is allow, 403 deny; the count of matching verdicts
 * must reach the floor in authz-live-floor.json, every disagreement printed
 * with what the proxy said and what the pure engine decides on the vector's
 * own attributes with the same compiled policies (so a proxy problem shows
 * apart from an engine one). When a request is allowed the app must have
 * received exactly the normalized path (plus the query as sent): the path
 * that was authorized. A denied request must not reach the app at all.
 *
 * Also the normalization table of the vectors through the same proxy, each
 * group in its own mode: the app receives Istio's output path for every
 * input (or the proxy answers 400 where Istio does).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import type { DataPlane } from '../../src/proxy/types.js';
import { buildAuthorizer } from '../../src/policy/authorize.js';
import type { PathNormalization, Snapshot } from '../../src/protocol/snapshot.js';
import { authzAttributes, vectorCases, VECTORS_FILE, type VectorCase } from '../helpers/authz-vectors.js';
import { ROOT } from '../helpers/mesh.js';
import { MeshPki } from '../helpers/mtls-pki.js';
import { startApp, startProxy, type App, type Echo } from '../helpers/proxy.js';
import type { TestLeaf } from '../helpers/test-pki.js';
import { rawConnect, rawHttp, type RawAnswer } from '../helpers/zt-raw-http.js';
import { compileCase, expectedAppPath, servicePort, signToken, tokenKey, type TokenKey } from '../helpers/zt-vector-mesh.js';

const FLOOR_FILE = join(ROOT, 'test', 'proxy', 'authz-live-floor.json');
const FLOOR = JSON.parse(readFileSync(FLOOR_FILE, 'utf8')) as { vectors: number };

let pki: MeshPki;
/** A second CA of ours, for peers of another trust domain (`td2.example`). */
let otherDomain: MeshPki;
let app: App;
let dp: DataPlane;
let key: TokenKey;
const leaves = new Map<string, TestLeaf>();

before(async () => {
  pki = await MeshPki.create();
  otherDomain = await MeshPki.create('td2.example');
  key = await tokenKey();
  app = await startApp('vector-callee');
  dp = await startProxy({ mode: 'sidecar', appPort: app.port });
  dp.setTrustBundle([pki.rootPem, otherDomain.rootPem]);
});

after(async () => {
  await dp?.close(100);
  await app?.close();
  pki?.close();
  otherDomain?.close();
});

/** A workload certificate for `spiffeId` from the CA of its trust domain (made once). */
async function leafFor(spiffeId: string): Promise<TestLeaf> {
  let leaf = leaves.get(spiffeId);
  if (!leaf) {
    const ca = spiffeId.startsWith('spiffe://td2.example/') ? otherDomain : pki;
    leaves.set(spiffeId, (leaf = await ca.issue(spiffeId)));
  }
  return leaf;
}

let calleeIdentity = '';

/** What the proxy and the app did with one case. */
interface Outcome {
  readonly verdict: string;
  readonly detail: string;
  /** The path the app got, when it got the request. */
  readonly appPath?: string;
  readonly appHit: boolean;
  /** What the pure engine decides on the vector's own attributes with the same compiled policies: tells a proxy problem from an engine one. */
  readonly engine?: string;
}

function engineVerdict(c: VectorCase, s: Snapshot): string {
  const a = authzAttributes(c.request, c.mode);
  if ('refused' in a) return `refused (${a.refused.status})`;
  if (!s.authz) return 'allow (no policy selects the workload)';
  const d = buildAuthorizer(s.authz)(a.attrs);
  return `${d.allowed ? 'allow' : 'deny'} (${d.reason})`;
}

function describe(a: RawAnswer): string {
  return a.status ? `${a.status} ${a.body.trim().slice(0, 120)}` : `no answer (${a.error ?? 'closed'})`;
}

async function run(c: VectorCase): Promise<Outcome> {
  const snapshot = compileCase(c, key, [pki.rootPem, otherDomain.rootPem]);
  return { ...(await send(c, snapshot)), engine: engineVerdict(c, snapshot) };
}

async function send(c: VectorCase, snapshot: Snapshot): Promise<Outcome> {
  if (snapshot.node.identity !== calleeIdentity) {
    dp.setCertificate(await leafFor(snapshot.node.identity));
    calleeIdentity = snapshot.node.identity;
  }
  const applied = dp.apply(snapshot);
  if (!applied.ok) return { verdict: 'refused-snapshot', detail: applied.reason, appHit: false };
  const r = c.request;
  let tls: ConnectionOptions | undefined;
  if (r.peer) {
    const leaf = await leafFor(r.peer);
    tls = { ca: [pki.rootPem], key: leaf.keyPem, cert: leaf.certChainPem };
  }
  const headers: (readonly [string, string])[] = [...r.headers];
  if (r.jwt) headers.push(['authorization', `Bearer ${await signToken(key, r.jwt)}`]);
  const hits = app.hits;
  const address = dp.addresses.inbound!;
  if (r.protocol === 'tcp') {
    const authority = `${r.host.replace(/:\d+$/, '')}:${servicePort(c)}`;
    const t = await rawConnect(address, authority, { method: 'GET', target: '/through-the-tunnel', host: r.host }, tls);
    const appHit = app.hits > hits;
    if (t.connect.status === 200 && t.through?.status === 200) return { verdict: 'allow', detail: 'tunnel opened, the app answered', appHit };
    if (t.connect.status === 403) return { verdict: 'deny', detail: describe(t.connect), appHit };
    return { verdict: `status ${t.connect.status}`, detail: describe(t.through ?? t.connect), appHit };
  }
  const a = await rawHttp(address, { method: r.method, target: r.target, host: r.host, headers }, tls);
  const appHit = app.hits > hits;
  if (a.status === 200) {
    let appPath: string | undefined;
    try {
      appPath = (JSON.parse(a.body) as Echo).url;
    } catch {
      return { verdict: 'allow', detail: `200 not from the app: ${a.body.slice(0, 120)}`, appHit };
    }
    return { verdict: 'allow', detail: `the app got ${JSON.stringify(appPath)}`, appPath, appHit };
  }
  if (a.status === 403) return { verdict: 'deny', detail: describe(a), appHit };
  return { verdict: `status ${a.status}`, detail: describe(a), appHit };
}

test(`Istio's authorization vectors through a real inbound proxy: at least the floor of ${FLOOR.vectors} verdicts match; allowed requests reach the app with the authorized path, denied ones never do`, { timeout: 120_000 }, async () => {
  const { cases, skipped } = vectorCases();
  let matched = 0;
  const disagreements: string[] = [];
  const wrongPath: string[] = [];
  const leaked: string[] = [];
  for (const c of cases) {
    let o: Outcome;
    try {
      o = await run(c);
    } catch (e) {
      o = { verdict: 'error', detail: (e as Error).message, appHit: false };
    }
    if (o.verdict === c.expect) matched++;
    else disagreements.push(`${c.id} [${c.mode}]: expected ${c.expect}, the proxy said ${o.verdict} (${o.detail}); the engine on the vector's own attributes: ${o.engine ?? '?'}`);
    if (o.verdict === 'allow' && c.request.protocol === 'http') {
      const want = expectedAppPath(c);
      if (o.appPath !== want) wrongPath.push(`${c.id} [${c.mode}]: sent ${JSON.stringify(c.request.target)}, the app got ${JSON.stringify(o.appPath)}, authorized ${JSON.stringify(want)}`);
    }
    if (o.verdict !== 'allow' && o.appHit) leaked.push(`${c.id}: ${o.verdict} but the app saw the request`);
  }
  const report = [
    `live authz vectors: ${matched}/${cases.length} verdicts match (floor ${FLOOR.vectors}); ${skipped.length} skipped (listed by authz-vectors.test.ts)`,
    ...disagreements.map((d) => `  disagree: ${d}`),
    ...wrongPath.map((d) => `  wrong path: ${d}`),
    ...leaked.map((d) => `  leaked: ${d}`),
  ].join('\n');
  console.log(report);
  assert.deepEqual(wrongPath, [], 'allowed requests reach the app with exactly the authorized path');
  assert.deepEqual(leaked, [], 'refused requests never reach the app');
  assert.ok(cases.length >= FLOOR.vectors, `only ${cases.length} cases were built from the vectors`);
  assert.ok(matched >= FLOOR.vectors, `${matched} verdicts match, below the floor of ${FLOOR.vectors}:\n${report}`);
});

const NORMALIZATION = (JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as {
  normalization: Record<string, { normalization: PathNormalization; cases: { in: string; out: string }[] }>;
}).normalization;

/** A case with no policy for a workload in `mode`: only the normalization acts. */
function plainCase(mode: PathNormalization): VectorCase {
  return {
    id: `normalization/${mode}`, group: 'integrationAuthz', yaml: '', defaultNamespace: 'norm', mode, expect: 'allow',
    workload: { name: 'paths-v1', namespace: 'norm', labels: { app: 'paths' } },
    request: { protocol: 'http', method: 'GET', target: '/', host: 'paths.norm', headers: [], sourceIp: '127.0.0.1', port: 8080 },
  };
}

for (const [group, g] of Object.entries(NORMALIZATION)) {
  test(`the normalization vectors "${group}" (${g.cases.length}, mode ${g.normalization}) through a real inbound proxy: the app receives Istio's path`, async () => {
    const c = plainCase(g.normalization);
    const snapshot = compileCase(c, key, [pki.rootPem]);
    const applied = dp.apply(snapshot);
    assert.ok(applied.ok, applied.ok ? '' : applied.reason);
    const wrong: string[] = [];
    for (const v of g.cases) {
      const hits = app.hits;
      const a = await rawHttp(dp.addresses.inbound!, { method: 'GET', target: v.in, host: c.request.host });
      let got: string;
      if (a.status === 200) got = (JSON.parse(a.body) as Echo).url ?? '';
      else got = String(a.status);
      if (a.status !== 200 && app.hits !== hits) got += ' (yet the app saw it)';
      if (got !== v.out) wrong.push(`${JSON.stringify(v.in)}: Istio ${JSON.stringify(v.out)}, the app got ${JSON.stringify(got)}${a.status === 200 ? '' : ` (${a.body.trim().slice(0, 80)})`}`);
    }
    assert.deepEqual(wrong, []);
  });
}
