/**
 * Each load-balancing policy through real data planes, over the three api
 * instances: ROUND_ROBIN cycles, LEAST_REQUEST keeps away from a busy
 * instance, CONSISTENT_HASH keeps a key (header, cookie, query) on one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { echo, eventually, RunningMesh, tally, type App } from '../helpers/proxy.js';

const withApiPolicy = (lb: string) => TWO_SERVICES.replace('spec:\n  host: api\n  subsets:', `spec:\n  host: api\n  trafficPolicy: { loadBalancer: ${lb} }\n  subsets:`);
const INSTANCES = ['api-v1.shop#0', 'api-v1.shop#1', 'api-v2.shop'];

let release: () => void = () => undefined;
let held: Promise<void> = Promise.resolve();
const holding = (req: IncomingMessage, res: ServerResponse, app: App) => {
  if (req.url === '/hold') { void held.then(() => { res.writeHead(200); res.end(app.name); }); return; }
  echo(req, res, app);
};

let mesh: RunningMesh;
before(async () => {
  mesh = await RunningMesh.start({
    yaml: withApiPolicy('{ simple: ROUND_ROBIN }'), caller: { workload: 'web-v1', namespace: 'shop' }, instances: INSTANCES,
    handlers: Object.fromEntries(INSTANCES.map((i) => [i, holding])),
  });
});
after(async () => {
  release();
  await mesh?.close();
});

const served = async (n: number, init?: { headers?: Record<string, string> }, path = '/') => {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await mesh.call(`http://api${path}`, init)).json().app);
  return out;
};

test('load balancing: ROUND_ROBIN takes the instances in turn', async () => {
  mesh.reconfigure(withApiPolicy('{ simple: ROUND_ROBIN }'));
  const seq = await served(30);
  assert.deepEqual(tally(seq), Object.fromEntries(INSTANCES.map((i) => [i, 10])));
  for (let i = 3; i < seq.length; i++) assert.equal(seq[i], seq[i - 3], `a fixed cycle: ${seq.join(' ')}`);
});

test('load balancing: LEAST_REQUEST (the default) keeps away from the instance with a request in flight', async () => {
  mesh.reconfigure(TWO_SERVICES);
  assert.equal(mesh.snapshot.clusters[0]!.lb.policy, 'LEAST_REQUEST');
  held = new Promise((r) => { release = r; });
  const hitsBefore = new Map([...mesh.callees.values()].map((c) => [c, c.app.hits]));
  const pending = mesh.call('http://api/hold');
  const busy = await eventually(() => [...mesh.callees.values()].find((c) => c.app.hits > hitsBefore.get(c)!), 2000, () => 'nobody got /hold');
  const before = busy.app.hits;
  const seq = await served(30);
  assert.equal(busy.app.hits, before, `the busy instance ${busy.instance} got none: ${JSON.stringify(tally(seq))}`);
  assert.equal(new Set(seq).size, 2, 'both idle instances served');
  release();
  assert.equal((await pending).text, busy.instance);
});

test('load balancing: CONSISTENT_HASH on a header keeps each user on one instance', async () => {
  mesh.reconfigure(withApiPolicy('{ consistentHash: { httpHeaderName: x-user } }'));
  const homes = new Set<string>();
  for (let u = 0; u < 20; u++) {
    const seen = new Set(await served(5, { headers: { 'x-user': `user-${u}` } }));
    assert.equal(seen.size, 1, `user-${u} went to ${[...seen]}`);
    homes.add([...seen][0]!);
  }
  assert.ok(homes.size >= 2, `users are spread: ${[...homes]}`);
});

test('load balancing: CONSISTENT_HASH on a cookie or a query parameter', async () => {
  mesh.reconfigure(withApiPolicy('{ consistentHash: { httpCookie: { name: session, ttl: 0s } } }'));
  for (let u = 0; u < 5; u++) {
    const seen = new Set(await served(4, { headers: { cookie: `theme=dark; session=s${u}` } }));
    assert.equal(seen.size, 1, `session s${u}`);
  }
  mesh.reconfigure(withApiPolicy('{ consistentHash: { httpQueryParameterName: cart } }'));
  for (let u = 0; u < 5; u++) assert.equal(new Set(await served(4, {}, `/?cart=c${u}&x=1`)).size, 1, `cart c${u}`);
});
