/**
 * RequestAuthentication → one workload's JWT rules: which policies apply
 * (root namespace, namespace, selector, targetRefs), keys inlined from the
 * JWKS map or the resource's inline `jwks`, defaults filled, diagnostics for
 * key sets that are missing or unusable, and the list of URIs to fetch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import { hashOf } from '../../src/compile/hash.js';
import {
  compileRequestAuthn, jwksSources, parseJwks, requestAuthnDiagnostics, type JwksEntry,
} from '../../src/compile/request-authentication.js';
import { DEFAULT_JWT_LOCATIONS } from '../../src/protocol/request-authn.js';
import { resources } from '../helpers/mesh.js';

const KEY = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' };
const URI = 'https://issuer.example.com/.well-known/jwks.json';

function ra(name: string, namespace: string, spec: string): string {
  return `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${spec}`;
}

const configOf = (yaml: string) => ConfigSet.of(resources(yaml));
const compileFor = (config: ConfigSet, namespace: string, labels: Record<string, string>, jwks: ReadonlyMap<string, JwksEntry> = new Map()) =>
  compileRequestAuthn({ config, rootNamespace: 'istio-system', workload: { namespace, labels }, jwks });

const SCOPES = [
  ra('mesh', 'istio-system', `  jwtRules: [{ issuer: mesh-issuer, jwks: '{"keys":[]}' }]\n`),
  ra('mesh-selected', 'istio-system', `  selector: { matchLabels: { tier: edge } }\n  jwtRules: [{ issuer: edge-issuer, jwks: '{"keys":[]}' }]\n`),
  ra('shop-wide', 'shop', `  jwtRules: [{ issuer: shop-issuer, jwks: '{"keys":[]}' }]\n`),
  ra('api-only', 'shop', `  selector: { matchLabels: { app: api } }\n  jwtRules: [{ issuer: api-issuer, jwks: '{"keys":[]}' }]\n`),
  ra('other-ns', 'billing', `  jwtRules: [{ issuer: billing-issuer, jwks: '{"keys":[]}' }]\n`),
  ra('targeted', 'shop', `  targetRefs: [{ kind: Service, group: "", name: api }]\n  jwtRules: [{ issuer: targeted-issuer, jwks: '{"keys":[]}' }]\n`),
  ra('gw-targeted', 'shop', `  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: edge }]\n  jwtRules: [{ issuer: gateway-issuer, jwks: '{"keys":[]}' }]\n`),
].join('');

const issuers = (config: ConfigSet, ns: string, labels: Record<string, string>) => compileFor(config, ns, labels)?.rules.map((r) => r.issuer) ?? [];

test('policies apply from the root namespace (mesh-wide, selectors in every namespace) and the own namespace; targetRefs skip sidecars', () => {
  const config = configOf(SCOPES);
  assert.deepEqual(issuers(config, 'shop', { app: 'api' }), ['api-issuer', 'mesh-issuer', 'shop-issuer'], 'sorted by issuer, as Istio orders them');
  assert.deepEqual(issuers(config, 'shop', { app: 'web' }), ['mesh-issuer', 'shop-issuer']);
  assert.deepEqual(issuers(config, 'shop', { app: 'web', tier: 'edge' }), ['edge-issuer', 'mesh-issuer', 'shop-issuer'], 'a root-namespace selector applies in every namespace');
  assert.deepEqual(issuers(config, 'billing', { app: 'ledger' }), ['billing-issuer', 'mesh-issuer']);
  assert.deepEqual(issuers(config, 'shop', { app: 'gw', 'gateway.networking.k8s.io/gateway-name': 'edge' }), ['gateway-issuer', 'mesh-issuer', 'shop-issuer'],
    'a Gateway API gateway takes the policies that target it');
  assert.equal(compileFor(configOf(ra('api-only', 'shop', `  selector: { matchLabels: { app: api } }\n  jwtRules: [{ issuer: x, jwks: '{"keys":[]}' }]\n`)), 'shop', { app: 'web' }), undefined,
    'no applicable rule: no request authentication at all');
});

test('a jwksUri rule gets the fetched keys inlined; without them it has no keys, says why, and the diagnostic names the resource', () => {
  const config = configOf(ra('jwt', 'shop', `  jwtRules:\n  - issuer: https://issuer.example.com\n    jwksUri: ${URI}\n    audiences: [shop]\n`));
  const pending = compileFor(config, 'shop', {});
  assert.deepEqual(pending!.rules[0]!.keys, []);
  assert.equal(pending!.rules[0]!.keysError, 'JWKS not fetched yet');
  const diags = requestAuthnDiagnostics(config, new Map());
  assert.equal(diags.length, 1);
  assert.equal(diags[0]!.resource, 'RequestAuthentication shop/jwt');
  assert.equal(diags[0]!.field, 'spec.jwtRules[0].jwksUri');
  assert.equal(diags[0]!.level, 'warning');
  assert.match(diags[0]!.message, /issuer\.example\.com.*401/);
  assert.equal(diags[0]!.position!.line, 8, 'points at the jwksUri line');

  const failed = new Map([[URI, { error: 'connect ECONNREFUSED 10.0.0.1:443' }]]);
  assert.equal(compileFor(config, 'shop', {}, failed)!.rules[0]!.keysError, 'JWKS fetch failed');
  assert.match(requestAuthnDiagnostics(config, failed)[0]!.message, /ECONNREFUSED/);

  const keys = Object.freeze([KEY]);
  const fetched = new Map([[URI, { keys, version: 'v1' }]]);
  const ready = compileFor(config, 'shop', {}, fetched)!;
  const rule = ready.rules[0]!;
  assert.equal(rule.keys, keys, 'the fetched key list is shared, not copied');
  assert.equal(rule.keysFrom, URI);
  assert.equal(rule.keysError, undefined);
  assert.deepEqual(rule.audiences, ['shop']);
  assert.deepEqual(requestAuthnDiagnostics(config, fetched), []);
  // A stale entry (last good keys and a failed refresh) still inlines the keys.
  assert.equal(compileFor(config, 'shop', {}, new Map([[URI, { keys, version: 'v1', error: 'timeout' }]]))!.rules[0]!.keys, keys);
});

test('the compiled rules are frozen, deterministic, and their hash follows the key set version', () => {
  const config = configOf(ra('jwt', 'shop', `  jwtRules: [{ issuer: i, jwksUri: "${URI}" }]\n`));
  const v1 = new Map([[URI, { keys: [KEY], version: 'v1' }]]);
  const x = compileFor(config, 'shop', {}, v1)!;
  const y = compileFor(config, 'shop', {}, v1)!;
  assert.deepEqual(x, y);
  assert.equal(hashOf(x), hashOf(y));
  assert.ok(Object.isFrozen(x) && Object.isFrozen(x.rules) && Object.isFrozen(x.rules[0]) && Object.isFrozen(x.rules[0]!.locations));
  const v2 = compileFor(config, 'shop', {}, new Map([[URI, { keys: [{ ...KEY, kid: 'k2' }], version: 'v2' }]]))!;
  assert.notEqual(hashOf(v2), hashOf(x));
  assert.equal(JSON.stringify(JSON.parse(JSON.stringify(x))), JSON.stringify(x), 'plain JSON data');
});

test('defaults: Authorization Bearer and access_token, forwardOriginalToken false, scope and permission space-delimited; given locations replace them', () => {
  const config = configOf(ra('jwt', 'shop', `  jwtRules:
  - { issuer: a, jwks: '{"keys":[]}' }
  - issuer: b
    jwks: '{"keys":[]}'
    fromHeaders: [{ name: X-Goog-IAP-JWT-Assertion }, { name: Authorization, prefix: "Istio " }]
    fromCookies: [session]
    outputPayloadToHeader: X-Jwt-Payload
    outputClaimToHeaders: [{ header: X-Sub, claim: sub }]
    forwardOriginalToken: true
    spaceDelimitedClaims: [roles]
`));
  const [ra1, rb] = compileFor(config, 'shop', {})!.rules;
  assert.equal(ra1!.locations, DEFAULT_JWT_LOCATIONS);
  assert.deepEqual(ra1!.locations, { headers: [{ name: 'authorization', prefix: 'Bearer ' }], params: ['access_token'], cookies: [] });
  assert.equal(ra1!.forwardOriginalToken, false);
  assert.deepEqual(ra1!.spaceDelimitedClaims, ['permission', 'scope']);
  assert.deepEqual(rb!.locations, { headers: [{ name: 'x-goog-iap-jwt-assertion', prefix: '' }, { name: 'authorization', prefix: 'Istio ' }], params: [], cookies: ['session'] });
  assert.equal(rb!.outputPayloadToHeader, 'x-jwt-payload');
  assert.deepEqual(rb!.outputClaimToHeaders, [{ header: 'x-sub', claim: 'sub' }]);
  assert.equal(rb!.forwardOriginalToken, true);
  assert.deepEqual(rb!.spaceDelimitedClaims, ['permission', 'roles', 'scope']);
  assert.equal(rb!.source, 'RequestAuthentication shop/jwt jwtRules[1]');
});

test('inline jwks is parsed here: keys kept, entries that are not keys dropped with a diagnostic, bad JSON reported', () => {
  const doc = JSON.stringify({ keys: [KEY, 'junk', { use: 'sig' }] });
  const config = configOf(ra('jwt', 'shop', `  jwtRules: [{ issuer: i, jwks: ${JSON.stringify(doc)} }]\n`));
  const rule = compileFor(config, 'shop', {})!.rules[0]!;
  assert.deepEqual(rule.keys, [KEY]);
  assert.equal(rule.keysFrom, 'inline');
  const d = requestAuthnDiagnostics(config, new Map());
  assert.equal(d.length, 1);
  assert.equal(d[0]!.field, 'spec.jwtRules[0].jwks');
  assert.match(d[0]!.message, /2 entries/);

  const bad = parseJwks('{"keys": [');
  assert.deepEqual(bad.keys, []);
  assert.match(bad.error!, /not valid JSON/);
  assert.match(parseJwks('{"kty":"EC"}').error!, /"keys" list/);
  const empty = configOf(ra('jwt', 'shop', `  jwtRules: [{ issuer: i, jwks: '{"keys":[]}' }]\n`));
  assert.match(requestAuthnDiagnostics(empty, new Map())[0]!.message, /no usable key/);
});

test('a rule with an issuer but no key source (OpenID Connect discovery) has no keys and a diagnostic saying what to set', () => {
  const config = configOf(ra('jwt', 'shop', `  jwtRules: [{ issuer: https://accounts.example.com }]\n`));
  const rule = compileFor(config, 'shop', {})!.rules[0]!;
  assert.deepEqual(rule.keys, []);
  assert.equal(rule.keysFrom, 'none');
  const d = requestAuthnDiagnostics(config, new Map());
  assert.equal(d.length, 1);
  assert.equal(d[0]!.field, 'spec.jwtRules[0]');
  assert.match(d[0]!.message, /jwksUri or an inline jwks/);
  assert.equal(d[0]!.code, 'TRL1303');
});

test('jwksSources lists every jwksUri once, with the longest timeout asked for (5 s by default), inline jwks excluded', () => {
  const config = configOf([
    ra('one', 'shop', `  jwtRules: [{ issuer: a, jwksUri: "${URI}" }, { issuer: b, jwksUri: "http://keys.local/b.json", timeout: 2s }]\n`),
    ra('two', 'istio-system', `  jwtRules: [{ issuer: a2, jwksUri: "${URI}", timeout: 10s }, { issuer: c, jwks: '{"keys":[]}' }]\n`),
  ].join(''));
  assert.deepEqual(jwksSources(config), [
    { uri: 'http://keys.local/b.json', timeoutMs: 2000 },
    { uri: URI, timeoutMs: 10000 },
  ]);
});
