/** Registration over the real stream: accepted, refused (TRL1201 / TRL1202 / TRL1205), replaced (TRL1204). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/api/load.js';
import { hintFor, findInstance, register } from '../../src/controlplane/registration.js';
import type { ProxyRow } from '../../src/controlplane/admin.js';
import type { RefusedMessage } from '../../src/protocol/stream.js';
import { createRegistry } from '../../src/registry/registry.js';
import { configSource } from '../../src/registry/sources/config-source.js';
import { ConfigDir, SHOP, startControlPlane, StreamClient, waitFor, type TestControlPlane } from './helpers.js';

let dir: ConfigDir;
let t: TestControlPlane;
const clients: StreamClient[] = [];
const open = (instance: string, inbound: string, extra = {}) => {
  const c = StreamClient.hello(t.grpc, instance, inbound, extra);
  clients.push(c);
  return c;
};
const refusal = async (c: StreamClient): Promise<RefusedMessage> => {
  const m = await waitFor('refused', () => c.received.find((x): x is RefusedMessage => x.type === 'refused'));
  await waitFor('the stream to end', () => c.ended);
  return m;
};

before(async () => {
  dir = new ConfigDir({ 'app.yaml': SHOP });
  t = await startControlPlane(dir.path);
});
after(async () => {
  for (const c of clients) c.close();
  await t.cp.close();
  dir.remove();
});

test('a declared instance is registered: headers at once, then its snapshot; what it is comes from the configuration', async () => {
  const c = open('api-v1.shop#1', '127.0.0.1:41001');
  const snap = await c.snapshot();
  assert.ok(c.headers);
  assert.equal(snap.snapshot.node.id, 'api-v1.shop');
  assert.deepEqual(snap.snapshot.node.labels, { version: 'v1', app: 'api' });
  assert.equal(snap.snapshot.node.identity, 'spiffe://cluster.local/ns/shop/sa/api');
  assert.equal(snap.version, snap.snapshot.version);
  c.ack(snap);
  const rows = await waitFor('api-v1.shop#1 SYNCED', async () => {
    const r = (await t.get<ProxyRow[]>('/proxies')).body;
    return r.find((p) => p.instance === 'api-v1.shop#1' && p.sync === 'SYNCED') ? r : undefined;
  });
  const row = rows.find((p) => p.instance === 'api-v1.shop#1')!;
  assert.deepEqual({ ...row, lastPushedVersion: undefined, lastAckedVersion: undefined }, {
    instance: 'api-v1.shop#1', workload: 'api-v1', namespace: 'shop', kind: 'sidecar', identity: 'spiffe://cluster.local/ns/shop/sa/api',
    connected: true, lastPushedVersion: undefined, lastAckedVersion: undefined, sync: 'SYNCED', listeners: { inbound: '127.0.0.1:41001' },
  });
  assert.equal(row.lastAckedVersion, snap.version);
});

test('an unknown instance is refused with TRL1201 and near names, and is not listed', async () => {
  const c = open('api-v1.shop#7', '127.0.0.1:41002');
  const m = await refusal(c);
  assert.equal(m.code, 'TRL1201');
  assert.match(m.reason, /instance "api-v1\.shop#7" is not declared/);
  assert.match(m.reason, /did you mean "api-v1\.shop#0" or "api-v1\.shop#1"/);
  assert.equal(c.snapshots().length, 0);
  const typo = open('web.shp', '127.0.0.1:41003');
  assert.match((await refusal(typo)).reason, /did you mean "web\.shop"\?/);
  const rows = (await t.get<ProxyRow[]>('/proxies')).body;
  assert.ok(!rows.some((p) => p.instance === 'api-v1.shop#7' || p.instance === 'web.shp'));
});

test('a proxy claiming labels it does not have (group: fundsTransfer) is refused with TRL1202 and never served', async () => {
  const c = open('debit-credit.shop', '127.0.0.1:41004', { claims: { labels: { group: 'fundsTransfer' } } });
  const m = await refusal(c);
  assert.equal(m.code, 'TRL1202');
  assert.match(m.reason, /claims label group "fundsTransfer", but the configuration says "\(not set\)"/);
  assert.equal(c.snapshots().length, 0, 'no snapshot before or after the refusal');
  const eps = (await t.get<{ instance: string; address: string | null }[]>('/endpoints')).body;
  assert.equal(eps.find((e) => e.instance === 'debit-credit.shop')!.address, null, 'a refused proxy is not in rotation');

  const wrongId = open('web.shop', '127.0.0.1:41005', { claims: { identity: 'spiffe://cluster.local/ns/shop/sa/funds-transfer' } });
  assert.match((await refusal(wrongId)).reason, /claims identity "spiffe:\/\/cluster\.local\/ns\/shop\/sa\/funds-transfer", but the configuration says "spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web"/);
  const wrongSa = open('web.shop', '127.0.0.1:41005', { claims: { serviceAccount: 'root' } });
  assert.equal((await refusal(wrongSa)).code, 'TRL1202');
});

test('claims that agree with the configuration are accepted', async () => {
  const c = open('funds-transfer.shop', '127.0.0.1:41006', { claims: { labels: { group: 'fundsTransfer', app: 'funds-transfer' }, serviceAccount: 'funds-transfer' } });
  const snap = await c.snapshot();
  assert.equal(snap.snapshot.node.labels.group, 'fundsTransfer');
});

test('a stream that does not begin with hello is refused with TRL1205', async () => {
  const c = new StreamClient(t.grpc);
  clients.push(c);
  c.send({ type: 'ack', version: 'x', nonce: 'y' });
  const m = await refusal(c);
  assert.equal(m.code, 'TRL1205');
  const d = new StreamClient(t.grpc);
  clients.push(d);
  d.send({ type: 'hello', instance: 'web.shop', proxyVersion: 'test' });
  assert.match((await refusal(d)).reason, /no listeners\.inbound/);
});

test('a second registration of an instance replaces the first, which is told TRL1204', async () => {
  const first = open('tool.ops', '127.0.0.1:41007');
  await first.snapshot();
  const second = open('tool.ops', '127.0.0.1:41008');
  await second.snapshot();
  const m = await refusal(first);
  assert.equal(m.code, 'TRL1204');
  const eps = await waitFor('tool.ops at the new address', async () => {
    const r = (await t.get<{ instance: string; address: string | null; healthy: boolean }[]>('/endpoints')).body;
    const e = r.find((x) => x.instance === 'tool.ops');
    return e?.address === '127.0.0.1:41008' && e.healthy ? e : undefined;
  });
  assert.ok(eps);
  const rows = (await t.get<ProxyRow[]>('/proxies')).body.filter((p) => p.instance === 'tool.ops');
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.connected, true);
});

test('findInstance and hintFor: replica names, single-instance names, near names', () => {
  const config = loadConfig([dir.path]);
  const { registry } = createRegistry([configSource(config)]);
  assert.equal(findInstance(registry, 'api-v1.shop#0')?.replica, 0);
  assert.equal(findInstance(registry, 'api-v1.shop#1')?.workload.name, 'api-v1');
  assert.equal(findInstance(registry, 'api-v1.shop'), undefined, 'a workload of 2 replicas has no unnumbered instance');
  assert.equal(findInstance(registry, 'api-v2.shop')?.replica, 0);
  assert.equal(findInstance(registry, 'api-v2.shop#0'), undefined, 'a single instance has no number');
  assert.equal(findInstance(registry, 'api-v2'), undefined, 'the namespace is part of the name');
  assert.equal(hintFor('x', []), '; the configuration declares no instances');
  assert.match(hintFor('zzzzzzzz', ['a.b', 'c.d']), /^; known instances: a\.b, c\.d$/);
  const ok = register({ type: 'hello', instance: 'web.shop', proxyVersion: 't', listeners: { inbound: '' } }, registry);
  assert.ok(ok.ok);
});
