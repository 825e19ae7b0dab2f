/**
 * Local rate limits: the token bucket and the fixed window on their own
 * (clocks given), then RateLimitPolicies enforced by a real callee sidecar on
 * its inbound side, with real callers' sidecars over mTLS: each caller
 * identity its own bucket, 429 with retry-after and x-ratelimit-* headers and
 * the flag RL, caller groups and route matches that leave other requests
 * alone, buckets by header, a windowed quota that refuses until the window
 * moves, and the decisions counted in /metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { LocalLimit } from '../../src/proxy/ratelimit/local.js';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { metricValue, MTLS_YAML, MtlsMesh, recordTap, type Tap } from '../helpers/mtls-mesh.js';
import { Client, startProxy } from '../helpers/proxy.js';
import { spiffeId } from '../helpers/test-pki.js';
import { applyCalleeYaml } from '../helpers/zt-mesh.js';

const API = 'api-v1.shop';
const CLIENT = 'cluster.local/ns/shop/sa/client';
const OTHER = 'cluster.local/ns/shop/sa/other';

test('token bucket: burst, then one token per period; a reconfigured bucket keeps its tokens and takes the new rate', () => {
  let now = 0;
  const l = new LocalLimit({ kind: 'token-bucket', requests: 10, periodMs: 1000, burst: 3 }, { now: () => now });
  assert.deepEqual([1, 2, 3, 4].map(() => l.take('a').allowed), [true, true, true, false]);
  const refused = l.take('a');
  assert.equal(refused.retryAfterMs, 100, 'one token every 100 ms');
  assert.equal(l.take('b').allowed, true, 'another key has its own bucket');
  now = 100;
  assert.equal(l.take('a').allowed, true);
  assert.equal(l.take('a').allowed, false);
  l.reconfigure({ kind: 'token-bucket', requests: 100, periodMs: 1000, burst: 3 });
  now = 120;
  assert.equal(l.take('a').allowed, true, 'the new rate (one per 10 ms) applies at once');
  now = 10_000;
  assert.equal(l.take('a').remaining, 2, 'never more than the burst');
});

test('fixed window: refuses until the window moves, aligned on the wall clock', () => {
  let wall = 4_000;
  const l = new LocalLimit({ kind: 'window', requests: 2, windowMs: 2000 }, { wall: () => wall });
  assert.deepEqual([1, 2, 3].map(() => l.take('k').allowed), [true, true, false]);
  wall = 5_999;
  const o = l.take('k');
  assert.equal(o.allowed, false);
  assert.equal(o.retryAfterMs, 1);
  wall = 6_000;
  assert.equal(l.take('k').allowed, true, 'a new window');
});

function policy(name: string, limits: string, extra = ''): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ${name}, namespace: shop }
spec:
  targetRef: { kind: Service, name: api }
${extra}  limits:
${limits}`;
}

describe('local RateLimitPolicies on a real inbound sidecar', () => {
  let m: MtlsMesh;
  let other: DataPlane;
  let otherClient: Client;
  let records: Tap<RequestRecord>;

  before(async () => {
    records = recordTap();
    m = await MtlsMesh.start({ yaml: MTLS_YAML, caller: { workload: 'client', namespace: 'shop' }, calleeMode: 'PERMISSIVE' });
    // A second caller with its own identity, same view of the mesh.
    other = await startProxy({ mode: 'sidecar' }, m.snapshot);
    await m.certify(other, spiffeId('shop', 'other'));
    otherClient = new Client(other.addresses.outbound!);
  });

  after(async () => {
    records?.stop();
    await otherClient?.close();
    await other?.close(100);
    await m?.close();
  });

  const statuses = async (c: Client, n: number, url: string, headers: Record<string, string> = {}) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await c.call(url, { headers })).status);
    return out;
  };

  test('each caller identity has its own bucket; past it a 429 with retry-after, x-ratelimit-* and the flag RL', async (t) => {
    t.after(applyCalleeYaml(m, API, policy('per-caller', `  - name: per-caller
    rate: { requests: 5, per: 1m }
`)));
    records.clear();
    assert.deepEqual(await statuses(m.client, 5, 'http://api/a'), [200, 200, 200, 200, 200]);
    const r = await m.client.call('http://api/a');
    assert.equal(r.status, 429);
    assert.match(r.text, /rate limited: shop\/per-caller limit per-caller/);
    assert.equal(r.headers['x-ratelimit-limit'], '5');
    assert.equal(r.headers['x-ratelimit-remaining'], '0');
    assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 12, `retry-after ${String(r.headers['retry-after'])}`);
    assert.equal(r.headers['x-ratelimit-reset'], r.headers['retry-after']);
    // The other caller is not held by client's bucket.
    assert.deepEqual(await statuses(otherClient, 5, 'http://api/a'), [200, 200, 200, 200, 200]);
    const inbound429 = records.items.filter((x) => x.direction === 'inbound' && x.status === 429);
    assert.equal(inbound429.length, 1);
    assert.deepEqual(inbound429[0]!.responseFlags, ['RL']);
    assert.equal(inbound429[0]!.peerPrincipal, CLIENT);
    const dp = m.callee(API).proxy;
    assert.equal(await metricValue(dp, 'trellis_proxy_rate_limit_requests_total', { policy: 'shop/per-caller', caller: CLIENT, decision: 'allowed' }), 5);
    assert.equal(await metricValue(dp, 'trellis_proxy_rate_limit_requests_total', { policy: 'shop/per-caller', caller: CLIENT, decision: 'limited' }), 1);
    assert.equal(await metricValue(dp, 'trellis_proxy_rate_limit_requests_total', { policy: 'shop/per-caller', caller: OTHER, decision: 'limited' }), 0);
  });

  test('a limit narrowed to callers and a route leaves other callers and other paths alone', async (t) => {
    t.after(applyCalleeYaml(m, API, policy('narrow', `  - name: others-writes
    by: All
    callers: { principals: [${OTHER}] }
    match: [{ methods: [POST], paths: [/write*] }]
    rate: { requests: 2, per: 1m }
`)));
    assert.deepEqual(await statuses(m.client, 4, 'http://api/write/1'), [200, 200, 200, 200], 'GET is not the route');
    const post = async (c: Client, path: string) => (await c.call(`http://api${path}`, { method: 'POST', body: 'x' })).status;
    assert.deepEqual([await post(m.client, '/write/1'), await post(m.client, '/write/2'), await post(m.client, '/write/3')], [200, 200, 200], 'client is not in the group');
    assert.deepEqual([await post(otherClient, '/write/1'), await post(otherClient, '/write/2'), await post(otherClient, '/write/3')], [200, 200, 429]);
    assert.equal(await post(otherClient, '/read'), 200, 'another path');
  });

  test('by Header: each value its own bucket; a request without the header is not counted', async (t) => {
    t.after(applyCalleeYaml(m, API, policy('tenants', `  - name: tenant
    by: Header
    header: x-tenant
    rate: { requests: 2, per: 1m }
`)));
    assert.deepEqual(await statuses(m.client, 3, 'http://api/t', { 'x-tenant': 'acme' }), [200, 200, 429]);
    assert.deepEqual(await statuses(otherClient, 2, 'http://api/t', { 'x-tenant': 'globex' }), [200, 200]);
    assert.deepEqual(await statuses(m.client, 3, 'http://api/t'), [200, 200, 200]);
  });

  test('a windowed quota refuses until the window moves, then allows again', async (t) => {
    t.after(applyCalleeYaml(m, API, policy('quota', `  - name: q
    quota: { requests: 3, per: 2s }
`)));
    // Start early in a window, so that the first four requests fall in the same one.
    const toNext = 2000 - (Date.now() % 2000);
    if (toNext < 1200) await new Promise((r) => setTimeout(r, toNext + 20));
    assert.deepEqual(await statuses(m.client, 4, 'http://api/q'), [200, 200, 200, 429]);
    const refused = await m.client.call('http://api/q');
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers['retry-after']) <= 2);
    await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 30));
    assert.equal((await m.client.call('http://api/q')).status, 200, 'the window moved');
  });

  test('a plaintext caller straight to the inbound listener is limited too (one shared bucket), and the limit goes with the policy', async () => {
    const restore = applyCalleeYaml(m, API, policy('plain', `  - name: all
    rate: { requests: 2, per: 1m }
`));
    const direct = (host: string) => new Promise<number>((resolve, reject) => {
      const [h, p] = m.callee(API).inbound.split(':');
      const req = request({ host: h, port: Number(p), path: '/p', headers: { host } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
      req.on('error', reject);
      req.end();
    });
    const host = 'api.shop.svc.cluster.local:80';
    assert.deepEqual([await direct(host), await direct(host), await direct(host)], [200, 200, 429]);
    restore();
    assert.deepEqual([await direct(host), await direct(host), await direct(host)], [200, 200, 200], 'no policy, no limit');
  });
});
