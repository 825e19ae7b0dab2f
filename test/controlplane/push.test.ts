/**
 * Pushing over the real stream: ACK/NACK bookkeeping and sync states, pushes
 * only where the version changed, debounce, config edits (valid within 1 s,
 * invalid reported and not in force), reconnects, leaving and gone-after,
 * start-up grace.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EndpointRow, ProxyRow } from '../../src/controlplane/admin.js';
import type { ControlPlaneOptions } from '../../src/controlplane/control-plane.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { apiSplit, ConfigDir, SHOP, sleep, startControlPlane, StreamClient, waitFor } from './helpers.js';

const API = 'outbound|8080||api.shop.svc.cluster.local';
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function mesh(files: Record<string, string> = { 'app.yaml': SHOP }, opts: Partial<ControlPlaneOptions> = {}) {
  const dir = new ConfigDir(files);
  cleanup.push(() => dir.remove());
  const t = await startControlPlane(dir.path, opts);
  cleanup.push(() => t.cp.close());
  const open = (instance: string, inbound: string, extra = {}) => {
    const c = StreamClient.hello(t.grpc, instance, inbound, extra);
    cleanup.push(() => c.close());
    return c;
  };
  const proxy = async (instance: string) => (await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === instance);
  return { dir, t, open, proxy };
}

const endpointsOf = (s: Snapshot, cluster: string) => s.endpoints.find((e) => e.cluster === cluster)?.endpoints ?? [];
const routeWeights = (s: Snapshot) => {
  const vh = s.outbound.http.flatMap((t) => t.virtualHosts).find((v) => v.name === 'api.shop.svc.cluster.local:8080')!;
  const a = vh.routes[0]!.action as { clusters?: { cluster: string; weight: number }[] };
  return (a.clusters ?? []).map((c) => c.weight);
};

test('ACK and NACK bookkeeping: STALE until acked, SYNCED, NACKED with the reason, SYNCED again after an acked push', async () => {
  const { dir, t, open, proxy } = await mesh();
  const web = open('web.shop', '127.0.0.1:42001');
  const s1 = await web.snapshot();
  assert.equal((await proxy('web.shop'))!.sync, 'STALE', 'pushed, not acked yet');
  web.ack(s1);
  await waitFor('SYNCED', async () => (await proxy('web.shop'))?.sync === 'SYNCED');

  dir.write('routing.yaml', apiSplit(90, 10));
  const s2 = await web.snapshot(1);
  assert.notEqual(s2.version, s1.version);
  web.send({ type: 'nack', version: s2.version, nonce: s2.nonce, reason: 'cluster outbound|8080|v2|api.shop.svc.cluster.local: cannot build pool' });
  const nacked = await waitFor('NACKED', async () => {
    const p = await proxy('web.shop');
    return p?.sync === 'NACKED' ? p : undefined;
  });
  assert.equal(nacked.nackReason, 'cluster outbound|8080|v2|api.shop.svc.cluster.local: cannot build pool');
  assert.equal(nacked.lastPushedVersion, s2.version);
  assert.equal(nacked.lastAckedVersion, s1.version, 'the proxy still serves the version it acked');
  assert.ok(t.events.some((e) => e.type === 'nack' && /TRL1203|rejected snapshot/.test(e.reason)));
  assert.match((await t.get('/metrics')).text, /^trellis_controlplane_nacks_total 1$/m);

  dir.write('routing.yaml', apiSplit(50, 50));
  const s3 = await web.snapshot(2);
  web.ack(s3);
  const synced = await waitFor('SYNCED again', async () => {
    const p = await proxy('web.shop');
    return p?.sync === 'SYNCED' ? p : undefined;
  });
  assert.equal(synced.nackReason, undefined);
  assert.equal(synced.lastAckedVersion, s3.version);

  web.close();
  const gone = await waitFor('disconnected', async () => {
    const p = await proxy('web.shop');
    return p && !p.connected ? p : undefined;
  });
  assert.equal(gone.sync, 'STALE', 'a disconnected proxy is STALE');
});

test('a configuration edit is pushed within 1 s, only to the proxies whose snapshot changed', async () => {
  const { dir, open } = await mesh();
  const web = open('web.shop', '127.0.0.1:42011');
  const tool = open('tool.ops', '127.0.0.1:42012');
  web.ack(await web.snapshot());
  tool.ack(await tool.snapshot());
  await sleep(300); // both registrations are in everybody's snapshot by now
  const webBefore = web.snapshots().length;
  const toolBefore = tool.snapshots().length;

  const t0 = Date.now();
  dir.write('routing.yaml', apiSplit(90, 10)); // exportTo: ["."] — visible in shop only
  const s = await web.snapshot(webBefore, 2000);
  const took = Date.now() - t0;
  assert.ok(took < 1000, `pushed after ${took} ms`);
  assert.deepEqual(routeWeights(s.snapshot), [90, 10]);
  await sleep(500);
  assert.equal(tool.snapshots().length, toolBefore, 'tool.ops (namespace ops) does not see the VirtualService and gets no push');
  assert.equal(web.snapshots().length, webBefore + 1, 'one push per change');

  dir.write('routing.yaml', apiSplit(90, 10)); // the same content again: same versions, no push
  await sleep(600);
  assert.equal(web.snapshots().length, webBefore + 1);
});

test('changes are debounced: a burst of health reports gives one push with the final state', async () => {
  const { open } = await mesh();
  const web = open('web.shop', '127.0.0.1:42021');
  const api = open('api-v1.shop#0', '127.0.0.1:42022');
  api.ack(await api.snapshot());
  await waitFor('web sees api-v1#0 healthy', () => web.snapshots().some((m) => endpointsOf(m.snapshot, API).some((e) => e.instance === 'api-v1.shop#0' && e.health === 'HEALTHY')));
  await sleep(300);
  const before = web.snapshots().length;
  for (const healthy of [false, true, false, true, false]) api.send({ type: 'health', healthy });
  const s = await web.snapshot(before);
  await sleep(500);
  assert.equal(web.snapshots().length, before + 1, 'one push for the burst');
  const e = endpointsOf(s.snapshot, API).find((x) => x.instance === 'api-v1.shop#0')!;
  assert.deepEqual([e.address, e.port, e.health], ['127.0.0.1', 42022, 'UNHEALTHY']);
});

test('an invalid edit is reported with file and line; the last good configuration stays in force until it is fixed', async () => {
  const { dir, t, open } = await mesh({ 'app.yaml': SHOP, 'routing.yaml': apiSplit(90, 10) });
  const web = open('web.shop', '127.0.0.1:42031');
  const s1 = await web.snapshot();
  assert.deepEqual(routeWeights(s1.snapshot), [90, 10]);
  await sleep(300);
  const before = web.snapshots().length;

  dir.write('routing.yaml', apiSplit(10, 90).replace('weight: 90', 'weight: "ninety"'));
  const errors = await waitFor('the error at /config/errors', async () => {
    const r = (await t.get<{ code: string; level: string; position: { file: string; line: number } | null; field: string | null; resource: string | null }[]>('/config/errors')).body;
    return r.some((d) => d.level === 'error') ? r : undefined;
  }, 2000);
  const err = errors.find((d) => d.level === 'error')!;
  assert.equal(err.position?.file, 'routing.yaml');
  assert.ok(err.position!.line > 1, `line ${err.position!.line}`);
  assert.equal(err.resource, 'VirtualService shop/api');
  assert.match(err.field ?? '', /weight/);
  const rejected = t.events.find((e) => e.type === 'config-rejected');
  assert.ok(rejected && rejected.type === 'config-rejected' && rejected.files.includes('routing.yaml'));
  assert.match((await t.get('/metrics')).text, /^trellis_controlplane_config_errors 1$/m);
  await sleep(400);
  assert.equal(web.snapshots().length, before, 'nothing pushed: the last good version of routing.yaml stays');
  assert.ok(t.cp.config.get('VirtualService', 'shop', 'api'));

  dir.write('routing.yaml', apiSplit(10, 90));
  const s2 = await web.snapshot(before, 2000);
  assert.deepEqual(routeWeights(s2.snapshot), [10, 90]);
  assert.deepEqual((await t.get<unknown[]>('/config/errors')).body.filter((d) => (d as { level: string }).level === 'error'), []);
});

test('a reconnecting proxy gets the full current snapshot, even when it says it serves that version', async () => {
  const { open } = await mesh();
  const a = open('web.shop', '127.0.0.1:42041');
  const s1 = await a.snapshot();
  a.ack(s1);
  a.close();
  await sleep(200);
  const b = open('web.shop', '127.0.0.1:42041', { servingVersion: s1.version });
  const s2 = await b.snapshot();
  assert.equal(s2.version, s1.version);
  assert.ok(s2.snapshot.clusters.length > 0 && s2.snapshot.endpoints.length > 0, 'the whole snapshot, not a delta');
});

test('a closed stream takes the instance out of rotation at once; it is forgotten after gone-after', async () => {
  const { t, open, proxy } = await mesh(undefined, { goneAfterMs: 600 });
  const web = open('web.shop', '127.0.0.1:42051');
  const api = open('api-v2.shop', '127.0.0.1:42052');
  await api.snapshot();
  await waitFor('web sees api-v2 healthy', () => web.snapshots().some((m) => endpointsOf(m.snapshot, API).some((e) => e.instance === 'api-v2.shop' && e.health === 'HEALTHY')));
  const ep = async () => (await t.get<EndpointRow[]>('/endpoints')).body.find((e) => e.service === 'api.shop.svc.cluster.local' && e.instance === 'api-v2.shop')!;
  assert.deepEqual(await ep(), { service: 'api.shop.svc.cluster.local', port: 8080, instance: 'api-v2.shop', address: '127.0.0.1:42052', healthy: true });

  const closedAt = Date.now();
  api.close();
  await waitFor('web gets api-v2 UNHEALTHY', () => web.snapshots().some((m) => endpointsOf(m.snapshot, API).some((e) => e.instance === 'api-v2.shop' && e.health === 'UNHEALTHY')), 1000);
  assert.ok(Date.now() - closedAt < 600, 'out of rotation before gone-after');
  assert.equal((await ep()).healthy, false);
  assert.equal((await proxy('api-v2.shop'))?.connected, false);

  await waitFor('api-v2 forgotten', async () => (await proxy('api-v2.shop')) === undefined && (await ep()).address === null, 2000);
  assert.ok(Date.now() - closedAt >= 550);
  await waitFor('web gets api-v2 without an address', () => endpointsOf(web.snapshots().at(-1)!.snapshot, API).find((e) => e.instance === 'api-v2.shop')!.address === undefined, 1000);
  assert.ok(t.events.some((e) => e.type === 'proxy-gone' && e.instance === 'api-v2.shop'));
});

const ALL = ['web.shop', 'api-v1.shop#0', 'api-v1.shop#1', 'api-v2.shop', 'funds-transfer.shop', 'debit-credit.shop', 'tool.ops'];

test('start-up grace: proxies that serve a snapshot get none until every expected instance registered; fresh proxies get theirs at once', async () => {
  const { t, open } = await mesh(undefined, { registrationGraceMs: 10_000 });
  assert.equal(t.cp.inGrace, true);
  const held = open('web.shop', '127.0.0.1:42061', { servingVersion: 'from-the-last-control-plane' });
  const fresh = open('api-v1.shop#0', '127.0.0.1:42062');
  await fresh.snapshot();
  await sleep(300);
  assert.equal(held.snapshots().length, 0, 'held back while instances are missing');
  assert.ok(held.headers, 'hello was accepted meanwhile');
  let port = 42063;
  for (const i of ALL.slice(2)) open(i, `127.0.0.1:${port++}`, { servingVersion: 'x' });
  const s = await held.snapshot(0, 2000);
  assert.equal(t.cp.inGrace, false);
  const api = endpointsOf(s.snapshot, API);
  assert.deepEqual(api.map((e) => e.instance).sort(), ['api-v1.shop#0', 'api-v1.shop#1', 'api-v2.shop']);
  assert.ok(api.every((e) => e.address === '127.0.0.1' && e.health === 'HEALTHY'), 'the first push after a restart has every endpoint');
  assert.ok(t.events.some((e) => e.type === 'grace' && e.state === 'ended' && e.why === 'registered'));
});

test('start-up grace ends after --registration-grace when instances stay missing', async () => {
  const { t, open } = await mesh(undefined, { registrationGraceMs: 700 });
  const started = Date.now();
  const held = open('web.shop', '127.0.0.1:42071', { servingVersion: 'old' });
  const s = await held.snapshot(0, 3000);
  const waited = Date.now() - started;
  assert.ok(waited >= 600, `pushed after ${waited} ms`);
  assert.ok(t.events.some((e) => e.type === 'grace' && e.state === 'ended' && e.why === 'timeout' && e.missing.includes('tool.ops')));
  assert.ok(s.snapshot.clusters.length > 0);
});

test('with a state directory, a restarted control plane waits only for the instances registered before', async () => {
  const state = mkdtempSync(join(tmpdir(), 'trellis-state-'));
  cleanup.push(() => rmSync(state, { recursive: true, force: true }));
  writeFileSync(join(state, 'control-plane.json'), JSON.stringify({ instances: ['web.shop', 'tool.ops', 'removed.shop'], updatedAt: '' }));
  const { t, open } = await mesh(undefined, { registrationGraceMs: 10_000, stateDir: state });
  assert.equal(t.cp.inGrace, true);
  const web = open('web.shop', '127.0.0.1:42081', { servingVersion: 'old' });
  await sleep(200);
  assert.equal(web.snapshots().length, 0);
  open('tool.ops', '127.0.0.1:42082', { servingVersion: 'old' });
  await web.snapshot(0, 2000);
  assert.equal(t.cp.inGrace, false);
  const saved = await waitFor('the state file lists the registered instances', async () => {
    const { readFileSync } = await import('node:fs');
    const s = JSON.parse(readFileSync(join(state, 'control-plane.json'), 'utf8')) as { instances: string[] };
    return s.instances.join() === 'tool.ops,web.shop' ? s : undefined;
  });
  assert.ok(saved);
});
