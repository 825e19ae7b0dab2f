/**
 * Global rate limits: three real replicas of a service, each behind its own
 * sidecar, share one bucket in a real Redis (redis-server started by the
 * test). The total they allow stays within the limit (± 5 %) while the load
 * is spread unevenly; a global quota is shared the same way; with Redis
 * stopped, fail-open lets requests through and fail-closed refuses them, and
 * every request is answered quickly (no hang, no crash); once Redis is back,
 * the limits hold again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { k8sDeployment, k8sService } from '../helpers/mesh.js';
import { MtlsMesh, metricValue } from '../helpers/mtls-mesh.js';
import { RedisServer, redisUnavailable } from '../helpers/redis.js';
import { applyCalleeYaml } from '../helpers/zt-mesh.js';

const YAML = [
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api-v1', 'shop', 'api', { replicas: 3 }),
  k8sDeployment('client', 'shop', 'client'),
].join('---\n');

const skip = redisUnavailable();

function policy(name: string, redis: string, limit: string, failureMode = 'Open'): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ${name}, namespace: shop }
spec:
  targetRef: { kind: Service, name: api }
  store: { redis: ${redis}, timeout: 100ms, failureMode: ${failureMode} }
  limits:
  - name: all
    by: All
    scope: Global
${limit}`;
}

interface Answer { status: number; ms: number }

describe('global RateLimitPolicies shared by three replicas through Redis', { skip }, () => {
  let m: MtlsMesh;
  let redis: RedisServer;
  let inbound: string[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });

  before(async () => {
    redis = await RedisServer.start();
    m = await MtlsMesh.start({ yaml: YAML, caller: { workload: 'client', namespace: 'shop' }, calleeMode: 'PERMISSIVE' });
    inbound = [...m.callees.values()].map((c) => c.inbound);
    assert.equal(inbound.length, 3, 'three replicas');
  });

  after(async () => {
    agent.destroy();
    await m?.close();
    await redis?.stop();
  });

  /** Each replica's sidecar gets the policy. */
  const applyAll = (yaml: string): (() => void) => {
    const restores = [...m.callees.keys()].map((i) => applyCalleeYaml(m, i, yaml));
    return () => { for (const r of restores) r(); };
  };

  const send = (replica: number, path = '/g'): Promise<Answer> => new Promise((resolve) => {
    const t0 = performance.now();
    const [host, port] = inbound[replica]!.split(':');
    const req = request({ host, port: Number(port), path, agent, timeout: 5000, headers: { host: 'api.shop.svc.cluster.local:80' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, ms: performance.now() - t0 }));
    req.end();
  });

  /** `count` requests, one every `gapMs`, to replicas in the uneven pattern 6:3:1; bounded by count. */
  const load = async (count: number, gapMs: number, path = '/g') => {
    const pattern = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2];
    const pending: Promise<Answer & { replica: number }>[] = [];
    const start = performance.now();
    let lateMs = 0;
    for (let i = 0; i < count; i++) {
      const due = start + i * gapMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      lateMs = Math.max(lateMs, performance.now() - due);
      const replica = pattern[i % pattern.length]!;
      pending.push(send(replica, path).then((a) => ({ ...a, replica })));
    }
    const elapsedMs = performance.now() - start;
    return { answers: await Promise.all(pending), elapsedMs, lateMs };
  };

  test('the replicas together allow the limit (± 5 %), however unevenly the load falls on them', async (t) => {
    t.after(applyAll(policy('shared', redis.address, '    rate: { requests: 20, per: 1s, burst: 20 }\n')));
    // 100 requests a second for 4 s: five times the limit.
    const { answers, elapsedMs, lateMs } = await load(400, 10);
    const ok = answers.filter((a) => a.status === 200);
    const expected = 20 + (20 * elapsedMs) / 1000;
    const slowest = Math.max(...answers.map((a) => a.ms));
    const what = `allowed ${ok.length}, expected ${expected.toFixed(1)} over ${elapsedMs.toFixed(0)} ms (sends up to ${lateMs.toFixed(0)} ms late, slowest answer ${slowest.toFixed(0)} ms)`;
    // Never more than the bucket holds plus what it refills, however the load arrived.
    assert.ok(ok.length <= expected * 1.05, what);
    if (lateMs < 100 && slowest < 250) {
      assert.ok(Math.abs(ok.length - expected) <= expected * 0.05, `${what}: not within ± 5 %`);
    } else {
      // The machine did not deliver the load evenly (a busy CI box): requests that stall and then arrive together find a
      // full bucket that could not hold the refill of the stall, so fewer pass. Only a gross under-count is a failure then.
      t.diagnostic(`uneven load: ${what}; checked against the upper bound and half the expected count only`);
      assert.ok(ok.length >= expected * 0.5, `${what}: far fewer than the limit allows`);
    }
    assert.ok(answers.every((a) => a.status === 200 || a.status === 429), `only 200 and 429: ${[...new Set(answers.map((a) => a.status))]}`);
    const perReplica = [0, 1, 2].map((r) => ok.filter((a) => a.replica === r).length);
    assert.ok(perReplica[0]! > perReplica[2]!, `the busy replica allowed more: ${perReplica}`);
    const limited = await Promise.all([...m.callees.values()].map((c) => metricValue(c.proxy, 'trellis_proxy_rate_limit_requests_total', { policy: 'shop/shared', decision: 'limited' })));
    assert.equal(limited.reduce((a, b) => a + b, 0), answers.length - ok.length, 'every 429 is counted');
  });

  test('a global quota is shared: once the replicas together used it, all refuse until the window moves', async (t) => {
    t.after(applyAll(policy('quota', redis.address, '    quota: { requests: 6, per: 2s }\n')));
    const toNext = 2000 - (Date.now() % 2000);
    if (toNext < 1300) await new Promise((r) => setTimeout(r, toNext + 30));
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) statuses.push((await send(i % 3, '/q')).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 429, 429, 429]);
    await new Promise((r) => setTimeout(r, 2000 - (Date.now() % 2000) + 50));
    assert.equal((await send(2, '/q')).status, 200, 'a new window');
  });

  test('Redis stopped: fail-open lets requests through, fail-closed refuses them, nothing hangs; Redis back: the limit holds again', async (t) => {
    const limit = '    rate: { requests: 5, per: 1m, burst: 5 }\n';
    let restore = applyAll(policy('outage', redis.address, limit, 'Open'));
    t.after(() => restore());
    // With Redis up the limit holds.
    const up = [];
    for (let i = 0; i < 8; i++) up.push((await send(i % 3)).status);
    assert.deepEqual(up, [200, 200, 200, 200, 200, 429, 429, 429]);
    await redis.stop();
    const open = (await load(30, 10)).answers;
    assert.deepEqual([...new Set(open.map((a) => a.status))], [200], 'fail open: every request passes while Redis is down');
    assert.ok(open.every((a) => a.ms < 2000), `no request waited long: slowest ${Math.max(...open.map((a) => a.ms)).toFixed(0)} ms`);
    restore();
    restore = applyAll(policy('outage-closed', redis.address, limit, 'Closed'));
    const closed = (await load(30, 10)).answers;
    assert.deepEqual([...new Set(closed.map((a) => a.status))], [429], 'fail closed: every request is refused while Redis is down');
    assert.ok(closed.every((a) => a.ms < 2000), `no request waited long: slowest ${Math.max(...closed.map((a) => a.ms)).toFixed(0)} ms`);
    const unavailable = await metricValue(m.callee([...m.callees.keys()][0]!).proxy, 'trellis_proxy_rate_limit_requests_total', { decision: 'store_unavailable_limited' });
    assert.ok(unavailable > 0, 'counted as store_unavailable_limited');
    for (const c of m.callees.values()) assert.equal(c.proxy.snapshot !== undefined, true, 'the sidecars are alive');
    await redis.restart();
    // The clients reconnect by themselves; then the (fresh) bucket allows 5 and refuses the rest.
    const deadline = Date.now() + 10_000;
    let first: number;
    do {
      first = (await send(0)).status;
      if (first === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    } while (Date.now() < deadline);
    assert.equal(first, 200, 'requests pass again once Redis is back');
    const back = [];
    for (let i = 0; i < 6; i++) back.push((await send(i % 3)).status);
    assert.deepEqual(back, [200, 200, 200, 200, 429, 429], 'the limit holds again (one token went to the first request)');
  });
});
