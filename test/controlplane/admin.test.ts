/** The admin API's pages and their shapes (docs/running-mesh.md), on a real control plane. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointRow, ProxyRow, ServiceRow } from '../../src/controlplane/admin.js';
import { ConfigDir, SHOP, startControlPlane, StreamClient, waitFor, type TestControlPlane } from './helpers.js';

let dir: ConfigDir;
let t: TestControlPlane;
let web: StreamClient;

before(async () => {
  dir = new ConfigDir({ 'app.yaml': SHOP, 'broken.yaml': 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: bad, namespace: shop }\nspec:\n  hosts: [web]\n  htp: []\n' });
  t = await startControlPlane(dir.path);
  web = StreamClient.hello(t.grpc, 'web.shop', '127.0.0.1:43001');
  web.ack(await web.snapshot());
});
after(async () => {
  web.close();
  await t.cp.close();
  dir.remove();
});

test('/ready answers 200 once the configuration loaded', async () => {
  const r = await t.get<{ ready: boolean }>('/ready');
  assert.equal(r.status, 200);
  assert.equal(r.body.ready, true);
});

test('/services lists hostname, namespace and ports', async () => {
  const r = await t.get<ServiceRow[]>('/services');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.map((s) => s.hostname), [
    'api.shop.svc.cluster.local', 'debit-credit.shop.svc.cluster.local', 'funds-transfer.shop.svc.cluster.local', 'tool.ops.svc.cluster.local', 'web.shop.svc.cluster.local',
  ]);
  assert.deepEqual(r.body.find((s) => s.hostname.startsWith('tool.')), { hostname: 'tool.ops.svc.cluster.local', namespace: 'ops', ports: [{ name: 'http', port: 9000, protocol: 'HTTP' }] });
});

test('/endpoints lists every instance of every service port: registered ones with their address, others with null', async () => {
  const r = await t.get<EndpointRow[]>('/endpoints');
  const web = r.body.filter((e) => e.service === 'web.shop.svc.cluster.local');
  assert.deepEqual(web, [{ service: 'web.shop.svc.cluster.local', port: 8080, instance: 'web.shop', address: '127.0.0.1:43001', healthy: true }]);
  const api = r.body.filter((e) => e.service === 'api.shop.svc.cluster.local');
  assert.deepEqual(api.map((e) => [e.instance, e.address, e.healthy]), [['api-v1.shop#0', null, false], ['api-v1.shop#1', null, false], ['api-v2.shop', null, false]]);
});

test('/proxies shows each proxy with its sync state', async () => {
  const rows = await waitFor('SYNCED', async () => {
    const r = (await t.get<ProxyRow[]>('/proxies')).body;
    return r[0]?.sync === 'SYNCED' ? r : undefined;
  });
  assert.deepEqual(Object.keys(rows[0]!).sort(), ['connected', 'identity', 'instance', 'kind', 'lastAckedVersion', 'lastPushedVersion', 'listeners', 'namespace', 'sync', 'workload']);
});

test('/config/errors lists the diagnostics with code, level, message, resource, position and field', async () => {
  const r = await t.get<{ code: string; level: string; message: string; resource: string | null; position: { file: string; line: number; col: number } | null; field: string | null }[]>('/config/errors');
  const e = r.body.find((d) => d.level === 'error')!;
  assert.deepEqual({ ...e, message: undefined }, { code: 'TRL1002', level: 'error', message: undefined, resource: 'VirtualService shop/bad', position: { file: 'broken.yaml', line: 6, col: 3 }, field: 'spec.htp' });
  assert.match(e.message, /unknown field/);
});

test('/metrics is Prometheus text with pushes, push latency, connected proxies and config errors', async () => {
  const r = await t.get('/metrics');
  assert.equal(r.status, 200);
  for (const line of [
    /^# TYPE trellis_controlplane_pushes_total counter$/m,
    /^trellis_controlplane_pushes_total [1-9]\d*$/m,
    /^# TYPE trellis_controlplane_push_latency_seconds histogram$/m,
    /^trellis_controlplane_push_latency_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m,
    /^trellis_controlplane_push_convergence_seconds_count \d+$/m,
    /^trellis_controlplane_connected_proxies 1$/m,
    /^trellis_controlplane_config_errors 2$/m, // unknown field htp, and no route
    /^trellis_controlplane_config_reloads_total\{result="rejected"\} 1$/m,
  ]) assert.match(r.text, line);
});

test('unknown pages answer 404 with the list of pages; other methods 405', async () => {
  const r = await t.get<{ pages: string[] }>('/nope');
  assert.equal(r.status, 404);
  assert.ok(r.body.pages.includes('/proxies'));
  const post = await fetch(`http://${t.admin}/ready`, { method: 'POST' });
  assert.equal(post.status, 405);
  await post.text();
});

test('/config/files serves the text of the files in force: a rejected file is not among them', async () => {
  const r = await t.get<{ files: { file: string; text: string }[] }>('/config/files');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.files.map((f) => f.file), ['app.yaml']);
  assert.equal(r.body.files[0]!.text, SHOP);
});

test('/registry serves a dump that rebuilds the same registry: services, workloads, endpoints, namespaces', async () => {
  const { registryFromDump } = await import('../../src/registry/dump.js');
  const r = await t.get<Parameters<typeof registryFromDump>[0]>('/registry');
  assert.equal(r.status, 200);
  const reg = registryFromDump(r.body);
  assert.equal(reg.trustDomain, 'cluster.local');
  assert.deepEqual(reg.services().map((s) => s.hostname), (await t.get<ServiceRow[]>('/services')).body.map((s) => s.hostname));
  assert.ok(reg.workload('web', 'shop'));
  assert.ok(reg.namespaces().includes('ops'));
  const web = reg.endpoints('web.shop.svc.cluster.local', 8080);
  assert.deepEqual(web.map((e) => [e.instance, e.address, e.port]), [['web.shop', '127.0.0.1', 43001]]);
  assert.throws(() => registryFromDump({} as never), /not a registry dump/);
});
