/**
 * The parts of consistent hashing below the balancer: our 53-bit hash, the
 * ring's sizes, the Maglev table's shares, reading keys from requests
 * (header, cookie, source IP, query) and making the cookie; and how the
 * compiler maps a DestinationRule's loadBalancer onto the snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import type { LoadBalancer } from '../../src/protocol/snapshot.js';
import { hash53, hex53 } from '../../src/proxy/lb/hash.js';
import { cookieValue, hashKeyReader, setCookieValue, type HashInput } from '../../src/proxy/lb/hash-key.js';
import { maglevTable } from '../../src/proxy/lb/maglev.js';
import { MAXIMUM_RING_SIZE, ringShares, ringTable } from '../../src/proxy/lb/ring-hash.js';
import type { Headers } from '../../src/proxy/headers.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';
import { errorsOf, loadSpec } from '../api/kind-table.js';

test('hash53: integers in [0, 2^53), stable, seeded, and spread evenly over low and high bits', () => {
  const h = hash53('api.shop:8080');
  assert.ok(Number.isSafeInteger(h) && h >= 0 && h < 2 ** 53);
  assert.equal(hash53('api.shop:8080'), h, 'stable');
  assert.notEqual(hash53('api.shop:8080', 1), h, 'a seed gives another hash');
  assert.notEqual(hash53('ab'), hash53('ba'));
  const low = new Array<number>(64).fill(0);
  const high = new Array<number>(64).fill(0);
  const N = 64_000;
  for (let i = 0; i < N; i++) {
    const v = hash53(`10.0.${i >> 8}.${i & 255}:80_${i % 7}`);
    low[v % 64]!++;
    high[Math.floor(v / 2 ** 47)]!++;
  }
  for (const buckets of [low, high]) for (const c of buckets) assert.ok(Math.abs(c - N / 64) < N / 64 * 0.15, `bucket ${c} of ${N / 64} expected`);
  assert.equal(hex53(255), '00000000000000ff');
});

test('ring sizes: the lightest host gets minimumRingSize points, heavier ones in proportion, within the 8M cap', () => {
  assert.deepEqual(ringShares([1, 1, 1], 1024), [1024, 1024, 1024]);
  assert.deepEqual(ringShares([2, 1], 1024), [2048, 1024]);
  assert.deepEqual(ringShares([5], 16), [16]);
  const many = ringShares(new Array(1000).fill(1), 1024);
  const total = many.reduce((a, b) => a + b, 0);
  assert.ok(total >= 1024 && total <= 140_000, `a thousand hosts share a ring of about 131072 points (${total})`);
  const skewed = ringShares([1, 10_000_000], 1024);
  assert.ok(skewed[0]! >= 1 && skewed[0]! + skewed[1]! <= MAXIMUM_RING_SIZE + 1, `capped at 8M: ${skewed}`);
  const big = ringShares([1, 1], 500_000);
  assert.ok(big[0]! + big[1]! >= 500_000, 'a big minimum is still a minimum');
  const t = ringTable([1, 1, 1], ['a', 'b', 'c'], 64);
  assert.equal(t.owner.length, 192);
});

test('maglev table: every entry owned, shares in proportion to weight, other table sizes too', () => {
  const t = maglevTable([1, 2, 1], ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'], 65537);
  const counts = [0, 0, 0];
  for (const o of t.owner) counts[o]!++;
  assert.equal(counts[0]! + counts[1]! + counts[2]!, 65537);
  assert.ok(Math.abs(counts[1]! / 65537 - 0.5) < 0.01 && Math.abs(counts[0]! / 65537 - 0.25) < 0.01, JSON.stringify(counts));
  const small = maglevTable([1, 1, 1], ['a', 'b', 'c'], 251);
  const sc = [0, 0, 0];
  for (const o of small.owner) sc[o]!++;
  assert.ok(sc.every((c) => c >= 83 && c <= 84), `251 entries, 83 or 84 each: ${sc}`);
  assert.equal(small.slotOf(251 * 7 + 5), 5);
});

test('cookieValue: finds the named cookie among others, strips quotes; absent, empty or a prefix of another name is none', () => {
  assert.equal(cookieValue('theme=dark; session=abc; x=1', 'session'), 'abc');
  assert.equal(cookieValue('session="q v"', 'session'), 'q v');
  assert.equal(cookieValue(['a=1', 'session=z'], 'session'), 'z');
  assert.equal(cookieValue('  session =  s1 ;', 'session'), 's1');
  assert.equal(cookieValue('sessionid=abc', 'session'), undefined);
  assert.equal(cookieValue('mysession=abc', 'session'), undefined);
  assert.equal(cookieValue('session=', 'session'), undefined);
  assert.equal(cookieValue(undefined, 'session'), undefined);
});

const lbWith = (hashOn: LoadBalancer['hashOn']): LoadBalancer => ({ policy: 'CONSISTENT_HASH', ...(hashOn ? { hashOn } : {}), locality: { enabled: false, failover: [], distribute: [], failoverPriority: [] } });
const input = (headers: Headers, path = '/', remoteAddress = '10.1.2.3', remotePort = 50_000): HashInput => ({ headers, path, remoteAddress, req: { socket: { remotePort, localAddress: '127.0.0.1', localPort: 15001 } } });

test('hashKeyReader: header, cookie, source IP, query parameter; none for other policies or without a key', () => {
  assert.equal(hashKeyReader(lbWith({ header: 'x-user' }))!(input({ 'x-user': 'u1' })), 'u1');
  assert.equal(hashKeyReader(lbWith({ header: 'x-user' }))!(input({ 'x-user': ['a', 'b'] })), 'a,b');
  assert.equal(hashKeyReader(lbWith({ header: 'x-user' }))!(input({})), undefined);
  assert.equal(hashKeyReader(lbWith({ cookie: 'sid' }))!(input({ cookie: 'a=1; sid=s9' })), 's9');
  assert.equal(hashKeyReader(lbWith({ sourceIp: true }))!(input({})), '10.1.2.3');
  assert.equal(hashKeyReader(lbWith({ queryParameter: 'cart' }))!(input({}, '/x?a=1&cart=c%207')), 'c 7');
  assert.equal(hashKeyReader(lbWith({ queryParameter: 'cart' }))!(input({}, '/x')), undefined);
  assert.equal(hashKeyReader(lbWith(undefined)), undefined);
  assert.equal(hashKeyReader({ ...lbWith({ header: 'x' }), policy: 'ROUND_ROBIN' }), undefined);
  assert.equal(hashKeyReader(lbWith({ cookie: 'sid' }))!.cookie, undefined, 'no ttl: the proxy makes no cookie');
});

test('cookie with a ttl: a request without it gets one per connection, set on the response with its attributes', () => {
  const r = hashKeyReader(lbWith({ cookie: 'sid', setCookie: { ttlSeconds: 3600, path: '/shop', attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'Secure' }] } }))!;
  assert.ok(r.cookie);
  const a = r.cookie.make(input({}), undefined);
  assert.match(a.key, /^[0-9a-f]{16}$/);
  assert.equal(r.cookie.make(input({}), undefined).key, a.key, 'the same connection, the same cookie (as Envoy)');
  assert.notEqual(r.cookie.make(input({}, '/', '10.1.2.3', 50_001), undefined).key, a.key, 'another connection, another cookie');
  const h: Headers = { 'set-cookie': 'theme=dark', 'x-app': '1' };
  let baseRan = false;
  r.cookie.make(input({}), (hh) => { baseRan = true; hh['x-route'] = 'y'; }).edit(h);
  assert.ok(baseRan, 'the route\'s own response edit still runs');
  assert.deepEqual(h['set-cookie'], ['theme=dark', `sid=${a.key}; Max-Age=3600; Path=/shop; HttpOnly; SameSite=Strict; Secure`]);
  assert.equal(h['x-route'], 'y');
  assert.equal(r(input({ cookie: `sid=${a.key}` })), a.key, 'sent back, it is the key');
  assert.equal(setCookieValue('sid', 'v', { ttlSeconds: 0, attributes: [] }), 'sid=v; HttpOnly', 'ttl 0: a session cookie');
});

const compiled = (trafficPolicy: string) => {
  const yaml = TWO_SERVICES.replace('spec:\n  host: api\n  subsets:', `spec:\n  host: api\n  trafficPolicy: ${trafficPolicy}\n  subsets:`);
  const mesh = meshFromYaml(yaml);
  const snap = compile(mesh.config, mesh.registry, { workload: 'web-v1', namespace: 'shop' });
  return snap.clusters.find((c) => c.service.startsWith('api') && c.subset === undefined)!.lb;
};

test('compile: consistentHash is RING_HASH by default (1024, or the deprecated minimumRingSize), MAGLEV when asked', () => {
  assert.deepEqual(compiled('{ loadBalancer: { consistentHash: { httpHeaderName: X-User } } }').hash, { algorithm: 'RING_HASH', minimumRingSize: 1024 });
  assert.deepEqual(compiled('{ loadBalancer: { consistentHash: { httpHeaderName: x, minimumRingSize: 4096 } } }').hash, { algorithm: 'RING_HASH', minimumRingSize: 4096 });
  assert.deepEqual(compiled('{ loadBalancer: { consistentHash: { httpHeaderName: x, ringHash: { minimumRingSize: 2048 } } } }').hash, { algorithm: 'RING_HASH', minimumRingSize: 2048 });
  assert.deepEqual(compiled('{ loadBalancer: { consistentHash: { httpHeaderName: x, maglev: { tableSize: 251 } } } }').hash, { algorithm: 'MAGLEV', tableSize: 251 });
  const lb = compiled('{ loadBalancer: { consistentHash: { httpHeaderName: X-User } } }');
  assert.equal(lb.hashOn?.header, 'x-user');
  assert.equal(compiled('{ loadBalancer: { simple: ROUND_ROBIN } }').hash, undefined);
});

test('compile: httpCookie with a ttl makes cookies (ttl in seconds, path, attributes); without a ttl it does not', () => {
  const on = compiled('{ loadBalancer: { consistentHash: { httpCookie: { name: sid, ttl: 90s, path: /, attributes: [{ name: SameSite, value: Lax }] } } } }').hashOn!;
  assert.equal(on.cookie, 'sid');
  assert.deepEqual(on.setCookie, { ttlSeconds: 90, path: '/', attributes: [{ name: 'SameSite', value: 'Lax' }] });
  assert.equal(compiled('{ loadBalancer: { consistentHash: { httpCookie: { name: sid } } } }').hashOn!.setCookie, undefined);
  assert.equal(compiled('{ loadBalancer: { consistentHash: { httpCookie: { name: sid, ttl: 0s } } } }').hashOn!.setCookie!.ttlSeconds, 0);
});

test('compile: warmup (and the older warmupDurationSecs) for ROUND_ROBIN and LEAST_REQUEST only, with Envoy\'s defaults', () => {
  assert.deepEqual(compiled('{ loadBalancer: { simple: ROUND_ROBIN, warmup: { duration: 30s } } }').warmup, { durationMs: 30_000, aggression: 1, minimumPercent: 10 });
  assert.deepEqual(compiled('{ loadBalancer: { simple: LEAST_REQUEST, warmup: { duration: 2s, aggression: 2, minimumPercent: 25 } } }').warmup, { durationMs: 2000, aggression: 2, minimumPercent: 25 });
  assert.deepEqual(compiled('{ loadBalancer: { warmupDurationSecs: 60s } }').warmup, { durationMs: 60_000, aggression: 1, minimumPercent: 10 }, 'the default policy, LEAST_REQUEST');
  assert.equal(compiled('{ loadBalancer: { simple: RANDOM, warmup: { duration: 30s } } }').warmup, undefined);
  assert.equal(compiled('{ loadBalancer: { simple: ROUND_ROBIN } }').warmup, undefined);
});

test('schema: warmup is no longer flagged as not enforced; a bad maglev table size is still an error', () => {
  const r = loadSpec('networking.istio.io/v1', 'DestinationRule', { host: 'api', trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '60s' } } } });
  assert.deepEqual(errorsOf(r), []);
  assert.deepEqual(r.diagnostics.filter((d) => d.code === 'TRL1005').map((d) => d.field), []);
  const bad = loadSpec('networking.istio.io/v1', 'DestinationRule', { host: 'api', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x', maglev: { tableSize: 1000 } } } } });
  assert.ok(errorsOf(bad).some((e) => e.includes('tableSize')), JSON.stringify(errorsOf(bad)));
});
