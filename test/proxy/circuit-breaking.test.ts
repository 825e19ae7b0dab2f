/**
 * Circuit breaking through a real sidecar to real upstream servers, with
 * Envoy's meaning of each DestinationRule connectionPool setting:
 * tcp.maxConnections (per host; the rest wait), http1MaxPendingRequests and
 * http2MaxRequests (beyond: 503 UO at once, counted), http.maxRetries
 * (beyond: the retry is not made, the response goes out flagged UO),
 * maxRequestsPerConnection and idleTimeout (seen as connections at the
 * server). Each limit has a negative case: under it nothing is refused.
 * Counts, not timings: "at once" means answered while the upstream still
 * holds the accepted requests.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker } from '../../src/proxy/circuit-breaker.js';
import { DEFAULTS } from '../../src/compile/defaults.js';
import { eventually, type Reply } from '../helpers/proxy.js';
import { API_V1_CLUSTER, apiRoutes, apiRule, CallerProxy, sleep, Upstream } from './resilience-kit.js';

const TO_V1 = apiRoutes(`
  - name: held
    match: [{ uri: { prefix: /held } }]
    retries: { attempts: 0 }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: flaky
    match: [{ uri: { prefix: /status } }]
    retries: { attempts: 3, retryOn: "503" }
    route: [{ destination: { host: api, subset: v1 } }]
`);

let up: Upstream;
let caller: CallerProxy;

before(async () => {
  up = await Upstream.start('api');
  caller = await CallerProxy.start(TO_V1 + apiRule(), up, up);
});
after(async () => {
  await caller?.close();
  await up?.close();
});
beforeEach(() => {
  up.release();
  up.reset();
});

/** Sends `n` requests at once (not awaited), numbered paths under `prefix`. */
function burst(prefix: string, n: number): Promise<Reply>[] {
  return Array.from({ length: n }, (_, i) => caller.call(`http://api${prefix}/${i}`));
}

/** Resolves with the replies that arrived, once `count` of them did. */
async function firstReplies(calls: Promise<Reply>[], count: number, ms = 5000): Promise<Reply[]> {
  const got: Reply[] = [];
  for (const c of calls) void c.then((r) => got.push(r), () => undefined);
  await eventually(() => (got.length >= count ? true : undefined), ms, () => `${got.length} of ${count} replies`);
  return [...got];
}

const uoRecords = (prefix: string) => caller.records.filter((r) => r.path.startsWith(prefix) && r.responseFlags.includes('UO'));

test('breaker: Istio\'s defaults are unlimited, and such a breaker does no accounting', () => {
  const b = new CircuitBreaker('c', DEFAULTS.connectionPool);
  assert.equal(b.tracking, false);
  assert.equal(new CircuitBreaker('c', { ...DEFAULTS.connectionPool, maxRequests: 10 }).tracking, true);
  assert.equal(new CircuitBreaker('c', { ...DEFAULTS.connectionPool, retryBudget: { percent: 20, minRetryConcurrency: 3 } }).tracking, true);
});

test('breaker: the retry budget allows max(minRetryConcurrency, percent of active + pending) retries', () => {
  const b = new CircuitBreaker('c', { ...DEFAULTS.connectionPool, retryBudget: { percent: 20, minRetryConcurrency: 3 } });
  b.requests = 40;
  b.pending = 10;
  assert.equal(b.retryLimit, 10);
  b.requests = 5;
  b.pending = 0;
  assert.equal(b.retryLimit, 3);
  for (let i = 0; i < 3; i++) assert.ok(b.takeRetry());
  assert.equal(b.takeRetry(), false, 'the fourth is refused');
  b.releaseRetry();
  assert.ok(b.takeRetry());
  const m = new CircuitBreaker('c', { ...DEFAULTS.connectionPool, maxRetries: 1 });
  assert.ok(m.takeRetry());
  assert.equal(m.takeRetry(), false);
});

test('maxConnections: requests beyond it wait for the connection (none refused); without it each gets its own', async () => {
  caller.configure(TO_V1 + apiRule('connectionPool: { tcp: { maxConnections: 1 } }'));
  up.holding = true;
  const calls = burst('/held/mc', 4);
  await eventually(() => (up.held === 1 ? true : undefined), 5000, () => `${up.held} held`);
  await sleep(100);
  assert.equal(up.held, 1, 'one request at a time on the one connection');
  up.release();
  const replies = await Promise.all(calls);
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200]);
  assert.equal(up.maxInFlight, 1);
  assert.equal(new Set(up.hits.map((h) => h.connection)).size, 1, 'all four on one connection');

  caller.configure(TO_V1 + apiRule());
  up.reset();
  up.holding = true;
  const free = burst('/held/free', 4);
  await eventually(() => (up.held === 4 ? true : undefined), 5000, () => `${up.held} held`);
  up.release();
  assert.deepEqual((await Promise.all(free)).map((r) => r.status), [200, 200, 200, 200]);
  assert.equal(new Set(up.hits.map((h) => h.connection)).size, 4);
});

test('http1MaxPendingRequests: beyond it 503 UO at once, counted; under it all wait and succeed', async () => {
  caller.configure(TO_V1 + apiRule('connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } }'));
  assert.equal((await caller.call('http://api/held/warm')).status, 200, 'the connection is open and idle');
  const before = await caller.metric('trellis_proxy_upstream_rq_pending_overflow_total', { cluster: API_V1_CLUSTER, limit: 'pending' });
  up.holding = true;
  const calls = burst('/held/pend', 4);
  const early = await firstReplies(calls, 2);
  assert.equal(up.held, 1, 'the upstream still holds the one request on the connection');
  for (const r of early) {
    assert.equal(r.status, 503);
    assert.match(r.text, /^upstream overflow, the request was not sent \(circuit breaker\): 1 requests already wait for a connection to outbound\|80\|v1\|api\.shop\.svc\.cluster\.local \(http1MaxPendingRequests 1\)\n$/);
  }
  up.release();
  const all = await Promise.all(calls);
  assert.deepEqual(all.map((r) => r.status).sort(), [200, 200, 503, 503]);
  assert.equal(up.hitsOn('/held/pend'), 2, 'the refused requests never reached the upstream');
  const uo = await eventually(() => (uoRecords('/held/pend').length === 2 ? uoRecords('/held/pend') : undefined), 3000, () => 'records');
  for (const r of uo) assert.deepEqual(r.responseFlags, ['UO']);
  assert.equal(await caller.metric('trellis_proxy_upstream_rq_pending_overflow_total', { cluster: API_V1_CLUSTER, limit: 'pending' }) - before, 2);

  caller.configure(TO_V1 + apiRule('connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 10 } }'));
  up.holding = true;
  const ok = burst('/held/under', 4);
  await eventually(() => (up.held === 1 ? true : undefined), 5000, () => `${up.held} held`);
  await sleep(100);
  up.release();
  assert.deepEqual((await Promise.all(ok)).map((r) => r.status), [200, 200, 200, 200]);
  assert.equal(uoRecords('/held/under').length, 0);
});

test('http2MaxRequests: beyond it 503 UO at once, counted; under it all are in flight together', async () => {
  caller.configure(TO_V1 + apiRule('connectionPool: { http: { http2MaxRequests: 2 } }'));
  const before = await caller.metric('trellis_proxy_upstream_rq_pending_overflow_total', { cluster: API_V1_CLUSTER, limit: 'requests' });
  up.holding = true;
  const calls = burst('/held/max', 4);
  const early = await firstReplies(calls, 2);
  await eventually(() => (up.held === 2 ? true : undefined), 5000, () => `${up.held} held`);
  for (const r of early) {
    assert.equal(r.status, 503);
    assert.match(r.text, /requests already in flight to outbound\|80\|v1\|api\.shop\.svc\.cluster\.local \(http2MaxRequests 2\)\n$/);
  }
  up.release();
  assert.deepEqual((await Promise.all(calls)).map((r) => r.status).sort(), [200, 200, 503, 503]);
  assert.equal(up.hitsOn('/held/max'), 2);
  await eventually(() => (uoRecords('/held/max').length === 2 ? true : undefined), 3000, () => 'records');
  assert.equal(await caller.metric('trellis_proxy_upstream_rq_pending_overflow_total', { cluster: API_V1_CLUSTER, limit: 'requests' }) - before, 2);

  caller.configure(TO_V1 + apiRule('connectionPool: { http: { http2MaxRequests: 10 } }'));
  up.holding = true;
  const ok = burst('/held/max-under', 4);
  await eventually(() => (up.held === 4 ? true : undefined), 5000, () => `${up.held} held`);
  up.release();
  assert.deepEqual((await Promise.all(ok)).map((r) => r.status), [200, 200, 200, 200]);
});

test('http2MaxRequests: the count carries over a new snapshot (the breaker is shared across snapshots)', async () => {
  const yaml = TO_V1 + apiRule('connectionPool: { http: { http2MaxRequests: 1 } }');
  caller.configure(yaml);
  up.holding = true;
  const first = caller.call('http://api/held/swap/1');
  await eventually(() => (up.held === 1 ? true : undefined), 5000, () => `${up.held} held`);
  // The same policy, another snapshot (other routes): the request in flight still counts.
  caller.configure(yaml + '\n# another version\n');
  caller.configure(TO_V1.replace('name: flaky', 'name: flaky2') + apiRule('connectionPool: { http: { http2MaxRequests: 1 } }'));
  const second = await caller.call('http://api/held/swap/2');
  assert.equal(second.status, 503);
  assert.match(second.text, /http2MaxRequests 1/);
  up.release();
  assert.equal((await first).status, 200);
  assert.equal((await caller.call('http://api/held/swap/3')).status, 200, 'the slot is free again');
});

test('maxRetries: retries beyond it are not made, the 503 goes out flagged UO and counted; without it every request retries', async () => {
  caller.configure(TO_V1 + apiRule('connectionPool: { http: { maxRetries: 1 } }'));
  const before = await caller.metric('trellis_proxy_upstream_rq_retry_overflow_total', { cluster: API_V1_CLUSTER });
  up.holding = true;
  const calls = Array.from({ length: 6 }, (_, i) => caller.call(`http://api/status/503?n=${i}`));
  await eventually(() => (up.held === 6 ? true : undefined), 5000, () => `${up.held} held`);
  up.release();
  const replies = await Promise.all(calls);
  assert.deepEqual(replies.map((r) => r.status), [503, 503, 503, 503, 503, 503]);
  const recs = await eventually(() => {
    const rs = caller.records.filter((r) => r.path.startsWith('/status/503?n='));
    return rs.length === 6 ? rs : undefined;
  }, 3000, () => 'records');
  const overflowed = recs.filter((r) => r.responseFlags.includes('UO'));
  const retried = recs.filter((r) => (r.attempts ?? 1) > 1);
  console.log(`maxRetries 1: ${retried.length} of 6 requests retried, ${overflowed.length} overflowed, ${up.hits.length} attempts at the upstream`);
  assert.ok(retried.length >= 1 && retried.length <= 2, `${retried.length} requests retried`);
  assert.equal(overflowed.length + retried.length, 6, 'every request either retried or overflowed');
  for (const r of overflowed) assert.deepEqual([r.attempts, r.responseFlags], [1, ['UO']]);
  for (const r of retried) assert.deepEqual([r.attempts, r.responseFlags], [4, ['URX']]);
  assert.equal(up.hits.length, 6 + 3 * retried.length);
  assert.equal(await caller.metric('trellis_proxy_upstream_rq_retry_overflow_total', { cluster: API_V1_CLUSTER }) - before, overflowed.length);

  caller.configure(TO_V1 + apiRule());
  up.reset();
  up.holding = true;
  const free = Array.from({ length: 6 }, (_, i) => caller.call(`http://api/status/503?m=${i}`));
  await eventually(() => (up.held === 6 ? true : undefined), 5000, () => `${up.held} held`);
  up.release();
  await Promise.all(free);
  assert.equal(up.hits.length, 24, 'each of the six made its three retries');
  const recs2 = await eventually(() => {
    const rs = caller.records.filter((r) => r.path.startsWith('/status/503?m='));
    return rs.length === 6 ? rs : undefined;
  }, 3000, () => 'records');
  for (const r of recs2) assert.deepEqual([r.attempts, r.responseFlags], [4, ['URX']]);
});

test('maxRequestsPerConnection: a connection closes after that many requests; without it one connection serves all', async () => {
  caller.configure(TO_V1 + apiRule('connectionPool: { http: { maxRequestsPerConnection: 2 } }'));
  for (let i = 0; i < 6; i++) assert.equal((await caller.call(`http://api/held/rpc/${i}`)).status, 200);
  assert.equal(new Set(up.hits.map((h) => h.connection)).size, 3);

  caller.configure(TO_V1 + apiRule('connectionPool: { http: { maxRequestsPerConnection: 1 } }'));
  up.reset();
  for (let i = 0; i < 3; i++) assert.equal((await caller.call(`http://api/held/rpc1/${i}`)).status, 200);
  assert.equal(new Set(up.hits.map((h) => h.connection)).size, 3, 'one request per connection');

  caller.configure(TO_V1 + apiRule());
  up.reset();
  for (let i = 0; i < 6; i++) assert.equal((await caller.call(`http://api/held/rpc2/${i}`)).status, 200);
  assert.equal(new Set(up.hits.map((h) => h.connection)).size, 1);
});

test('idleTimeout: an idle connection is closed after it; with the default it is kept and reused', async () => {
  caller.configure(TO_V1 + apiRule('connectionPool: { http: { idleTimeout: 300ms } }'));
  assert.equal((await caller.call('http://api/held/idle/1')).status, 200);
  const conn = up.hits.at(-1)!.connection;
  const closedBefore = up.closedConnections;
  await eventually(() => (up.closedConnections > closedBefore ? true : undefined), 5000, () => 'the idle connection is still open');
  assert.equal((await caller.call('http://api/held/idle/2')).status, 200);
  assert.notEqual(up.hits.at(-1)!.connection, conn, 'a new connection');

  caller.configure(TO_V1 + apiRule());
  assert.equal((await caller.call('http://api/held/keep/1')).status, 200);
  const kept = up.hits.at(-1)!.connection;
  await sleep(800);
  assert.equal((await caller.call('http://api/held/keep/2')).status, 200);
  assert.equal(up.hits.at(-1)!.connection, kept, 'the same connection after 800 ms idle');
});
