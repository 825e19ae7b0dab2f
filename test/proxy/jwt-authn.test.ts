/**
 * JWT authentication in the proxy, with real keys (jose), rules compiled from
 * RequestAuthentication YAML by the real compiler, and a real HTTP server on
 * loopback that applies the authenticator's decision the way the inbound
 * chain does (401 on failure; remove, then set headers; echo what the app
 * would receive).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { ConfigSet } from '../../src/api/config-set.js';
import { compileRequestAuthn, type JwksEntry } from '../../src/compile/request-authentication.js';
import type { JwtRuleConfig } from '../../src/protocol/request-authn.js';
import { buildJwtAuthenticator, type JwtAuthenticator } from '../../src/proxy/jwt-authn.js';
import { resources } from '../helpers/mesh.js';

interface Issuer {
  readonly iss: string;
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

async function issuer(iss: string, kid: string, alg: 'RS256' | 'ES256'): Promise<Issuer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { iss, kid, alg, privateKey, publicKey, jwk };
}

const now = () => Math.floor(Date.now() / 1000);

/** A token of `who`, valid for an hour, for `sub`; `claims` override or add. */
function token(who: Issuer, claims: JWTPayload = {}, key: CryptoKey = who.privateKey): Promise<string> {
  return new SignJWT({ iss: who.iss, sub: 'alice', iat: now(), exp: now() + 3600, ...claims })
    .setProtectedHeader({ alg: who.alg, kid: who.kid, typ: 'JWT' })
    .sign(key);
}

/** The rules for a sidecar in `shop` from RequestAuthentication YAML (jwtRules as YAML flow text). */
function rulesFrom(yaml: string, jwks: ReadonlyMap<string, JwksEntry> = new Map()): readonly JwtRuleConfig[] {
  const config = ConfigSet.of(resources(yaml));
  const authn = compileRequestAuthn({ config, rootNamespace: 'istio-system', workload: { namespace: 'shop', labels: { app: 'api' } }, jwks });
  assert.ok(authn, 'a rule applies');
  return authn.rules;
}

const policy = (jwtRules: string) => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: api } }
  jwtRules:
${jwtRules}`;

const inline = (...who: Issuer[]) => JSON.stringify(JSON.stringify({ keys: who.map((w) => w.jwk) }));

let a: Issuer;
let b: Issuer;
let ec: Issuer;
let impostor: Issuer;

/** A server that authenticates with `auth` and echoes what the app would get. */
async function appBehind(auth: JwtAuthenticator): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    void auth({ headers: req.headers, path: req.url ?? '/' }).then((r) => {
      if (!r.ok) {
        res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.reason);
        return;
      }
      const headers: IncomingHttpHeaders = { ...req.headers };
      for (const h of r.headersToRemove) delete headers[h];
      for (const [k, v] of r.headersToSet) headers[k] = v;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ principal: r.principal ?? null, claims: r.claims ?? null, headers }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
const servers: Server[] = [];

interface Echo { principal: string | null; claims: JWTPayload | null; headers: Record<string, string> }

async function call(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; echo?: Echo }> {
  const res = await fetch(url + path, { headers });
  const body = await res.text();
  return { status: res.status, body, ...(res.status === 200 ? { echo: JSON.parse(body) as Echo } : {}) };
}

before(async () => {
  a = await issuer('https://a.example.com', 'a-1', 'RS256');
  b = await issuer('issuer-b@example.com', 'b-1', 'ES256');
  ec = await issuer('https://ec.example.com', 'ec-1', 'ES256');
  // Same issuer and kid as `a`, another key: its tokens must not verify.
  const other = await issuer(a.iss, a.kid, 'RS256');
  impostor = { ...other, jwk: a.jwk };
});

after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

test('a valid token in Authorization: Bearer authenticates as iss/sub, and the token header does not reach the app', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwks: ${inline(a)} }\n`))));
  const r = await call(url, '/', { authorization: `Bearer ${await token(a)}` });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.echo!.principal, `${a.iss}/alice`);
  assert.equal(r.echo!.headers.authorization, undefined, 'forwardOriginalToken defaults to false');
});

test('forwardOriginalToken: true keeps the token header', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwks: ${inline(a)}, forwardOriginalToken: true }\n`))));
  const t = await token(a);
  const r = await call(url, '/', { authorization: `Bearer ${t}` });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.echo!.headers.authorization, `Bearer ${t}`);
});

test('a request without a token passes unauthenticated; a Basic Authorization header is no token', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwks: ${inline(a)} }\n`))));
  const none = await call(url, '/');
  assert.equal(none.status, 200);
  assert.equal(none.echo!.principal, null);
  const basic = await call(url, '/', { authorization: 'Basic dXNlcjpwYXNz' });
  assert.equal(basic.status, 200);
  assert.equal(basic.echo!.principal, null);
});

test('expired, not-yet-valid, wrong-issuer, wrong-audience, bad-signature, tampered and malformed tokens are 401', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(
    `  - { issuer: "${a.iss}", jwks: ${inline(a)}, audiences: [shop-api, shop-web] }\n`))));
  const bearer = async (t: string | Promise<string>) => call(url, '/', { authorization: `Bearer ${await t}` });
  const good = await bearer(token(a, { aud: 'shop-web' }));
  assert.equal(good.status, 200, `control: a good token passes (${good.body})`);
  const cases: [string, Promise<string> | string, RegExp][] = [
    ['expired two minutes ago (beyond the 60 s skew)', token(a, { aud: 'shop-api', exp: now() - 120 }), /expired/],
    ['not valid for five more minutes', token(a, { aud: 'shop-api', nbf: now() + 300 }), /not yet valid/],
    ['from another issuer', token({ ...a, iss: 'https://evil.example.com' }, { aud: 'shop-api' }), /issuer/],
    ['for another audience', token(a, { aud: 'billing' }), /audience/],
    ['without an audience', token(a), /audience|claim/],
    ['signed by another key with the same kid', token(impostor, { aud: 'shop-api' }), /signature/],
    ['with a tampered payload', token(a, { aud: 'shop-api' }).then((t) => {
      const [h, , s] = t.split('.');
      return `${h}.${Buffer.from(JSON.stringify({ iss: a.iss, sub: 'admin', aud: 'shop-api', exp: now() + 60 })).toString('base64url')}.${s}`;
    }), /signature/],
    ['that is not a JWT', 'not-a-jwt', /malformed/],
  ];
  for (const [what, t, reason] of cases) {
    const r = await bearer(t);
    assert.equal(r.status, 401, `a token ${what} is refused`);
    assert.match(r.body, reason, `a token ${what}: ${r.body}`);
  }
  const skew = await bearer(token(a, { aud: 'shop-api', exp: now() - 20 }));
  assert.equal(skew.status, 200, 'a token expired 20 s ago is within the 60 s clock skew');
});

test('alg none, and HS256 signed with the public key as secret (algorithm confusion), are 401', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwks: ${inline(a)} }\n`))));
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = { iss: a.iss, sub: 'admin', exp: now() + 3600 };
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
  const r1 = await call(url, '/', { authorization: `Bearer ${none}` });
  assert.equal(r1.status, 401, r1.body);
  const secret = new TextEncoder().encode(await exportSPKI(a.publicKey));
  const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: a.kid }).sign(secret);
  const r2 = await call(url, '/', { authorization: `Bearer ${hs}` });
  assert.equal(r2.status, 401, r2.body);
  assert.match(r2.body, /algorithm/);
});

test('ES256 keys verify ES256 tokens: the algorithm is the key set\'s', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${ec.iss}", jwks: ${inline(ec)} }\n`))));
  const r = await call(url, '/', { authorization: `Bearer ${await token(ec, { sub: 'bob' })}` });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.echo!.principal, `${ec.iss}/bob`);
});

test('fromHeaders with a prefix: the token is taken from that header only, after the prefix', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(
    `  - { issuer: "${a.iss}", jwks: ${inline(a)}, fromHeaders: [{ name: X-Auth-Token, prefix: "Token " }] }\n`))));
  const t = await token(a);
  const ok = await call(url, '/', { 'x-auth-token': `Token ${t}` });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.echo!.principal, `${a.iss}/alice`);
  assert.equal(ok.echo!.headers['x-auth-token'], undefined, 'the token header is removed');
  const bad = await call(url, '/', { 'x-auth-token': `Token ${t.slice(0, -4)}AAAA` });
  assert.equal(bad.status, 401);
  const noPrefix = await call(url, '/', { 'x-auth-token': t });
  assert.equal(noPrefix.status, 200, 'a value without the prefix holds no token');
  assert.equal(noPrefix.echo!.principal, null);
  const elsewhere = await call(url, '/', { authorization: `Bearer ${t}` });
  assert.equal(elsewhere.status, 200);
  assert.equal(elsewhere.echo!.principal, null, 'Authorization is not one of this rule\'s locations');
  const twice = await call(url, '/', { 'x-auth-token': `Token ${t}, Token ${t}` });
  assert.equal(twice.status, 401, 'a repeated token header is refused');
});

test('fromParams: the token is read from the query parameter; a bad one is 401', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(
    `  - { issuer: "${a.iss}", jwks: ${inline(a)}, fromParams: [my_token] }\n`))));
  const t = await token(a, { sub: 'carol' });
  const ok = await call(url, `/items?page=2&my_token=${t}`);
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.echo!.principal, `${a.iss}/carol`);
  assert.equal((await call(url, `/items?my_token=${t}x`)).status, 401);
  assert.equal((await call(url, `/items?my_token=${t}&my_token=${t}`)).status, 401, 'a repeated parameter is refused');
  assert.equal((await call(url, `/items?access_token=${t}`)).echo!.principal, null, 'the default parameter is not looked at');
});

test('the default locations include ?access_token=; a token at two locations is 401', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwks: ${inline(a)} }\n`))));
  const t = await token(a);
  assert.equal((await call(url, `/?access_token=${t}`)).echo!.principal, `${a.iss}/alice`);
  const both = await call(url, `/?access_token=${t}`, { authorization: `Bearer ${t}` });
  assert.equal(both.status, 401);
  assert.match(both.body, /more than one/);
});

test('outputPayloadToHeader carries the base64url payload; outputClaimToHeaders copies claims; clients cannot forge either', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(
    `  - issuer: "${a.iss}"\n    jwks: ${inline(a)}\n    outputPayloadToHeader: X-Jwt-Payload\n    outputClaimToHeaders: [{ header: x-user, claim: sub }, { header: x-tenant, claim: org.tenant }, { header: x-groups, claim: groups }]\n`))));
  const t = await token(a, { org: { tenant: 'acme' }, groups: ['dev', 'ops'] });
  const r = await call(url, '/', { authorization: `Bearer ${t}`, 'x-user': 'mallory' });
  assert.equal(r.status, 200, r.body);
  const h = r.echo!.headers;
  assert.equal(h['x-jwt-payload'], t.split('.')[1]);
  assert.deepEqual(JSON.parse(Buffer.from(h['x-jwt-payload']!, 'base64url').toString()).org, { tenant: 'acme' });
  assert.equal(h['x-user'], 'alice');
  assert.equal(h['x-tenant'], 'acme');
  assert.equal(h['x-groups'], 'dev,ops');
  const forged = await call(url, '/', { 'x-jwt-payload': 'eyJzdWIiOiJhZG1pbiJ9', 'x-user': 'admin' });
  assert.equal(forged.status, 200);
  assert.equal(forged.echo!.headers['x-jwt-payload'], undefined, 'a forged payload header is removed');
  assert.equal(forged.echo!.headers['x-user'], undefined, 'a forged claim header is removed');
});

test('two rules for two issuers: each issuer\'s token authenticates with its own keys only', async () => {
  const { url } = await appBehind(buildJwtAuthenticator(rulesFrom(policy(
    `  - { issuer: "${a.iss}", jwks: ${inline(a)} }\n  - { issuer: "${b.iss}", jwks: ${inline(b)} }\n`))));
  assert.equal((await call(url, '/', { authorization: `Bearer ${await token(a)}` })).echo!.principal, `${a.iss}/alice`);
  assert.equal((await call(url, '/', { authorization: `Bearer ${await token(b, { sub: 'dave' })}` })).echo!.principal, `${b.iss}/dave`);
  // b's token claiming to be from a: a's keys do not verify it.
  const crossed = await new SignJWT({ iss: a.iss, sub: 'alice', exp: now() + 60 }).setProtectedHeader({ alg: 'ES256', kid: b.kid }).sign(b.privateKey);
  assert.equal((await call(url, '/', { authorization: `Bearer ${crossed}` })).status, 401);
});

test('space-delimited claims (scope) become lists in the claims authorization sees', async () => {
  const auth = buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwks: ${inline(a)}, spaceDelimitedClaims: [roles] }\n`)));
  const r = await auth({ headers: { authorization: `Bearer ${await token(a, { scope: 'read write', roles: 'admin  dev', aud: ['x', 'y'], azp: 'web' })}` }, path: '/' });
  assert.ok(r.ok);
  assert.deepEqual(r.claims!.scope, ['read', 'write']);
  assert.deepEqual(r.claims!.roles, ['admin', 'dev']);
  assert.deepEqual(r.audiences, ['x', 'y']);
  assert.equal(r.presenter, 'web');
});

test('a rule whose jwksUri has no keys yet refuses its tokens, and still lets token-less requests through', async () => {
  const rules = rulesFrom(policy(`  - { issuer: "${a.iss}", jwksUri: "https://keys.example.com/jwks.json" }\n`));
  assert.deepEqual(rules[0]!.keys, []);
  const auth = buildJwtAuthenticator(rules);
  const r = await auth({ headers: { authorization: `Bearer ${await token(a)}` }, path: '/' });
  assert.equal(r.ok, false);
  assert.equal((await auth({ headers: {}, path: '/' })).ok, true);
  // With the keys fetched, the same token passes.
  const fetched = new Map([['https://keys.example.com/jwks.json', { keys: [a.jwk as JWK & { kty: string }] }]]);
  const ok = await buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwksUri: "https://keys.example.com/jwks.json" }\n`), fetched))({ headers: { authorization: `Bearer ${await token(a)}` }, path: '/' });
  assert.ok(ok.ok && ok.principal === `${a.iss}/alice`);
});

test('keys without kid: each matching key is tried (a rotation that publishes two keys)', async () => {
  const strip = (w: Issuer) => { const { kid: _k, ...rest } = w.jwk; return rest; };
  const rotated = await issuer(a.iss, 'unused', 'RS256');
  const jwks = JSON.stringify(JSON.stringify({ keys: [strip(a), strip(rotated)] }));
  const auth = buildJwtAuthenticator(rulesFrom(policy(`  - { issuer: "${a.iss}", jwks: ${jwks} }\n`)));
  const signNoKid = (w: Issuer) => new SignJWT({ iss: a.iss, sub: 'erin', exp: now() + 60 }).setProtectedHeader({ alg: 'RS256' }).sign(w.privateKey);
  for (const w of [a, rotated]) {
    const r = await auth({ headers: { authorization: `Bearer ${await signNoKid(w)}` }, path: '/' });
    assert.ok(r.ok, `signed by ${w === a ? 'the old' : 'the new'} key`);
  }
  const r = await auth({ headers: { authorization: `Bearer ${await signNoKid(impostor)}` }, path: '/' });
  assert.equal(r.ok, false);
});

test('without rules the authenticator answers every request with one resolved constant', async () => {
  const auth = buildJwtAuthenticator(undefined);
  const p1 = auth({ headers: { authorization: 'Bearer x.y.z' }, path: '/?access_token=a.b.c' });
  assert.equal(p1, auth({ headers: {}, path: '/' }));
  const r = await p1;
  assert.ok(r.ok);
  assert.equal(r.principal, undefined);
  assert.deepEqual([r.headersToRemove, r.headersToSet], [[], []]);
});
