/**
 * The running mesh under change and failure, all real processes: a
 * `trellis control-plane`, four `trellis proxy` sidecars (web calls api;
 * api-v1 ×2 and api-v2 with node:http apps) and traffic from web's app (this
 * test) through two proxies per request. Every loop is bounded in count and
 * time; every process is killed by process group in after().
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from '../controlplane/helpers.js';
import { getJson } from './processes.js';
import { API_INSTANCES, MESH_APP, routing, RunningMesh, usableApiEndpoints } from './running-mesh.js';

const URL_API = 'http://api.shop:8080/hello';
const ALL = ['web.shop', ...API_INSTANCES];
let mesh: RunningMesh;

before(async () => {
  mesh = await RunningMesh.webAndApi({ 'app.yaml': MESH_APP, 'routing.yaml': routing(100, 0) });
});
after(async () => {
  await mesh?.close();
});

const failures = (rs: { status: number; body: string }[]) => rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 80)}`);
const weights = (s: Awaited<ReturnType<RunningMesh['configDump']>>) => {
  const vh = s?.outbound.http.flatMap((t) => t.virtualHosts).find((v) => v.name === 'api.shop.svc.cluster.local:8080');
  return ((vh?.routes[0]?.action as { clusters?: { weight: number }[] } | undefined)?.clusters ?? []).map((c) => c.weight).join('/');
};

test('routing follows weight changes while traffic flows, and no request fails during the changes', async () => {
  const applied: { weights: string; at: number }[] = [];
  let watching = true;
  const watcher = (async () => {
    for (let i = 0; watching && i < 2000; i++) {
      const w = weights(await mesh.configDump('web.shop'));
      if (applied.at(-1)?.weights !== w) applied.push({ weights: w, at: Date.now() });
      await sleep(20);
    }
  })();
  const results = await mesh.traffic(URL_API, {
    count: 2000, spreadMs: 8000, maxMs: 20_000,
    onProgress: (n) => {
      if (n === 500) mesh.config.write('routing.yaml', routing(0, 100));
      if (n === 1200) mesh.config.write('routing.yaml', routing(50, 50));
    },
  });
  await sleep(200);
  watching = false;
  await watcher;
  assert.equal(results.length, 2000, 'every request was sent within the time bound');
  assert.deepEqual(failures(results), []);
  assert.deepEqual(applied.map((a) => a.weights), ['100/0', '0/100', '50/50'], 'the web proxy applied each change');
  const [, toV2, split] = applied;
  // The watcher sees a change up to one poll late, and a request in flight when the snapshot changed finishes on the old one.
  const margin = 100;
  const before = results.filter((r) => r.at < toV2!.at - margin);
  const onV2 = results.filter((r) => r.at > toV2!.at + margin && r.at < split!.at - margin);
  const onSplit = results.filter((r) => r.at > split!.at + margin);
  assert.ok(before.length > 100 && onV2.length > 100 && onSplit.length > 100, `phases ${before.length}/${onV2.length}/${onSplit.length}`);
  assert.ok(before.every((r) => r.body.startsWith('api-v1.shop#')), 'all on v1 before the first change');
  assert.deepEqual(onV2.filter((r) => r.body !== 'api-v2.shop').map((r) => [r.body, r.at - toV2!.at, split!.at - r.at]), [], 'all on v2 after it');
  const v2share = onSplit.filter((r) => r.body === 'api-v2.shop').length / onSplit.length;
  assert.ok(v2share > 0.3 && v2share < 0.7, `50/50 split gave ${Math.round(v2share * 100)} % to v2`);
  assert.ok(new Set(onSplit.filter((r) => r.body !== 'api-v2.shop').map((r) => r.body)).size === 2, 'both v1 replicas serve');
});

test('the control plane killed (SIGKILL) and restarted under traffic: no request fails, proxies resync, no endpoint-less push', async () => {
  const seen: string[][] = [];
  let watching = true;
  const watcher = (async () => {
    for (let i = 0; watching && i < 2000; i++) {
      seen.push(usableApiEndpoints(await mesh.configDump('web.shop')));
      await sleep(25);
    }
  })();
  const old = mesh.cp;
  let restarted: Promise<unknown> | undefined;
  const results = await mesh.traffic(URL_API, {
    count: 1500, spreadMs: 9000, maxMs: 20_000,
    onProgress: (n) => {
      if (n === 300) old.signal('SIGKILL');
      if (n === 600) restarted = mesh.startControlPlane();
    },
  });
  await restarted;
  await mesh.synced(ALL, 15_000);
  watching = false;
  await watcher;
  assert.equal((await old.exited).signal, 'SIGKILL');
  assert.equal(results.length, 1500);
  assert.deepEqual(failures(results), []);
  assert.ok(seen.length > 50, `${seen.length} config dumps`);
  const bad = seen.filter((eps) => eps.length !== 3);
  assert.deepEqual(bad, [], 'web\'s api cluster always had its three endpoints');
  assert.match(mesh.cp.out, /registration grace ended \(registered\)/, 'the new control plane waited for the instances to come back');
  const log = mesh.cp.out.split('\n');
  const lastJoin = Math.max(...ALL.map((i) => log.findIndex((l) => l.includes(`proxy connected instance=${i} `))));
  const firstPush = log.findIndex((l) => / push instance=/.test(l));
  assert.ok(lastJoin >= 0 && firstPush > lastJoin, `the first push (line ${firstPush}) came after the last registration (line ${lastJoin}):\n${log.slice(0, 20).join('\n')}`);
  assert.match(mesh.cp.out, /proxy connected instance=web\.shop inbound=\S+ serving=\S+/, 'web said which snapshot it serves');
  for (const i of ALL) assert.match(mesh.sidecars.get(i)!.proc.out, /disconnected from control plane/);
});

test('the control plane frozen (SIGSTOP): proxies keep serving, notice within seconds, and resync after SIGCONT', async () => {
  const marks = new Map(ALL.map((i) => [i, mesh.sidecars.get(i)!.proc.out.length]));
  const web = mesh.sidecars.get('web.shop')!;
  let frozenAt = 0;
  let noticed: Promise<number> | undefined;
  const results = await mesh.traffic(URL_API, {
    count: 800, spreadMs: 8000, maxMs: 20_000,
    onProgress: (n) => {
      if (n === 100) {
        mesh.cp.signal('SIGSTOP');
        frozenAt = Date.now();
        noticed = web.proc.line(/disconnected from control plane/, 8000, marks.get('web.shop')).then(() => Date.now());
      }
    },
  });
  const took = (await noticed!) - frozenAt;
  assert.ok(took < 7000, `the agent noticed the frozen control plane after ${took} ms`);
  const connected = Number(/^trellis_proxy_control_plane_connected (\d)$/m.exec((await getJson<string>(web.admin, '/metrics')).body)?.[1]);
  assert.equal(connected, 0, 'the proxy reports it is not connected');
  assert.equal(results.length, 800);
  assert.deepEqual(failures(results), [], 'the proxies kept serving');

  mesh.cp.signal('SIGCONT');
  await mesh.synced(ALL, 15_000);
  for (const i of ALL) await mesh.sidecars.get(i)!.proc.line(/connected to control plane/, 5000, marks.get(i));
  assert.deepEqual(failures([await mesh.call(URL_API)]), []);
});

test('a proxy that claims labels or an identity its configuration does not give it is refused and does not serve', async () => {
  const groupie = await mesh.startSidecar('debit-credit.shop', undefined, ['--claim-label', 'group=fundsTransfer']);
  const exit = await Promise.race([groupie.proc.exited, sleep(8000).then(() => undefined)]);
  assert.deepEqual(exit, { code: 3, signal: null }, groupie.proc.tail());
  assert.match(groupie.proc.out, /registration refused TRL1202: instance "debit-credit\.shop" claims label group "fundsTransfer"/);
  assert.match(groupie.proc.out, /not serving/);
  const ep = (await getJson<{ instance: string; address: string | null }[]>(mesh.admin, '/endpoints')).body.find((e) => e.instance === 'debit-credit.shop');
  assert.equal(ep?.address, null);

  const impostor = await mesh.startSidecar('debit-credit.shop', undefined, ['--claim-identity', 'spiffe://cluster.local/ns/shop/sa/api']);
  assert.equal((await impostor.proc.exited).code, 3);
  assert.match(impostor.proc.out, /TRL1202: instance "debit-credit\.shop" claims identity/);
  assert.match(mesh.cp.out, /registration refused instance=debit-credit\.shop .*TRL1202/);
});
