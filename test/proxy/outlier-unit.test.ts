/**
 * Outlier detection (src/proxy/outlier.ts) on plain objects with a clock the
 * test moves: what counts, when a host is ejected and for how long, the
 * ejection cap, and how state carries across snapshots in the store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OutlierDetection } from '../../src/protocol/snapshot.js';
import { ClusterOutliers, MAX_EJECTION_TIME_MS, OutlierStore } from '../../src/proxy/outlier.js';
import { compile } from '../../src/compile/index.js';
import type { AttemptOutcome } from '../../src/proxy/hosts.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';

const OD: OutlierDetection = { consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100, minHealthPercent: 0 };
const status = (s: number): AttemptOutcome => ({ kind: 'response', status: s });
const CONNECT: AttemptOutcome = { kind: 'failure', failure: 'connect-failure' };

function cluster(od: Partial<OutlierDetection> = {}, hosts = 3) {
  const clock = { t: 1_000_000 };
  const c = new ClusterOutliers('outbound|80||api', { ...OD, ...od }, () => clock.t);
  const hs = c.members(Array.from({ length: hosts }, (_, i) => `10.0.0.${i + 1}:80`));
  return { c, hs, clock };
}

test('outlier: a host is ejected at the 5th consecutive 5xx, not before; a success starts the count again', () => {
  const { c, hs: [a, b] } = cluster();
  for (let i = 0; i < 4; i++) c.observe(a!, status(500));
  assert.equal(a!.ejected, false);
  c.observe(a!, status(200));
  for (let i = 0; i < 4; i++) c.observe(a!, status(503));
  assert.equal(a!.ejected, false, 'the success reset the count');
  c.observe(b!, status(500)); // other hosts count apart
  c.observe(a!, status(502));
  assert.equal(a!.ejected, true);
  assert.equal(b!.ejected, false);
  assert.equal(c.ejectedCount, 1);
  assert.equal(c.enforced.consecutive_5xx, 1);
  assert.ok(c.timerRunning, 'the interval timer runs while a host is out');
  c.stop();
});

test('outlier: 0 turns the 5xx rule off; gateway errors count only 502/503/504, and a 500 breaks their run', () => {
  const off = cluster({ consecutive5xxErrors: 0 });
  for (let i = 0; i < 50; i++) off.c.observe(off.hs[0]!, status(500));
  assert.equal(off.hs[0]!.ejected, false);

  const { c, hs: [a] } = cluster({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 3 });
  c.observe(a!, status(503)); c.observe(a!, status(504)); c.observe(a!, status(500));
  c.observe(a!, status(502)); c.observe(a!, status(503));
  assert.equal(a!.ejected, false, '500 is not a gateway error and breaks the run');
  c.observe(a!, status(504));
  assert.equal(a!.ejected, true);
  assert.equal(c.enforced.consecutive_gateway_failure, 1);
  c.stop();
});

test('outlier: without the split, connect failures, resets and per-try timeouts count as 5xx; with it, apart', () => {
  const plain = cluster({ consecutive5xxErrors: 3 });
  plain.c.observe(plain.hs[0]!, CONNECT);
  plain.c.observe(plain.hs[0]!, { kind: 'failure', failure: 'reset' });
  plain.c.observe(plain.hs[0]!, { kind: 'failure', failure: 'per-try-timeout' });
  assert.equal(plain.hs[0]!.ejected, true);
  plain.c.stop();

  const split = cluster({ consecutive5xxErrors: 3, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2 });
  const [a, b] = split.hs;
  split.c.observe(a!, CONNECT);
  split.c.observe(a!, status(500)); // the connection worked: the local-origin run is broken
  split.c.observe(a!, CONNECT);
  assert.equal(a!.ejected, false);
  assert.equal(a!.consecutive5xx, 1, 'the connect failures did not count as 5xx');
  split.c.observe(a!, CONNECT);
  assert.equal(a!.ejected, true);
  assert.equal(split.c.enforced.consecutive_local_origin_failure, 1);
  for (let i = 0; i < 3; i++) split.c.observe(b!, status(500));
  assert.equal(b!.ejected, true, 'responses still count as 5xx');
  split.c.stop();
});

test('outlier: an ejection lasts base × times ejected, checked each interval; the multiplier is capped and decays', () => {
  const { c, hs: [a], clock } = cluster({ consecutive5xxErrors: 1 });
  const gen0 = c.generation;
  c.observe(a!, status(500));
  assert.ok(a!.ejected && c.generation > gen0);
  clock.t += 29_999; c.sweep();
  assert.equal(a!.ejected, true);
  clock.t += 1; c.sweep();
  assert.equal(a!.ejected, false, 'back after 30 s');
  c.observe(a!, status(500));
  clock.t += 30_000; c.sweep();
  assert.equal(a!.ejected, true, 'the second ejection lasts 60 s');
  assert.equal(c.ejectionMs(a!), 60_000);
  clock.t += 30_000; c.sweep();
  assert.equal(a!.ejected, false);
  for (let i = 0; i < 20; i++) { c.observe(a!, status(500)); clock.t += c.ejectionMs(a!); c.sweep(); }
  assert.equal(c.ejectionMs(a!), MAX_EJECTION_TIME_MS, 'capped at 300 s');
  // Back in service: one step down per base ejection time spent healthy, and the timer stops once there is nothing left to do.
  const m = a!.multiplier;
  clock.t += 30_000; c.sweep();
  assert.equal(a!.multiplier, m - 1);
  for (let i = 0; i < 20; i++) { clock.t += 30_000; c.sweep(); }
  assert.equal(a!.multiplier, 0);
  assert.equal(c.timerRunning, false);
});

test('outlier: maxEjectionPercent: hosts are ejected while fewer than that share are out (Istio default 10 % ejects one of three)', () => {
  const ten = cluster({ consecutive5xxErrors: 1, maxEjectionPercent: 30 }, 10);
  for (const h of ten.hs) ten.c.observe(h, status(500));
  assert.equal(ten.c.ejectedCount, 3);
  assert.equal(ten.c.overflow, 7);
  ten.c.stop();

  const three = cluster({ consecutive5xxErrors: 1, maxEjectionPercent: 10 });
  for (const h of three.hs) three.c.observe(h, status(500));
  assert.deepEqual(three.hs.map((h) => h.ejected), [true, false, false]);
  three.c.stop();

  const none = cluster({ consecutive5xxErrors: 1, maxEjectionPercent: 0 });
  none.c.observe(none.hs[0]!, status(500));
  assert.equal(none.c.ejectedCount, 0);
});

test('outlier store: unchanged settings keep the state across snapshots; removed addresses go; changed settings start afresh', () => {
  const store = new OutlierStore();
  const od = { ...OD, consecutive5xxErrors: 1 };
  const c1 = store.cluster('outbound|80||api', od);
  const [a] = c1.members(['a:80', 'b:80']);
  c1.observe(a!, status(500));
  const c2 = store.cluster('outbound|80||api', { ...od }); // an equal copy, as a new snapshot brings
  assert.equal(c2, c1);
  const [a2, c] = c2.members(['a:80', 'c:80']);
  assert.equal(a2, a, 'same state object for the same address');
  assert.equal(a2!.ejected, true);
  assert.equal(c!.ejected, false);
  assert.equal(c2.size, 2, 'b is gone');
  assert.deepEqual(store.stats().map((s) => [s.cluster, s.ejectedNow, s.ejectionsEnforced.consecutive_5xx]), [['outbound|80||api', 1, 1]]);
  const c3 = store.cluster('outbound|80||api', { ...od, baseEjectionTimeMs: 1000 });
  assert.notEqual(c3, c1);
  assert.equal(c3.members(['a:80'])[0]!.ejected, false);
  assert.equal(c1.timerRunning, false, 'the replaced state stopped its timer');
  store.stopAll();
});


/** The api cluster a DestinationRule with this outlierDetection compiles to. */
function compiled(outlierDetection: string) {
  const m = meshFromYaml([
    k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }), k8sDeployment('web', 'shop', 'web'),
    k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }), k8sDeployment('api', 'shop', 'api'),
  ].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec: { host: api, trafficPolicy: { outlierDetection: ${outlierDetection} } }
`);
  return compile(m.config, m.registry, { workload: 'web', namespace: 'shop' }).clusters.find((c) => c.service === 'api.shop.svc.cluster.local')!.outlierDetection!;
}

test('compile: the deprecated consecutiveErrors means gateway errors and turns the 5xx rule off (Istio); the split brings its own threshold', () => {
  assert.deepEqual([compiled('{ consecutiveErrors: 4 }').consecutive5xxErrors, compiled('{ consecutiveErrors: 4 }').consecutiveGatewayErrors], [0, 4]);
  assert.deepEqual([compiled('{ consecutiveErrors: 4, consecutive5xxErrors: 2 }').consecutive5xxErrors, compiled('{ consecutiveErrors: 4, consecutive5xxErrors: 2 }').consecutiveGatewayErrors], [2, 4]);
  const plain = compiled('{ consecutive5xxErrors: 3 }');
  assert.equal(plain.splitExternalLocalOriginErrors, undefined);
  assert.equal(plain.consecutiveLocalOriginFailures, undefined);
  const split = compiled('{ splitExternalLocalOriginErrors: true }');
  assert.deepEqual([split.splitExternalLocalOriginErrors, split.consecutiveLocalOriginFailures], [true, 5]);
  assert.equal(compiled('{ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2 }').consecutiveLocalOriginFailures, 2);
});
