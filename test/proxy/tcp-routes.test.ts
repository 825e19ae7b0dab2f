/**
 * VirtualService `tcp` rules end to end: a client on a per-upstream local
 * port of its sidecar → CONNECT tunnel → the callee's sidecar → a raw TCP
 * app that says who it is. The first rule that fits wins (port, sourceLabels
 * and sourceNamespace decided for the caller; a second caller with other
 * labels takes another rule), a 75/25 split over 200 connections, a rule by
 * destinationSubnets taken when the app dials the service's VIP and not when
 * it dials the name, and the records of a destination with no cluster (NC)
 * and a cluster with no endpoints (UH).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { compile } from '../../src/compile/index.js';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import type { DataPlane, UpstreamPort } from '../../src/proxy/types.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';
import { eventually, RunningMesh, startProxy, tally, type App } from '../helpers/proxy.js';

const subsets = (host: string, names: readonly string[]) => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${host}, namespace: shop }
spec:
  host: ${host}
  subsets: [${names.map((n) => `{ name: ${n}, labels: { version: ${n} } }`).join(', ')}]
`;

const YAML = [
  k8sService('db', 'shop', { name: 'tcp-db', port: 5432, targetPort: 5432 }),
  ...['v1', 'v2', 'v3'].map((v) => k8sDeployment(`db-${v}`, 'shop', 'db', { labels: { version: v } })),
  `apiVersion: v1
kind: Service
metadata: { name: vault, namespace: shop }
spec:
  selector: { app: vault }
  clusterIP: 10.96.7.7
  ports: [{ name: tcp, port: 9000, targetPort: 9000 }]
`,
  ...['v1', 'v2'].map((v) => k8sDeployment(`vault-${v}`, 'shop', 'vault', { labels: { version: v } })),
  k8sService('ledger', 'shop', { name: 'tcp', port: 7000, targetPort: 7000 }),
  k8sDeployment('ledger-v1', 'shop', 'ledger', { labels: { version: 'v1' } }),
  k8sDeployment('client', 'shop', 'client', { labels: { team: 'pay' } }),
  k8sDeployment('batch', 'shop', 'batch', { labels: { team: 'reports' } }),
].join('---\n') + subsets('db', ['v1', 'v2', 'v3']) + subsets('vault', ['v1', 'v2']) + subsets('ledger', ['v1', 'v9']) + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: shop }
spec:
  hosts: [db]
  tcp:
  - match: [{ port: 5433 }]
    route: [{ destination: { host: db, subset: v3 } }]
  - match: [{ sourceLabels: { team: pay }, sourceNamespace: other }]
    route: [{ destination: { host: db, subset: v3 } }]
  - match: [{ sourceLabels: { team: pay }, port: 5432 }]
    route:
    - { destination: { host: db, subset: v1 }, weight: 75 }
    - { destination: { host: db, subset: v2 }, weight: 25 }
  - route: [{ destination: { host: db, subset: v3 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: vault, namespace: shop }
spec:
  hosts: [vault]
  tcp:
  - match: [{ destinationSubnets: [10.96.7.0/24] }]
    route: [{ destination: { host: vault, subset: v2 } }]
  - route: [{ destination: { host: vault, subset: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ledger, namespace: shop }
spec:
  hosts: [ledger]
  tcp:
  - match: [{ sourceLabels: { team: pay } }]
    route: [{ destination: { host: ledger, subset: ghost } }]
  - match: [{ sourceLabels: { team: reports } }]
    route: [{ destination: { host: ledger, subset: v9 } }]
`;

/** A raw TCP app that answers each line with `PONG <instance>`. */
async function startPongApp(name: string): Promise<App> {
  const open = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    app.hits++;
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => { for (const _ of c.toString('latin1').split('\n').slice(1)) s.write(`PONG ${name}\n`); });
    s.once('end', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const app: App = {
    name, hits: 0, port: (server.address() as AddressInfo).port, server: server as unknown as HttpServer,
    close: () => new Promise((r) => { for (const s of open) s.destroy(); server.close(() => r()); }),
  };
  return app;
}

const UPSTREAMS: readonly UpstreamPort[] = [
  { host: 'db', port: 5432, localPort: 0 },
  { host: 'vault', port: 9000, localPort: 0 },
  { host: '10.96.7.7', port: 9000, localPort: 0 },
  { host: 'ledger', port: 7000, localPort: 0 },
];

let mesh: RunningMesh;
let client: DataPlane;
let batch: DataPlane;
const records: RequestRecord[] = [];
const onRecord = (m: unknown) => { const r = m as RequestRecord; if (r.protocol === 'TCP' && r.direction === 'outbound') records.push(r); };

before(async () => {
  const instances = ['db-v1', 'db-v2', 'db-v3', 'vault-v1', 'vault-v2', 'ledger-v1'].map((w) => `${w}.shop`);
  mesh = await RunningMesh.start({ yaml: YAML, caller: { workload: 'client', namespace: 'shop' }, apps: Object.fromEntries(instances.map((i) => [i, startPongApp])) });
  client = await startProxy({ mode: 'sidecar', upstreams: UPSTREAMS }, mesh.snapshot);
  const m = meshFromYaml(YAML);
  batch = await startProxy({ mode: 'sidecar', upstreams: UPSTREAMS }, mesh.patch(compile(m.config, m.registry, { workload: 'batch', namespace: 'shop' })));
  subscribe(REQUEST_CHANNEL, onRecord);
});

after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await client?.close(100);
  await batch?.close(100);
  await mesh?.close();
});

const localPort = (dp: DataPlane, upstream: string) => Number(dp.addresses.upstreams![upstream]!.split(':')[1]);

/** One connection: `PING`, the answer line (or '' when the proxy closed it), then close. */
function ping(dp: DataPlane, upstream: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: localPort(dp, upstream) });
    let text = '';
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (text.includes('\n')) s.end();
    });
    s.once('close', () => { clearTimeout(timer); resolve(text.split('\n')[0]!); });
    s.write('PING\n');
  });
}

async function pings(dp: DataPlane, upstream: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let done = 0; done < n; done += 10) out.push(...(await Promise.all(Array.from({ length: Math.min(10, n - done) }, () => ping(dp, upstream)))));
  return out;
}

test('the first rule that fits wins: rules for another port or another namespace are passed over, the catch-all is not reached', async () => {
  const from = records.length;
  const answers = await pings(client, 'db:5432', 20);
  assert.equal(answers.filter((a) => a === 'PONG db-v3.shop').length, 0, JSON.stringify(tally(answers)));
  assert.ok(answers.every((a) => /^PONG db-v[12]\.shop$/.test(a)), JSON.stringify(tally(answers)));
  const rec = await eventually(() => { const r = records.slice(from); return r.length >= 20 ? r : undefined; }, 5000, () => JSON.stringify(records.slice(from)));
  assert.ok(rec.every((r) => r.route === 'db.tcp.2' && r.status === 200), JSON.stringify(rec.map((r) => r.route)));
});

test('75/25 over 200 connections, per connection, within tolerance', { timeout: 120_000 }, async () => {
  const n = tally(await pings(client, 'db:5432', 200));
  const v1 = n['PONG db-v1.shop'] ?? 0;
  const v2 = n['PONG db-v2.shop'] ?? 0;
  assert.equal(v1 + v2, 200, JSON.stringify(n));
  // Expected 150/50, σ ≈ 6.1: ±5σ.
  assert.ok(v1 >= 120 && v1 <= 180 && v2 >= 20, JSON.stringify(n));
});

test('sourceLabels: a caller with other labels skips the rule and takes the catch-all', async () => {
  const answers = await pings(batch, 'db:5432', 10);
  assert.deepEqual(tally(answers), { 'PONG db-v3.shop': 10 });
});

test('destinationSubnets: the VIP in the subnet takes the rule; the same service by name does not', async () => {
  assert.deepEqual(tally(await pings(client, '10.96.7.7:9000', 5)), { 'PONG vault-v2.shop': 5 });
  assert.deepEqual(tally(await pings(client, 'vault:9000', 5)), { 'PONG vault-v1.shop': 5 });
});

test('a destination whose cluster does not exist is closed with NC; a cluster without endpoints with UH', async () => {
  let from = records.length;
  assert.equal(await ping(client, 'ledger:7000'), '');
  const nc = await eventually(() => records.slice(from).find((r) => r.authority.startsWith('ledger.')), 5000, () => JSON.stringify(records.slice(from)));
  assert.deepEqual([nc.status, nc.responseFlags, nc.cluster, nc.route], [503, ['NC'], 'outbound|7000|ghost|ledger.shop.svc.cluster.local', 'ledger.tcp.0']);
  from = records.length;
  assert.equal(await ping(batch, 'ledger:7000'), '');
  const uh = await eventually(() => records.slice(from).find((r) => r.authority.startsWith('ledger.')), 5000, () => JSON.stringify(records.slice(from)));
  assert.deepEqual([uh.status, uh.responseFlags, uh.cluster, uh.route], [503, ['UH'], 'outbound|7000|v9|ledger.shop.svc.cluster.local', 'ledger.tcp.1']);
  // Both proxies keep serving.
  assert.match(await ping(client, 'db:5432'), /^PONG db-v[12]\.shop$/);
  assert.equal(await ping(batch, 'db:5432'), 'PONG db-v3.shop');
});

test('the snapshot carries the rules in order, with what the proxy decides', () => {
  const db = mesh.snapshot.outbound.tcp.filter((t) => t.host === 'db.shop.svc.cluster.local');
  assert.deepEqual(db.map((t) => [t.name, t.match ?? null]), [
    ['db.tcp.1', [{ sourceLabels: { team: 'pay' }, sourceNamespace: 'other' }]],
    ['db.tcp.2', [{ sourceLabels: { team: 'pay' } }]],
    ['db.tcp.3', null],
  ]);
  const ledger = mesh.snapshot.outbound.tcp.filter((t) => t.host === 'ledger.shop.svc.cluster.local');
  assert.equal(ledger.at(-1)!.name, undefined, 'no rule is a catch-all: the service\'s own route ends the list');
  const vault = mesh.snapshot.outbound.tcp.find((t) => t.host === 'vault.shop.svc.cluster.local')!;
  assert.deepEqual(vault.addresses, ['10.96.7.7']);
});
