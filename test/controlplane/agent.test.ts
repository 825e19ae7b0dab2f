/**
 * The agent (src/proxy/agent.ts) driving a real DataPlane against a real
 * control plane: registration, apply + ACK, health reports, reconnects with
 * the data plane serving meanwhile, refusal. NACKs come from the data plane
 * itself, fed an unusable snapshot by a scripted stream server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import type { EndpointRow, ProxyRow } from '../../src/controlplane/admin.js';
import { compile } from '../../src/compile/index.js';
import { createAgent, type Agent, type AgentEvent } from '../../src/proxy/agent.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import type { DataPlane } from '../../src/proxy/types.js';
import type { ControlMessage, ProxyMessage } from '../../src/protocol/stream.js';
import { meshService } from '../../src/protocol/stream.js';
import { meshFromYaml } from '../helpers/mesh.js';
import { ConfigDir, identityFor, SHOP, sleep, startControlPlane, waitFor } from './helpers.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function dataPlane(appPort?: number): Promise<DataPlane> {
  const dp = createDataPlane({ mode: 'sidecar', ...(appPort ? { appPort } : {}) });
  await dp.start();
  cleanup.push(() => dp.close(100));
  return dp;
}

function agent(opts: Parameters<typeof createAgent>[0]): { agent: Agent; events: AgentEvent[] } {
  const events: AgentEvent[] = [];
  const a = createAgent({ ...opts, log: (e) => events.push(e) });
  cleanup.push(() => a.close());
  return { agent: a, events };
}

async function app(status: { code: number }): Promise<number> {
  const server: HttpServer = createServer((_req, res) => {
    res.writeHead(status.code);
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => { server.close(r); server.closeAllConnections(); }));
  return (server.address() as AddressInfo).port;
}

async function mesh(opts = {}) {
  const dir = new ConfigDir({ 'app.yaml': SHOP });
  cleanup.push(() => dir.remove());
  const t = await startControlPlane(dir.path, opts);
  cleanup.push(() => t.cp.close());
  return t;
}

const metric = async (dp: DataPlane, name: string) => {
  const text = await (await fetch(`http://${dp.addresses.admin}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
};

test('the agent registers with the data plane\'s listeners, applies the snapshot and ACKs it', async () => {
  const t = await mesh();
  const dp = await dataPlane();
  const { agent: a, events } = agent({ controlPlane: t.grpc, instance: 'web.shop', dataPlane: dp, identity: identityFor(t, 'web.shop', dp) });
  await a.start();
  const row = await waitFor('SYNCED', async () => (await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'web.shop' && p.sync === 'SYNCED'));
  assert.deepEqual(row.listeners, { inbound: dp.addresses.inbound, outbound: dp.addresses.outbound, admin: dp.addresses.admin });
  assert.equal(dp.snapshot?.version, row.lastAckedVersion);
  assert.equal(dp.snapshot?.node.id, 'web.shop');
  assert.equal((await fetch(`http://${dp.addresses.admin}/ready`)).status, 200);
  assert.equal(a.connected, true);
  assert.equal(await metric(dp, 'trellis_proxy_control_plane_connected'), 1);
  assert.ok(events.some((e) => e.type === 'applied'));
  const ep = (await t.get<EndpointRow[]>('/endpoints')).body.find((e) => e.instance === 'web.shop')!;
  assert.equal(ep.address, dp.addresses.inbound, 'the endpoint is the proxy\'s inbound listener');
});

test('the agent reports the app\'s health: a failing check takes the instance out of rotation, a passing one brings it back', async () => {
  const t = await mesh();
  const status = { code: 200 };
  const port = await app(status);
  const dp = await dataPlane(port);
  const { agent: a } = agent({ controlPlane: t.grpc, instance: 'api-v2.shop', dataPlane: dp, identity: identityFor(t, 'api-v2.shop', dp), healthCheck: { port, path: '/healthz', intervalMs: 100 } });
  await a.start();
  assert.equal(a.healthy, true, 'the first check ran before hello');
  const healthy = async () => (await t.get<EndpointRow[]>('/endpoints')).body.find((e) => e.instance === 'api-v2.shop')?.healthy;
  await waitFor('healthy', async () => (await healthy()) === true);
  status.code = 503;
  await waitFor('unhealthy', async () => (await healthy()) === false, 3000);
  assert.ok(t.events.some((e) => e.type === 'health' && e.instance === 'api-v2.shop' && !e.healthy && /503/.test(e.detail ?? '')));
  status.code = 200;
  await waitFor('healthy again', async () => (await healthy()) === true, 3000);
});

test('one or two failed checks in a row leave a healthy app in rotation; the third takes it out (failureThreshold 3)', async () => {
  const t = await mesh();
  const planned: number[] = [];
  let checks = 0;
  let failing = false;
  const server: HttpServer = createServer((_req, res) => {
    checks++;
    res.writeHead(planned.shift() ?? (failing ? 503 : 200));
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => { server.close(r); server.closeAllConnections(); }));
  const port = (server.address() as AddressInfo).port;
  const dp = await dataPlane(port);
  const { agent: a } = agent({ controlPlane: t.grpc, instance: 'api-v2.shop', dataPlane: dp, identity: identityFor(t, 'api-v2.shop', dp), healthCheck: { port, path: '/healthz', intervalMs: 50 } });
  await a.start();
  const healthy = async () => (await t.get<EndpointRow[]>('/endpoints')).body.find((e) => e.instance === 'api-v2.shop')?.healthy;
  await waitFor('healthy', async () => (await healthy()) === true);
  // Two failures, then passes again: never out of rotation.
  planned.push(503, 503);
  const from = checks;
  await waitFor('two failed checks and two passing ones', async () => checks >= from + 4 || undefined, 3000, 10);
  assert.equal(a.healthy, true);
  assert.equal(t.events.some((e) => e.type === 'health' && e.instance === 'api-v2.shop' && !e.healthy), false, 'no unhealthy report reached the control plane');
  // Persistent failure: out after the third.
  const before = checks;
  failing = true;
  await waitFor('unhealthy', async () => (await healthy()) === false, 3000);
  assert.ok(checks - before >= 3, `out of rotation after ${checks - before} failed checks`);
  assert.equal(a.healthy, false);
});

test('an app that is down at start registers as unhealthy and never enters rotation before it is up', async () => {
  const t = await mesh();
  const dp = await dataPlane(1);
  const { agent: a } = agent({ controlPlane: t.grpc, instance: 'api-v2.shop', dataPlane: dp, identity: identityFor(t, 'api-v2.shop', dp), healthCheck: { port: 1, path: '/healthz', intervalMs: 100 } });
  await a.start();
  await waitFor('registered', async () => (await t.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'api-v2.shop' && p.sync === 'SYNCED'));
  await sleep(200);
  const ep = (await t.get<EndpointRow[]>('/endpoints')).body.find((e) => e.instance === 'api-v2.shop')!;
  assert.equal(ep.healthy, false);
  const own = dp.snapshot!.endpoints.find((e) => e.cluster === 'outbound|8080||api.shop.svc.cluster.local')!.endpoints.find((e) => e.instance === 'api-v2.shop')!;
  assert.equal(own.health, 'UNHEALTHY', 'the first snapshot pushed already has it out of rotation');
  assert.equal(t.events.filter((e) => e.type === 'push').length, 1);
});

test('while the control plane is gone the data plane keeps serving; the agent reconnects with backoff and resyncs', async () => {
  const dir = new ConfigDir({ 'app.yaml': SHOP });
  cleanup.push(() => dir.remove());
  // One state dir, so the second control plane runs the same CA as the first.
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-agent-state-'));
  cleanup.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const first = await startControlPlane(dir.path, { stateDir });
  const port = Number(first.grpc.split(':')[1]);
  const dp = await dataPlane();
  const { agent: a, events } = agent({ controlPlane: first.grpc, instance: 'web.shop', dataPlane: dp, identity: identityFor(first, 'web.shop', dp), backoff: { initialMs: 100, maxMs: 800 } });
  await a.start();
  await waitFor('applied', () => dp.snapshot);
  const served = dp.snapshot!.version;
  await first.cp.close();
  await waitFor('disconnected', () => !a.connected, 3000);
  assert.equal(await metric(dp, 'trellis_proxy_control_plane_connected'), 0);
  await sleep(1500);
  assert.equal(dp.snapshot?.version, served, 'the last snapshot stays in force');
  assert.equal((await fetch(`http://${dp.addresses.admin}/ready`)).status, 200, 'still ready: serving');
  const retries = events.filter((e): e is Extract<AgentEvent, { type: 'disconnected' }> => e.type === 'disconnected');
  assert.ok(retries.length >= 2, `retried ${retries.length} times`);
  assert.ok(retries.every((e) => e.retryInMs <= 800 * 1.2), `delays ${retries.map((e) => e.retryInMs)}`);
  assert.ok(retries.at(-1)!.retryInMs > retries[0]!.retryInMs, 'the delay grows');

  const second = await startControlPlane(dir.path, { grpcPort: port, registrationGraceMs: 1500, stateDir });
  cleanup.push(() => second.cp.close());
  await waitFor('reconnected', () => a.connected, 3000);
  const row = await waitFor('SYNCED on the new control plane', async () => (await second.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'web.shop' && p.sync === 'SYNCED'), 8000);
  assert.equal(row.lastAckedVersion, dp.snapshot!.version);
  assert.ok(second.events.some((e) => e.type === 'proxy-connected' && e.servingVersion === served), 'it said which version it serves');
});

test('a refused agent stops for good and applies nothing', async () => {
  const t = await mesh();
  const dp = await dataPlane();
  let refusedWith: string | undefined;
  const { agent: a, events } = agent({
    controlPlane: t.grpc, instance: 'debit-credit.shop', dataPlane: dp, identity: identityFor(t, 'debit-credit.shop', dp), claims: { labels: { group: 'fundsTransfer' } },
    backoff: { initialMs: 50 }, onRefused: (code) => (refusedWith = code),
  });
  await a.start();
  await waitFor('refused', () => refusedWith);
  assert.equal(refusedWith, 'TRL1202');
  assert.equal(a.refused?.code, 'TRL1202');
  await sleep(400);
  assert.equal(events.filter((e) => e.type === 'connecting').length, 1, 'no reconnect after a refusal');
  assert.equal(dp.snapshot, undefined);
  assert.equal((await fetch(`http://${dp.addresses.admin}/ready`)).status, 503);
});

test('a snapshot the data plane cannot use is NACKed with its reason and the previous one stays', async () => {
  const { config, registry } = meshFromYaml(SHOP);
  const good = compile(config, registry, { workload: 'web', namespace: 'shop' });
  const bad = { ...good, version: 'broken', schema: 'trellis.dev/snapshot/v0' } as unknown as typeof good;
  const replies: ProxyMessage[] = [];
  const server = new Server();
  server.addService(meshService, {
    stream: (call: ServerDuplexStream<ProxyMessage, ControlMessage>) => {
      call.on('data', (m: ProxyMessage) => {
        replies.push(m);
        if (m.type === 'hello') {
          call.write({ type: 'snapshot', version: good.version, nonce: 'n1', snapshot: good });
          call.write({ type: 'snapshot', version: bad.version, nonce: 'n2', snapshot: bad });
        }
      });
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((r, j) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? j(e) : r(p))));
  cleanup.push(() => server.forceShutdown());
  const dp = await dataPlane();
  const { agent: a } = agent({ controlPlane: `127.0.0.1:${port}`, instance: 'web.shop', dataPlane: dp });
  await a.start();
  const nack = await waitFor('nack', () => replies.find((m) => m.type === 'nack'));
  assert.deepEqual(replies.filter((m) => m.type !== 'hello').map((m) => [m.type, (m as { nonce: string }).nonce]), [['ack', 'n1'], ['nack', 'n2']]);
  assert.equal(nack.type === 'nack' && nack.version, 'broken');
  assert.match(nack.type === 'nack' ? nack.reason : '', /schema/);
  assert.equal(dp.snapshot?.version, good.version, 'the previous snapshot stays in force');
});
