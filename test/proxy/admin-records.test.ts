/**
 * The admin port (/ready, /config_dump, /metrics) and the request records a
 * call between two services leaves on both proxies.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { Client, RunningMesh } from '../helpers/proxy.js';

let mesh: RunningMesh;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);
const admin = async (dp: { addresses: { admin: string } }, path: string) => {
  const r = await fetch(`http://${dp.addresses.admin}${path}`);
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
};

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await RunningMesh.start({ yaml: TWO_SERVICES, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v2.shop'] });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

test('admin: /ready is 503 with the reason until a snapshot is applied; requests get 503 meanwhile', async () => {
  const dp = createDataPlane({ mode: 'sidecar', mtlsWithoutCertificate: 'plaintext' });
  try {
    await dp.start();
    const r = await admin(dp, '/ready');
    assert.equal(r.status, 503);
    assert.equal(r.text, 'not ready: no snapshot applied yet\n');
    const client = new Client(dp.addresses.outbound!);
    const early = await client.call('http://api/');
    assert.equal(early.status, 503);
    assert.equal(early.text, 'the proxy has no configuration yet\n');
    await client.close();
    assert.deepEqual(dp.apply(mesh.snapshot), { ok: true });
    assert.deepEqual(await admin(dp, '/ready'), { status: 200, type: 'text/plain; charset=utf-8', text: 'ready\n' });
    assert.equal((await admin(dp, '/nothing')).status, 404);
  } finally {
    await dp.close(100);
  }
});

test('admin: /config_dump shows the snapshot in force', async () => {
  const r = await admin(mesh.caller, '/config_dump');
  assert.equal(r.type, 'application/json');
  const dump = JSON.parse(r.text);
  assert.equal(dump.version, mesh.snapshot.version);
  assert.deepEqual(dump.snapshot, JSON.parse(JSON.stringify(mesh.snapshot)));
});

test('admin: /metrics counts requests by direction and status class, flags, snapshots and the control-plane link', async () => {
  for (let i = 0; i < 5; i++) assert.equal((await mesh.call('http://api/m')).status, 200);
  mesh.caller.setControlPlaneConnected(true);
  const text = (await admin(mesh.caller, '/metrics')).text;
  const value = (series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);
  assert.ok(value('trellis_proxy_requests_total{direction="outbound",status_class="2xx"}') >= 5);
  assert.equal(value('trellis_proxy_requests_total{direction="inbound",status_class="2xx"}'), 0, 'the caller served no inbound traffic');
  assert.equal(value('trellis_proxy_snapshots_applied_total'), 1);
  assert.equal(value('trellis_proxy_control_plane_connected'), 1);
  assert.match(text, /# TYPE trellis_proxy_requests_total counter/);
  assert.match(text, new RegExp(`trellis_proxy_snapshot_info\\{version="${mesh.snapshot.version}"\\} 1`));
  const callee = [...mesh.callees.values()][0]!.proxy;
  const ctext = (await admin(callee, '/metrics')).text;
  assert.match(ctext, /trellis_proxy_requests_total\{direction="inbound",status_class="2xx"\} [1-9]/);
  // Not a mesh service: passed through (ALLOW_ANY) to a port where nothing listens: UF.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const dead = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  assert.equal((await mesh.call(`http://127.0.0.1:${dead}/`)).status, 503);
  const after = (await admin(mesh.caller, '/metrics')).text;
  assert.match(after, /trellis_proxy_response_flags_total\{direction="outbound",flag="UF"\} 1/);
});

test('records: one per proxy for a call, with route, upstream, identities, sizes and times', async () => {
  const before = records.length;
  const t0 = Date.now();
  const r = await mesh.call('http://api/rec?x=1', { method: 'POST', body: 'hello world' });
  assert.equal(r.status, 200);
  const callee = [...mesh.callees.values()][0]!;
  const out = records.slice(before).find((x) => x.direction === 'outbound')!;
  const inn = records.slice(before).find((x) => x.direction === 'inbound')!;
  assert.deepEqual({ ...out, startTime: 0, durationMs: 0, upstreamMs: 0, requestId: '' }, {
    direction: 'outbound', proxy: 'web-v1.shop', requestId: '', method: 'POST', authority: 'api', path: '/rec?x=1', protocol: 'HTTP/1.1',
    status: 200, responseFlags: [], virtualHost: 'api.shop.svc.cluster.local:80', route: 'default', cluster: 'outbound|80||api.shop.svc.cluster.local',
    upstream: callee.inbound, startTime: 0, durationMs: 0, upstreamMs: 0, bytesReceived: 11, bytesSent: Buffer.byteLength(r.text),
    sourceIdentity: 'spiffe://cluster.local/ns/shop/sa/web', destinationIdentity: 'spiffe://cluster.local/ns/shop/sa/api', attempts: 1,
  });
  assert.ok(out.startTime >= t0 - 5 && out.startTime <= Date.now());
  assert.ok(out.durationMs > 0 && out.upstreamMs! > 0 && out.upstreamMs! <= out.durationMs);
  assert.equal(inn.requestId, out.requestId);
  assert.equal(inn.proxy, 'api-v2.shop');
  assert.equal(inn.cluster, 'inbound|80|api.shop.svc.cluster.local');
  assert.equal(inn.upstream, `127.0.0.1:${callee.app.port}`);
  assert.equal(inn.destinationIdentity, 'spiffe://cluster.local/ns/shop/sa/api');
  assert.equal(inn.bytesReceived, 11);
  assert.equal(inn.bytesSent, out.bytesSent);
});
