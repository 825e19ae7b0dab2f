/**
 * Retries with Envoy's meaning of each `retryOn` condition, through a real
 * sidecar to real upstream servers (HTTP/1.1, and h2c for refused-stream):
 * each condition retries what it names (attempts counted at the upstream and
 * in the request record, URX when they ran out) and leaves the rest alone.
 * Then the retry budget (DestinationRule retryBudget) capping retries, bodies
 * (a small streamed body is replayed, one streamed beyond the buffer is not),
 * and the backoff's bounds (unit).
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { classifyUpstreamError, type UpstreamFailure } from '../../src/proxy/errors.js';
import { backoffMs, compileRetry, retriableFailure, retriableResponse } from '../../src/proxy/retry-policy.js';
import { REPLAY_LIMIT } from '../../src/proxy/request-body.js';
import { eventually } from '../helpers/proxy.js';
import { API_V1_CLUSTER, apiRoutes, apiRule, CallerProxy, RefusingH2, Upstream } from './resilience-kit.js';

/** One route per condition under test: /<name>/... retries 2 times on `retryOn` to subset v1 (or v2: the dead port). */
const CASES: Record<string, { retryOn: string; subset?: string; perTry?: string }> = {
  '5xx': { retryOn: '5xx' },
  gw: { retryOn: 'gateway-error' },
  reset: { retryOn: 'reset' },
  cf: { retryOn: 'connect-failure' },
  cfdead: { retryOn: 'connect-failure', subset: 'v2' },
  resetdead: { retryOn: 'reset', subset: 'v2' },
  '4xx': { retryOn: 'retriable-4xx' },
  codes: { retryOn: 'retriable-status-codes,418' },
  numeric: { retryOn: '418' },
  unavailable: { retryOn: 'unavailable' },
  cancelled: { retryOn: 'cancelled' },
  rbr: { retryOn: 'reset-before-request' },
  rbrdead: { retryOn: 'reset-before-request', subset: 'v2' },
  none: { retryOn: 'connect-failure', subset: 'v2' },
  pertry: { retryOn: 'gateway-error', perTry: '100ms' },
};

const VS = apiRoutes(Object.entries(CASES).map(([name, c]) => `
  - name: ${name}
    match: [{ uri: { prefix: /${name}/ } }]
    retries: { attempts: ${name === 'none' ? 0 : 2}, retryOn: "${c.retryOn}"${c.perTry ? `, perTryTimeout: ${c.perTry}` : ''} }
    route: [{ destination: { host: api, subset: ${c.subset ?? 'v1'} } }]`).join('') + `
  - name: body
    match: [{ uri: { prefix: /body/ } }]
    retries: { attempts: 2, retryOn: "503" }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: budget
    match: [{ uri: { prefix: /budget/ } }]
    retries: { attempts: 3, retryOn: "503" }
    route: [{ destination: { host: api, subset: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: h2api, namespace: shop }
spec:
  hosts: [h2api]
  http:
  - name: refused
    match: [{ uri: { prefix: /refused/ } }]
    retries: { attempts: 2, retryOn: refused-stream }
    route: [{ destination: { host: h2api } }]
  - name: refused-not
    match: [{ uri: { prefix: /other/ } }]
    retries: { attempts: 2, retryOn: connect-failure }
    route: [{ destination: { host: h2api } }]
`);

let up: Upstream;
let h2: RefusingH2;
let caller: CallerProxy;

before(async () => {
  up = await Upstream.start('api');
  h2 = await RefusingH2.start();
  caller = await CallerProxy.start(VS + apiRule(), up, up, h2);
});
after(async () => {
  await caller?.close();
  await up?.close();
  await h2?.close();
});
beforeEach(() => {
  up.release();
  up.reset();
});

/**
 * Calls `path` once; returns the status, the attempts the record counts (and
 * that the upstream saw, for v1 routes), and the flags.
 */
async function attempt(path: string): Promise<{ status: number; attempts: number; atUpstream: number; flags: readonly string[] }> {
  const before = up.hits.length;
  const r = await caller.call(`http://api${path}`);
  const rec = await caller.recordOf(path);
  return { status: r.status, attempts: rec.attempts ?? 0, atUpstream: up.hits.length - before, flags: rec.responseFlags };
}

const retried = { attempts: 3, flags: ['URX'] };
const once = { attempts: 1, flags: [] as string[] };
const shape = (a: Awaited<ReturnType<typeof attempt>>) => ({ attempts: a.attempts, flags: [...a.flags].filter((f) => f === 'URX') });

test('retryOn 5xx: any 5xx and a reset are retried; a 409 is not', async () => {
  const a = await attempt('/5xx/status/500');
  assert.deepEqual([a.status, shape(a), a.atUpstream], [500, retried, 3]);
  const r = await attempt('/5xx/reset');
  assert.deepEqual([r.status, shape(r), r.atUpstream], [503, retried, 3]);
  const n = await attempt('/5xx/status/409');
  assert.deepEqual([n.status, shape(n), n.atUpstream], [409, once, 1]);
});

test('retryOn gateway-error: 502, 503, 504 are retried; a 500 is not', async () => {
  for (const code of [502, 503, 504]) {
    const a = await attempt(`/gw/status/${code}`);
    assert.deepEqual([a.status, shape(a), a.atUpstream], [code, retried, 3], String(code));
  }
  const n = await attempt('/gw/status/500');
  assert.deepEqual([n.status, shape(n), n.atUpstream], [500, once, 1]);
});

test('retryOn gateway-error with a per-try timeout: a try that takes too long is abandoned and retried', async () => {
  up.holding = true;
  const a = await attempt('/pertry/held');
  assert.deepEqual([a.status, shape(a), a.atUpstream], [504, retried, 3]);
  assert.deepEqual(a.flags, ['UT', 'URX']);
});

test('retryOn reset: a reset and a connect failure are retried; a 503 is not', async () => {
  const a = await attempt('/reset/reset');
  assert.deepEqual([a.status, shape(a), a.atUpstream], [503, retried, 3]);
  assert.deepEqual(a.flags, ['UC', 'URX']);
  const d = await attempt('/resetdead/x');
  assert.deepEqual([d.status, shape(d)], [503, retried]);
  const n = await attempt('/reset/status/503');
  assert.deepEqual([n.status, shape(n), n.atUpstream], [503, once, 1]);
});

test('retryOn connect-failure: a connect failure is retried (UF URX); a reset and a 503 are not; attempts 0 never retries', async () => {
  const d = await attempt('/cfdead/x');
  assert.deepEqual([d.status, shape(d)], [503, retried]);
  assert.deepEqual(d.flags, ['UF', 'URX']);
  const r = await attempt('/cf/reset');
  assert.deepEqual([r.status, shape(r), r.atUpstream], [503, once, 1]);
  assert.deepEqual(r.flags, ['UC']);
  const n = await attempt('/cf/status/503');
  assert.deepEqual([n.status, shape(n), n.atUpstream], [503, once, 1]);
  const z = await attempt('/none/x');
  assert.deepEqual([z.status, z.attempts, z.flags], [503, 1, ['UF']]);
});

test('retryOn reset-before-request: a connect failure is retried; a reset after the request was sent is not', async () => {
  const d = await attempt('/rbrdead/x');
  assert.deepEqual([d.status, shape(d)], [503, retried]);
  const r = await attempt('/rbr/reset');
  assert.deepEqual([r.status, shape(r), r.atUpstream], [503, once, 1]);
});

test('retryOn retriable-4xx: a 409 is retried; a 418 and a 503 are not', async () => {
  const a = await attempt('/4xx/status/409');
  assert.deepEqual([a.status, shape(a), a.atUpstream], [409, retried, 3]);
  for (const code of [418, 503]) {
    const n = await attempt(`/4xx/status/${code}`);
    assert.deepEqual([n.status, shape(n), n.atUpstream], [code, once, 1], String(code));
  }
});

test('retryOn retriable-status-codes (and a bare code, as Istio reads it): the listed code is retried, others not', async () => {
  for (const prefix of ['/codes', '/numeric']) {
    const a = await attempt(`${prefix}/status/418`);
    assert.deepEqual([a.status, shape(a), a.atUpstream], [418, retried, 3], prefix);
    const n = await attempt(`${prefix}/status/503`);
    assert.deepEqual([n.status, shape(n), n.atUpstream], [503, once, 1], prefix);
  }
});

test('retryOn gRPC conditions: grpc-status 14 is retried on unavailable, not on cancelled (and 1 the other way)', async () => {
  const a = await attempt('/unavailable/status/200?grpc=14');
  assert.deepEqual([a.status, shape(a), a.atUpstream], [200, retried, 3]);
  const n = await attempt('/cancelled/status/200?grpc=14');
  assert.deepEqual([n.status, shape(n), n.atUpstream], [200, once, 1]);
  const c = await attempt('/cancelled/status/200?grpc=1');
  assert.deepEqual([c.status, shape(c), c.atUpstream], [200, retried, 3]);
  const ok = await attempt('/unavailable/status/200?grpc=0');
  assert.deepEqual([ok.status, shape(ok), ok.atUpstream], [200, once, 1]);
});

test('retryOn refused-stream: an HTTP/2 REFUSED_STREAM is retried; with connect-failure it is not; a retry that is accepted succeeds', async () => {
  h2.streams = 0;
  const r = await caller.call('http://h2api/refused/1');
  assert.equal(r.status, 503);
  const rec = await caller.recordOf('/refused/1');
  assert.deepEqual([rec.attempts, rec.responseFlags], [3, ['UC', 'URX']]);
  assert.equal(h2.streams, 3);
  h2.streams = 0;
  const n = await caller.call('http://h2api/other/1');
  assert.equal(n.status, 503);
  assert.deepEqual([(await caller.recordOf('/other/1')).attempts, h2.streams], [1, 1]);
  h2.refusing = false;
  assert.equal((await caller.call('http://h2api/refused/2')).status, 200);
  h2.refusing = true;
});

test('bodies: a small streamed (chunked) body is replayed whole on each retry; one streamed beyond the buffer is sent once', async () => {
  const chunks = (n: number, size: number) => Readable.from((async function* () {
    for (let i = 0; i < n; i++) { yield Buffer.alloc(size, i); await new Promise((r) => setTimeout(r, 2)); }
  })());
  const small = await caller.client.pool.request({ path: 'http://api/body/status/503?small', method: 'POST', headers: { host: 'api' }, body: chunks(4, 500) });
  assert.equal(small.statusCode, 503);
  await small.body.text();
  assert.deepEqual(up.hits.filter((h) => h.path.includes('small')).map((h) => h.bodyBytes), [2000, 2000, 2000]);
  assert.deepEqual((await caller.recordOf('/body/status/503?small')).responseFlags, ['URX']);

  const big = await caller.client.pool.request({ path: 'http://api/body/status/503?big', method: 'POST', headers: { host: 'api' }, body: chunks(5, 20_000) });
  assert.ok(100_000 > REPLAY_LIMIT);
  assert.equal(big.statusCode, 503);
  await big.body.text();
  assert.deepEqual(up.hits.filter((h) => h.path.includes('big')).map((h) => h.bodyBytes), [100_000], 'sent once');
  const rec = await caller.recordOf('/body/status/503?big');
  assert.deepEqual([rec.attempts, rec.responseFlags, rec.bytesReceived], [1, [], 100_000]);

  const sized = await caller.call('http://api/body/status/503?sized', { method: 'POST', body: Buffer.alloc(REPLAY_LIMIT + 1) });
  assert.equal(sized.status, 503);
  assert.equal(up.hits.filter((h) => h.path.includes('sized')).length, 1, 'a content-length over the buffer: sent once');
});

/** `n` requests at once to a route that retries 503s three times, the upstream holding the first attempts. */
async function retryStorm(tag: string, n: number) {
  up.holding = true;
  const calls = Array.from({ length: n }, (_, i) => caller.call(`http://api/budget/status/503?${tag}=${i}`));
  await eventually(() => (up.held === n ? true : undefined), 5000, () => `${up.held} of ${n} held`);
  up.release();
  await Promise.all(calls);
  return eventually(() => {
    const rs = caller.records.filter((r) => r.path.includes(`?${tag}=`));
    return rs.length === n ? rs : undefined;
  }, 3000, () => 'records');
}

test('retry budget: retries beyond max(minRetryConcurrency, percent of active) are not made (UO, counted); without a budget all retry', async () => {
  caller.configure(VS + apiRule('retryBudget: { percent: 0, minRetryConcurrency: 0 }'));
  const before = await caller.metric('trellis_proxy_upstream_rq_retry_overflow_total', { cluster: API_V1_CLUSTER });
  for (let i = 0; i < 3; i++) {
    const a = await attempt(`/budget/status/503?zero=${i}`);
    assert.deepEqual([a.status, a.attempts, a.flags, a.atUpstream], [503, 1, ['UO'], 1], 'a zero budget allows no retry');
  }
  assert.equal(await caller.metric('trellis_proxy_upstream_rq_retry_overflow_total', { cluster: API_V1_CLUSTER }) - before, 3);

  caller.configure(VS + apiRule('retryBudget: { percent: 0, minRetryConcurrency: 2 }'));
  up.reset();
  const recs = await retryStorm('two', 8);
  const retriedRecs = recs.filter((r) => (r.attempts ?? 1) > 1);
  const overflowed = recs.filter((r) => r.responseFlags.includes('UO'));
  console.log(`retry budget (0 %, at least 2): ${retriedRecs.length} of 8 requests retried, ${overflowed.length} not (UO), ${up.hits.length} attempts at the upstream (without a budget: 32)`);
  assert.ok(retriedRecs.length >= 2 && retriedRecs.length <= 4, `${retriedRecs.length} retried`);
  assert.equal(retriedRecs.length + overflowed.length, 8);
  assert.equal(up.hits.length, 8 + 3 * retriedRecs.length);

  caller.configure(VS + apiRule());
  up.reset();
  const free = await retryStorm('free', 8);
  assert.equal(up.hits.length, 32);
  assert.ok(free.every((r) => r.attempts === 4 && r.responseFlags.join() === 'URX'));
});

test('backoff: the Nth retry waits a random time in [0, (2^N − 1) × base), at most 10 × base (Envoy\'s)', () => {
  const r = compileRetry({ attempts: 5, perTryTimeoutMs: 0, retryOn: ['5xx'], retriableStatusCodes: [], retryRemoteLocalities: false, backoffBaseMs: 25 });
  for (const [n, bound] of [[1, 25], [2, 75], [3, 175], [4, 250], [5, 250], [40, 250]] as const) {
    let max = 0;
    let sum = 0;
    for (let i = 0; i < 4000; i++) {
      const ms = backoffMs(r, n);
      assert.ok(ms >= 0 && ms <= bound && (bound === 250 || ms < bound), `retry ${n}: ${ms} ms`);
      max = Math.max(max, ms);
      sum += ms;
    }
    assert.ok(max >= bound * 0.9 - 1, `retry ${n}: the largest of 4000 was ${max} (bound ${bound})`);
    assert.ok(sum / 4000 > bound * 0.3, `retry ${n}: jittered over the range, mean ${sum / 4000}`);
  }
  const slow = compileRetry({ attempts: 1, perTryTimeoutMs: 0, retryOn: ['5xx'], retriableStatusCodes: [], retryRemoteLocalities: false, backoffBaseMs: 100 });
  for (let i = 0; i < 200; i++) assert.ok(backoffMs(slow, 9) <= 1000);
});

test('conditions (unit): every failure kind against every condition, as Envoy decides', () => {
  const on = (...retryOn: string[]) => compileRetry({ attempts: 1, perTryTimeoutMs: 0, retryOn, retriableStatusCodes: [418], retryRemoteLocalities: false, backoffBaseMs: 25 });
  const kinds: UpstreamFailure[] = ['connect-failure', 'reset', 'refused-stream', 'per-try-timeout', 'protocol'];
  const table = (r: ReturnType<typeof on>, before = false) => kinds.filter((k) => retriableFailure(r, k, before));
  assert.deepEqual(table(on('5xx')), kinds);
  assert.deepEqual(table(on('gateway-error')), kinds);
  assert.deepEqual(table(on('reset')), kinds);
  assert.deepEqual(table(on('connect-failure')), ['connect-failure']);
  assert.deepEqual(table(on('refused-stream')), ['refused-stream']);
  assert.deepEqual(table(on('reset-before-request')), ['connect-failure']);
  assert.deepEqual(table(on('reset-before-request'), true), ['connect-failure', 'reset', 'refused-stream', 'protocol']);
  assert.deepEqual(table(on('retriable-4xx', 'retriable-status-codes', 'unavailable')), []);
  const codes = (r: ReturnType<typeof on>, grpc?: string) => [200, 409, 418, 500, 502, 503, 504].filter((s) => retriableResponse(r, s, grpc));
  assert.deepEqual(codes(on('5xx')), [500, 502, 503, 504]);
  assert.deepEqual(codes(on('gateway-error')), [502, 503, 504]);
  assert.deepEqual(codes(on('retriable-4xx')), [409]);
  assert.deepEqual(codes(on('retriable-status-codes')), [418]);
  assert.deepEqual(codes(on('connect-failure', 'reset', 'refused-stream')), []);
  assert.deepEqual(codes(on('unavailable'), '14'), [200, 409, 418, 500, 502, 503, 504]);
  assert.deepEqual(codes(on('unavailable'), '13'), []);
  assert.deepEqual(codes(on('internal', 'deadline-exceeded', 'resource-exhausted'), '4'), [200, 409, 418, 500, 502, 503, 504]);
  // How undici's and Node's HTTP/2 errors classify.
  const err = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  assert.equal(classifyUpstreamError(err('ECONNREFUSED')), 'connect-failure');
  assert.equal(classifyUpstreamError(err('UND_ERR_SOCKET')), 'reset');
  assert.equal(classifyUpstreamError(err('ERR_HTTP2_STREAM_ERROR', 'Stream closed with error code NGHTTP2_REFUSED_STREAM')), 'refused-stream');
  assert.equal(classifyUpstreamError(err('ERR_HTTP2_STREAM_ERROR', 'the upstream reset the HTTP/2 stream (RST_STREAM code 7)')), 'refused-stream');
  assert.equal(classifyUpstreamError(err('ERR_HTTP2_STREAM_ERROR', 'the upstream reset the HTTP/2 stream (RST_STREAM code 2)')), 'reset');
});
