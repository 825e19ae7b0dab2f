/**
 * Each load-balancing policy through real data planes, over the three api
 * instances: ROUND_ROBIN cycles, LEAST_REQUEST keeps away from a busy
 * instance, CONSISTENT_HASH (ring and Maglev) keeps a key (header, cookie,
 * query) on one, and makes the cookie when asked; slow start gives an
 * instance that just joined a small share first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { echo, eventually, RunningMesh, tally, withEndpoints, type App } from '../helpers/proxy.js';

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

test('load balancing: CONSISTENT_HASH with MAGLEV keeps each user on one instance too', async () => {
  mesh.reconfigure(withApiPolicy('{ consistentHash: { httpHeaderName: x-user, maglev: { tableSize: 65537 } } }'));
  assert.deepEqual(mesh.snapshot.clusters.find((c) => c.lb.policy === 'CONSISTENT_HASH')!.lb.hash, { algorithm: 'MAGLEV', tableSize: 65537 });
  const homes = new Set<string>();
  for (let u = 0; u < 20; u++) {
    const seen = new Set(await served(4, { headers: { 'x-user': `user-${u}` } }));
    assert.equal(seen.size, 1, `user-${u} went to ${[...seen]}`);
    homes.add([...seen][0]!);
  }
  assert.ok(homes.size >= 2, `users are spread: ${[...homes]}`);
});

const setCookies = (h: Record<string, string | string[] | undefined>): string[] => {
  const v = h['set-cookie'];
  return v === undefined ? [] : typeof v === 'string' ? [v] : v;
};

test('load balancing: httpCookie with a ttl: the proxy sets the cookie when the client has none, and the client stays on one instance with it', async () => {
  mesh.reconfigure(withApiPolicy('{ consistentHash: { httpCookie: { name: route, ttl: 3600s, path: / } } }'));
  for (let client = 0; client < 4; client++) {
    const first = await mesh.call('http://api/');
    const cookies = setCookies(first.headers).filter((c) => c.startsWith('route='));
    assert.equal(cookies.length, 1, `one Set-Cookie for route: ${JSON.stringify(first.headers['set-cookie'])}`);
    assert.match(cookies[0]!, /^route=[0-9a-f]{16}; Max-Age=3600; Path=\/; HttpOnly$/);
    const value = cookies[0]!.split(';')[0]!;
    const home = first.json().app;
    for (let i = 0; i < 5; i++) {
      const r = await mesh.call('http://api/', { headers: { cookie: `theme=dark; ${value}` } });
      assert.equal(r.json().app, home, `with ${value}, the instance that served the first request`);
      assert.deepEqual(setCookies(r.headers), [], 'a client that has the cookie gets no new one');
    }
  }
});

test('load balancing: no Set-Cookie without a ttl, nor for other policies (negative)', async () => {
  mesh.reconfigure(withApiPolicy('{ consistentHash: { httpCookie: { name: route } } }'));
  for (let i = 0; i < 5; i++) assert.deepEqual(setCookies((await mesh.call('http://api/')).headers), []);
  mesh.reconfigure(withApiPolicy('{ simple: ROUND_ROBIN }'));
  for (let i = 0; i < 5; i++) assert.deepEqual(setCookies((await mesh.call('http://api/')).headers), []);
});

/**
 * Applies `yaml` with api-v2 down, waits until api-v1's two instances are
 * past any warmup, then brings api-v2 back (a new host to the cluster)
 * and counts who serves, sequentially, for `windowMs` (at most 200 calls).
 */
async function joinAndCount(yaml: string, settleMs: number, windowMs: number): Promise<{ counts: Record<string, number>; total: number; joinedAt: number; s: ReturnType<typeof mesh.compile> }> {
  const s = mesh.compile(yaml);
  const without = withEndpoints(s, { 'api-v2.shop': { health: 'UNHEALTHY' } });
  const r = mesh.caller.apply(without);
  assert.ok(r.ok, r.ok ? '' : r.reason);
  await new Promise((res) => setTimeout(res, settleMs));
  const back = mesh.caller.apply(s);
  assert.ok(back.ok);
  mesh.snapshot = s;
  const joinedAt = Date.now();
  const out: string[] = [];
  while (Date.now() - joinedAt < windowMs && out.length < 200) out.push((await mesh.call('http://api/')).json().app);
  return { counts: tally(out), total: out.length, joinedAt, s };
}

test('load balancing: slow start: an instance that just joined gets a small share first, its full share after the warmup', async () => {
  const WARMUP_MS = 4000;
  const { counts, total, joinedAt, s } = await joinAndCount(withApiPolicy(`{ simple: ROUND_ROBIN, warmup: { duration: ${WARMUP_MS}ms, minimumPercent: 5 } }`), WARMUP_MS + 200, 1000);
  assert.ok(total >= 20, `enough calls in the first second to tell (${total})`);
  const v2 = (counts['api-v2.shop'] ?? 0) / total;
  assert.ok(v2 < 0.2, `warming: well under its third (${v2.toFixed(2)} of ${total}: ${JSON.stringify(counts)})`);
  // Another snapshot (same endpoints) while it warms: it stays new.
  assert.ok(mesh.caller.apply(withEndpoints(s, {})).ok);
  const again = tally(await served(20));
  // Its factor by now (however slow the machine was), and what that allows it of 20 calls, with room to spare.
  const f = Math.min(1, Math.max(0.05, (Date.now() - joinedAt) / WARMUP_MS));
  const allowed = Math.floor((20 * f) / (2 + f)) + 3;
  assert.ok(f === 1 || (again['api-v2.shop'] ?? 0) <= allowed, `still warming after a snapshot swap (at most ${allowed}): ${JSON.stringify(again)}`);
  // The window counts from when it joined, not from the last snapshot: had the swap made it (or the others) new
  // again, they would still be warming now, and the turns below would not be even.
  await new Promise((res) => setTimeout(res, Math.max(0, joinedAt + WARMUP_MS + 100 - Date.now())));
  const later = tally(await served(30));
  assert.deepEqual(later, Object.fromEntries(INSTANCES.map((i) => [i, 10])), 'warm: round robin in turn again');
});

test('load balancing: without warmup an instance that joins gets its full share at once (negative)', async () => {
  const { counts, total } = await joinAndCount(withApiPolicy('{ simple: ROUND_ROBIN }'), 50, 600);
  assert.ok(total >= 9, `calls: ${total}`);
  const v2 = counts['api-v2.shop'] ?? 0;
  assert.ok(Math.abs(v2 - total / 3) <= 1, `a third at once (${v2} of ${total}: ${JSON.stringify(counts)})`);
});
