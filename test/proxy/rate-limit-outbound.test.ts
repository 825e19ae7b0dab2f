/**
 * Caller-side rate limits (RateLimitPolicy `enforce: InboundAndOutbound`):
 * real caller sidecars shed load on their outbound side before it reaches
 * the destination. A caller over its limit is refused by its own sidecar
 * (429, x-ratelimit-* headers, flag RL on its outbound record, counted with
 * side="outbound"), and the destination's app and inbound sidecar never see
 * the refused requests; with `enforce: Inbound` the refusals come from the
 * destination instead; two callers with their own identities keep their own
 * caller-side buckets; a global limit on the caller side counts in Redis
 * under keys of its own (`trellis:rl:out:`), shared by the caller's
 * replicas, and takes no token from the inbound side's bucket.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { k8sDeployment, meshFromYaml } from '../helpers/mesh.js';
import { metricValue, MTLS_YAML, MtlsMesh, recordTap, type Tap } from '../helpers/mtls-mesh.js';
import { Client, startProxy, withEndpoints, type EndpointPatch } from '../helpers/proxy.js';
import { RedisServer, redisUnavailable } from '../helpers/redis.js';
import { spiffeId } from '../helpers/test-pki.js';
import { applyCalleeYaml } from '../helpers/zt-mesh.js';

const API = 'api-v1.shop';
const CLIENT = 'cluster.local/ns/shop/sa/client';
const OTHER = 'cluster.local/ns/shop/sa/other';
const YAML = `${MTLS_YAML}---\n${k8sDeployment('other', 'shop', 'other')}`;
const METRIC = 'trellis_proxy_rate_limit_requests_total';

function policy(name: string, enforce: 'Inbound' | 'InboundAndOutbound', limits: string, extra = ''): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ${name}, namespace: shop }
spec:
  targetRef: { kind: Service, name: api }
  enforce: ${enforce}
${extra}  limits:
${limits}`;
}

/** A caller's snapshot compiled from the mesh's YAML plus `extra`, its endpoints pointing at the running callees. */
function callerSnapshot(m: MtlsMesh, workload: string, extra: string): Snapshot {
  const mesh = meshFromYaml(extra ? `${m.opts.yaml}---\n${extra}` : m.opts.yaml);
  const byInstance: Record<string, EndpointPatch> = {};
  for (const c of m.callees.values()) {
    const [address, port] = c.inbound.split(':');
    byInstance[c.instance] = { address: address!, port: Number(port), health: 'HEALTHY' };
  }
  return withEndpoints(compile(mesh.config, mesh.registry, { workload, namespace: 'shop' }), byInstance);
}

function applyTo(dp: DataPlane, s: Snapshot): void {
  const r = dp.apply(s);
  if (!r.ok) throw new Error(`snapshot rejected: ${r.reason}`);
}

const statuses = async (c: Client, n: number, url = 'http://api/o') => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await c.call(url)).status);
  return out;
};

describe('caller-side (outbound) rate limits on real sidecars', () => {
  let m: MtlsMesh;
  let other: DataPlane;
  let otherClient: Client;
  let records: Tap<RequestRecord>;

  before(async () => {
    records = recordTap();
    m = await MtlsMesh.start({ yaml: YAML, caller: { workload: 'client', namespace: 'shop' }, calleeMode: 'PERMISSIVE' });
    other = await startProxy({ mode: 'sidecar' }, callerSnapshot(m, 'other', ''));
    await m.certify(other, spiffeId('shop', 'other'));
    otherClient = new Client(other.addresses.outbound!);
  });

  after(async () => {
    records?.stop();
    await otherClient?.close();
    await other?.close(100);
    await m?.close();
  });

  /** The policy on every side: the callee's inbound snapshot and both callers' snapshots; returns the restore. */
  const everywhere = (yaml: string): (() => void) => {
    const restore = applyCalleeYaml(m, API, yaml);
    applyTo(m.caller, callerSnapshot(m, 'client', yaml));
    applyTo(other, callerSnapshot(m, 'other', yaml));
    return () => {
      restore();
      applyTo(m.caller, m.snapshot);
      applyTo(other, callerSnapshot(m, 'other', ''));
    };
  };

  test('a caller over its limit is refused by its own sidecar: the destination\'s app and inbound sidecar never see the refused requests', async (t) => {
    t.after(everywhere(policy('shed', 'InboundAndOutbound', `  - name: per-caller
    rate: { requests: 5, per: 1m }
`)));
    assert.ok(m.caller.snapshot?.outboundRateLimits, 'the caller\'s snapshot carries the outbound limits');
    const app = m.callee(API).app;
    const callee = m.callee(API).proxy;
    const hits0 = app.hits;
    records.clear();
    assert.deepEqual(await statuses(m.client, 8), [200, 200, 200, 200, 200, 429, 429, 429]);
    const r = await m.client.call('http://api/o');
    assert.equal(r.status, 429);
    assert.match(r.text, /rate limited: shop\/shed limit per-caller \(shed by the caller's sidecar\)/);
    assert.equal(r.headers['x-ratelimit-limit'], '5');
    assert.equal(r.headers['x-ratelimit-remaining'], '0');
    assert.ok(Number(r.headers['retry-after']) >= 1, `retry-after ${String(r.headers['retry-after'])}`);
    // Counted at the app, in the records and in both sidecars' metrics: the refused four never left the caller.
    assert.equal(app.hits - hits0, 5, 'the app served the five allowed requests only');
    const inbound = records.items.filter((x) => x.direction === 'inbound');
    assert.equal(inbound.length, 5, 'the inbound sidecar saw five requests');
    assert.ok(inbound.every((x) => x.status === 200));
    const shed = records.items.filter((x) => x.direction === 'outbound' && x.status === 429);
    assert.equal(shed.length, 4);
    assert.ok(shed.every((x) => x.responseFlags.includes('RL')), JSON.stringify(shed.map((x) => x.responseFlags)));
    assert.equal(await metricValue(m.caller, METRIC, { policy: 'shop/shed', caller: CLIENT, decision: 'allowed', side: 'outbound' }), 5);
    assert.equal(await metricValue(m.caller, METRIC, { policy: 'shop/shed', caller: CLIENT, decision: 'limited', side: 'outbound' }), 4);
    assert.equal(await metricValue(callee, METRIC, { policy: 'shop/shed', decision: 'allowed', side: 'inbound' }), 5, 'the inbound side decided the five that reached it');
    assert.equal(await metricValue(callee, METRIC, { policy: 'shop/shed', decision: 'limited' }), 0, 'and refused none');
    assert.equal(await metricValue(callee, METRIC, { policy: 'shop/shed', side: 'outbound' }), 0, 'the callee made no caller-side decision');
  });

  test('with enforce: Inbound the caller sheds nothing: the refusals come from the destination', async (t) => {
    t.after(everywhere(policy('dest-only', 'Inbound', `  - name: per-caller
    rate: { requests: 5, per: 1m }
`)));
    assert.equal(m.caller.snapshot?.outboundRateLimits, undefined);
    const app = m.callee(API).app;
    const hits0 = app.hits;
    records.clear();
    assert.deepEqual(await statuses(m.client, 8), [200, 200, 200, 200, 200, 429, 429, 429]);
    const r = await m.client.call('http://api/o');
    assert.equal(r.status, 429);
    assert.doesNotMatch(r.text, /caller's sidecar/);
    assert.equal(app.hits - hits0, 5, 'the app served five');
    const refusedInbound = records.items.filter((x) => x.direction === 'inbound' && x.status === 429);
    assert.equal(refusedInbound.length, 4, 'every refusal was the destination\'s');
    assert.ok(refusedInbound.every((x) => x.responseFlags.includes('RL')));
    assert.equal(await metricValue(m.caller, METRIC, { policy: 'shop/dest-only' }), 0, 'the caller decided nothing');
    assert.equal(await metricValue(m.callee(API).proxy, METRIC, { policy: 'shop/dest-only', decision: 'limited', side: 'inbound' }), 4);
  });

  test('two callers with their own identities keep their own caller-side buckets', async (t) => {
    t.after(everywhere(policy('two', 'InboundAndOutbound', `  - name: per-caller
    rate: { requests: 3, per: 1m }
`)));
    const hits0 = m.callee(API).app.hits;
    assert.deepEqual(await statuses(m.client, 4), [200, 200, 200, 429]);
    assert.deepEqual(await statuses(otherClient, 4), [200, 200, 200, 429], 'other is not held by client\'s bucket');
    assert.equal(m.callee(API).app.hits - hits0, 6);
    assert.equal(await metricValue(m.caller, METRIC, { policy: 'shop/two', caller: CLIENT, decision: 'limited', side: 'outbound' }), 1);
    assert.equal(await metricValue(other, METRIC, { policy: 'shop/two', caller: OTHER, decision: 'limited', side: 'outbound' }), 1);
    assert.equal(await metricValue(m.callee(API).proxy, METRIC, { policy: 'shop/two', decision: 'limited' }), 0, 'the destination refused nothing');
  });

  test('a limit for a caller group applies on the side of the callers in it only', async (t) => {
    t.after(everywhere(policy('group', 'InboundAndOutbound', `  - name: others
    callers: { principals: [${OTHER}] }
    rate: { requests: 2, per: 1m }
`)));
    assert.equal(m.caller.snapshot?.outboundRateLimits, undefined, 'client is not in the group');
    assert.deepEqual(await statuses(m.client, 3), [200, 200, 200]);
    assert.deepEqual(await statuses(otherClient, 3), [200, 200, 429]);
    assert.equal(await metricValue(other, METRIC, { policy: 'shop/group', decision: 'limited', side: 'outbound' }), 1);
  });
});

const skip = redisUnavailable();

describe('a global caller-side limit in Redis, shared by the caller\'s replicas', { skip }, () => {
  let m: MtlsMesh;
  let redis: RedisServer;
  let replica: DataPlane;
  let replicaClient: Client;

  before(async () => {
    redis = await RedisServer.start();
    m = await MtlsMesh.start({ yaml: YAML, caller: { workload: 'client', namespace: 'shop' }, calleeMode: 'PERMISSIVE' });
    // A second replica of the caller: the same workload, the same identity.
    replica = await startProxy({ mode: 'sidecar' }, m.snapshot);
    await m.certify(replica, m.callerIdentity);
    replicaClient = new Client(replica.addresses.outbound!);
  });

  after(async () => {
    await replicaClient?.close();
    await replica?.close(100);
    await m?.close();
    await redis?.stop();
  });

  test('the caller\'s replicas share one caller-side bucket under trellis:rl:out:, apart from the inbound side\'s', async (t) => {
    const yaml = policy('global-out', 'InboundAndOutbound', `  - name: per-caller
    scope: Global
    rate: { requests: 6, per: 1m }
`, `  store: { redis: ${redis.address}, timeout: 200ms, failureMode: Closed }
`);
    const restore = applyCalleeYaml(m, API, yaml);
    const s = callerSnapshot(m, 'client', yaml);
    applyTo(m.caller, s);
    applyTo(replica, s);
    t.after(() => { restore(); applyTo(m.caller, m.snapshot); applyTo(replica, m.snapshot); });
    const hits0 = m.callee(API).app.hits;
    const got: number[] = [];
    for (let i = 0; i < 10; i++) got.push((await (i % 2 ? replicaClient : m.client).call('http://api/g')).status);
    // Six in all pass: had the two sides shared a bucket, each request would take two tokens and only three would.
    assert.deepEqual(got, [200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);
    assert.equal(m.callee(API).app.hits - hits0, 6);
    const outbound = (await metricValue(m.caller, METRIC, { policy: 'shop/global-out', decision: 'limited', side: 'outbound' })) +
      (await metricValue(replica, METRIC, { policy: 'shop/global-out', decision: 'limited', side: 'outbound' }));
    assert.equal(outbound, 4, 'the callers refused the four');
    assert.equal(await metricValue(m.callee(API).proxy, METRIC, { policy: 'shop/global-out', decision: 'limited' }), 0);
    const { Redis } = await import('ioredis');
    const r = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await r.connect();
      const keys = (await r.keys('trellis:rl:*')).sort();
      assert.deepEqual(keys, [`trellis:rl:out:shop/global-out:per-caller:${CLIENT}`, `trellis:rl:shop/global-out:per-caller:${CLIENT}`]);
    } finally {
      r.disconnect();
    }
  });
});
