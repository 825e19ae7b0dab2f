/**
 * The control plane's metrics (issue 7): convergence from a configuration
 * change to the last ACK, counted only when every proxy the change went to
 * ACKed it; sync states of connected proxies; the registry's size; process
 * metrics; OpenMetrics when asked. Values after known events, read from a
 * real control plane's /metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { apiSplit, ConfigDir, SHOP, sleep, startControlPlane, StreamClient, waitFor, type TestControlPlane } from './helpers.js';

let dir: ConfigDir;
let t: TestControlPlane;
const clients: StreamClient[] = [];

before(async () => {
  dir = new ConfigDir({ 'app.yaml': SHOP });
  t = await startControlPlane(dir.path, { debounceMs: 20 });
});
after(async () => {
  for (const c of clients) c.close();
  await t.cp.close();
  dir.remove();
});

/** ACKs every snapshot the clients get until no more come (registrations cause pushes too) and all are SYNCED. */
async function settle(...cs: StreamClient[]): Promise<void> {
  await Promise.all(cs.map((c) => c.snapshot()));
  for (let quiet = 0; quiet < 3;) {
    let acked = false;
    for (const c of cs) {
      const last = c.snapshots().at(-1);
      if (last && !acks.has(last)) { acks.add(last); c.ack(last); acked = true; }
    }
    quiet = acked ? 0 : quiet + 1;
    await sleep(60);
  }
  await waitFor('all SYNCED', async () => (await sample('trellis_controlplane_proxies{sync="SYNCED"}')) === cs.length || undefined);
}
const acks = new WeakSet<object>();

/** The value of one sample line (`name{labels} value`), or undefined. */
async function sample(name: string): Promise<number | undefined> {
  const text = (await t.get('/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

test('a change counts in convergence_seconds once every proxy it was pushed to ACKed it, and not before', async () => {
  const web = StreamClient.hello(t.grpc, 'web.shop', '127.0.0.1:44001');
  const api = StreamClient.hello(t.grpc, 'api-v1.shop#0', '127.0.0.1:44002');
  clients.push(web, api);
  await settle(web, api);
  const before = (await sample('trellis_controlplane_convergence_seconds_count')) ?? 0;

  // The split changes the snapshot of every caller of api, web's and api's own (a service sees itself). ACK one at a time.
  dir.write('routing.yaml', apiSplit(90, 10));
  const seenApi = api.snapshots().length;
  const w2 = await web.snapshot(web.snapshots().length);
  await sleep(100); // the round's other pushes went out with web's
  const a2 = api.snapshots()[seenApi];
  assert.ok(a2, 'api calls api too: its snapshot changed in the same round');
  web.ack(w2);
  await waitFor('web SYNCED', async () => (await sample('trellis_controlplane_proxies{sync="SYNCED"}')) === 1 || undefined);
  assert.equal(await sample('trellis_controlplane_convergence_seconds_count'), before, 'one proxy of two has ACKed: not converged yet');
  api.ack(a2);
  await waitFor('converged', async () => ((await sample('trellis_controlplane_convergence_seconds_count')) ?? 0) > before || undefined);
  assert.equal(await sample('trellis_controlplane_convergence_seconds_count'), before + 1);
  assert.equal(await sample('trellis_controlplane_proxies{sync="SYNCED"}'), 2);
});

test('a change a proxy NACKs never counts as converged', async () => {
  const web = clients[0]!;
  const api = clients[1]!;
  const before = (await sample('trellis_controlplane_convergence_seconds_count')) ?? 0;
  const nacksBefore = (await sample('trellis_controlplane_nacks_total')) ?? 0;
  const seenWeb = web.snapshots().length;
  const seenApi = api.snapshots().length;
  dir.write('routing.yaml', apiSplit(50, 50));
  const w = await web.snapshot(seenWeb);
  web.send({ type: 'nack', version: w.version, nonce: w.nonce, reason: 'test: cannot apply' });
  await sleep(100); // api's push of the round, if any
  const a = api.snapshots()[seenApi];
  if (a) api.ack(a);
  await waitFor('NACK counted', async () => ((await sample('trellis_controlplane_nacks_total')) ?? 0) > nacksBefore || undefined);
  assert.equal(await sample('trellis_controlplane_proxies{sync="NACKED"}'), 1);
  assert.equal(await sample('trellis_controlplane_convergence_seconds_count'), before, 'a NACKed change did not converge');
});

test('the registry size and the process metrics are on /metrics; OpenMetrics when the scraper asks for it', async () => {
  assert.equal(await sample('trellis_controlplane_registry_services'), 5);
  assert.ok(((await sample('trellis_controlplane_registry_workloads')) ?? 0) >= 5);
  assert.ok(((await sample('trellis_controlplane_registry_endpoints')) ?? 0) >= 5);
  assert.equal(await sample('trellis_controlplane_connected_proxies'), 2);
  const text = (await t.get('/metrics')).text;
  assert.match(text, /^process_resident_memory_bytes \d+/m);
  assert.match(text, /^# TYPE trellis_controlplane_convergence_seconds histogram$/m);
  const om = await fetch(`http://${t.admin}/metrics`, { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;q=0.5' } });
  assert.match(om.headers.get('content-type') ?? '', /application\/openmetrics-text/);
  const body = await om.text();
  assert.match(body, /^# TYPE trellis_controlplane_pushes counter$/m);
  assert.match(body, /# EOF\n$/);
});
