/**
 * Young-generation collections while the proxy is idle: when the check
 * collects (idle, full enough, not too often), that V8's minor GC is what
 * runs, and a data plane serving requests one at a time collecting between
 * them, counted on /metrics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as turn } from 'node:timers/promises';
import { compile } from '../../src/compile/index.js';
import { IdleScavenger, minorGc, newSpace } from '../../src/proxy/idle-gc.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';
import { Client, startApp, startProxy, withEndpoints } from '../helpers/proxy.js';

test('the check collects only when every watched data plane is idle, the young generation is full enough, and not twice within the gap', async () => {
  let used = 0.8;
  let collected = 0;
  const s = new IdleScavenger(() => { collected++; used = 0.1; }, { fullAt: 0.75, minGapMs: 50, space: () => ({ used, capacity: 1 }) });
  const a = { inflight: 0 };
  const b = { inflight: 1 };
  s.watch(a);
  s.watch(b);
  s.idle();
  await turn();
  assert.equal(collected, 0, 'b still has a request in flight');
  await new Promise((r) => setTimeout(r, 60));
  b.inflight = 0;
  s.idle();
  s.idle();
  await turn();
  assert.deepEqual([collected, s.collections], [1, 1], 'one check per turn, and it collected');
  used = 0.9;
  s.idle();
  await turn();
  assert.equal(collected, 1, 'within the gap: no second check');
  await new Promise((r) => setTimeout(r, 60));
  used = 0.5;
  s.idle();
  await turn();
  assert.equal(collected, 1, 'not full enough');
  await new Promise((r) => setTimeout(r, 60));
  s.unwatch(b);
  b.inflight = 3;
  used = 0.8;
  a.inflight = 1;
  s.idle();
  a.inflight = 0; // a request that ended before the turn did: idle again by the time of the check
  await turn();
  assert.equal(collected, 2, 'an unwatched data plane does not count');
});

test('the collection is V8\'s minor GC, reached without --expose-gc', async () => {
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'this test process runs without --expose-gc');
  const gc = minorGc();
  assert.ok(gc, 'the minor GC is reachable');
  const kinds: number[] = [];
  const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) kinds.push((e as unknown as { detail: { kind: number } }).detail.kind); });
  obs.observe({ entryTypes: ['gc'] });
  const before = newSpace();
  let junk: object[] | null = Array.from({ length: 20_000 }, (_, i) => ({ i }));
  junk = null;
  gc();
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  assert.ok(kinds.includes(constants.NODE_PERFORMANCE_GC_MINOR), `a minor GC was observed (kinds ${kinds.join(',')})`);
  assert.ok(before.capacity > 0 && newSpace().used < before.capacity, 'the young generation has room after it');
  assert.equal(junk, null);
});

test('a data plane serving requests one at a time collects between them (trellis_proxy_idle_gc_total), and every request is answered', async () => {
  const mesh = meshFromYaml(TWO_SERVICES);
  const app = await startApp('api-v2.shop');
  const snap = withEndpoints(compile(mesh.config, mesh.registry, { workload: 'web-v1', namespace: 'shop' }), {
    'api-v2.shop': { address: '127.0.0.1', port: app.port, health: 'HEALTHY' },
  });
  const dp = await startProxy({ mode: 'sidecar', idleGc: true }, snap);
  const client = new Client(dp.addresses.outbound!);
  const count = async () => Number(/^trellis_proxy_idle_gc_total (\d+)$/m.exec(await (await fetch(`http://${dp.addresses.admin}/metrics`)).text())?.[1] ?? NaN);
  try {
    const start = await count();
    let n = 0;
    // Bounded: a few young generations' worth of requests, one at a time (the proxy is idle between them).
    while (n < 4000 && (n % 200 !== 0 || (await count()) === start)) {
      assert.equal((await client.call(`http://api/hello?n=${n}`)).status, 200);
      n++;
    }
    assert.ok((await count()) > start, `no collection while idle in ${n} requests`);
  } finally {
    await client.close();
    await dp.close(100);
    await app.close();
  }
});
