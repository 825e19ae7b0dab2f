/**
 * Lifecycle, zero loss (issue 4), all real processes: a `trellis
 * control-plane`, `trellis proxy` sidecars for web (the caller: this test,
 * through web's outbound listener) and for api-v1 ×2 and api-v2 (node:http
 * apps that take 20 ms per request, so requests are in flight whenever an
 * instance stops). Each api instance in turn is stopped the way `trellis up`
 * stops one — SIGTERM to its sidecar, which leaves rotation, waits for
 * `drained`, drains and exits; then its app stops — and started again,
 * under a steady stream of requests: no request may fail. SIGKILL under load
 * may fail only the requests in flight on the killed instance.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../controlplane/helpers.js';
import { API_INSTANCES, MESH_APP, RunningMesh, usableApiEndpoints } from './running-mesh.js';

const URL_API = 'http://api.shop:8080/hello';
const ALL = ['web.shop', ...API_INSTANCES];
const APP_DELAY_MS = 20;
let mesh: RunningMesh;

before(async () => {
  mesh = new RunningMesh({ 'app.yaml': MESH_APP });
  await mesh.startControlPlane(['--registration-grace', '0s']);
  await Promise.all([
    mesh.startSidecar('web.shop'),
    ...API_INSTANCES.map(async (i) => mesh.startSidecar(i, await mesh.startApp(i, APP_DELAY_MS))),
  ]);
  await mesh.synced(ALL);
  await waitFor('web sees the three api instances', async () => usableApiEndpoints(await mesh.configDump('web.shop')).length === 3 || undefined, 5000);
});
after(async () => {
  await mesh?.close();
});

const failures = (rs: { status: number; body: string }[]) => rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 100)}`);

/** Waits until `instance` is back: its proxy SYNCED and web's snapshot has it in rotation. */
async function inRotation(instance: string): Promise<void> {
  await mesh.synced(ALL, 15_000);
  await waitFor(`${instance} in web's snapshot`, async () => usableApiEndpoints(await mesh.configDump('web.shop')).includes(instance) || undefined, 10_000, 50);
}

/** Starts a fresh app and sidecar for `instance`. */
async function startInstance(instance: string): Promise<void> {
  await mesh.startSidecar(instance, await mesh.startApp(instance, APP_DELAY_MS));
}

test('rolling restart of every api instance under steady load: zero failed requests', { timeout: 60_000 }, async () => {
  const log: string[] = [];
  let rolling: Promise<void> | undefined;
  const roll = async () => {
    for (const i of API_INSTANCES) {
      const old = mesh.sidecars.get(i)!;
      const began = Date.now();
      await old.proc.stop(15_000); // SIGTERM: leave, wait for drained, drain, exit
      const exit = old.proc.exit!;
      await mesh.stopApp(i); // the sidecar's exit is the signal to stop the app
      log.push(`${i}: sidecar exited ${JSON.stringify(exit)} after ${Date.now() - began} ms`);
      assert.deepEqual(exit, { code: 0, signal: null }, old.proc.tail());
      assert.match(old.proc.out, /drained: every caller ACKed a snapshot without this instance/, old.proc.tail());
      await startInstance(i);
      await inRotation(i);
      log.push(`${i}: back in rotation after ${Date.now() - began} ms`);
    }
  };
  const began = Date.now();
  const results = await mesh.traffic(URL_API, {
    count: 1500, workers: 6, spreadMs: 12_000, maxMs: 20_000,
    onProgress: (n) => {
      if (n === 150) rolling = roll();
    },
  });
  await rolling;
  const failed = failures(results);
  console.log(`# rolling restart: ${failed.length} failed of ${results.length} requests in ${Date.now() - began} ms; ${log.join('; ')}`);
  assert.equal(results.length, 1500, 'every request was sent within the time bound');
  assert.deepEqual(failed, []);
  assert.equal(log.filter((l) => l.includes('back in rotation')).length, 3, 'every instance was restarted during the traffic');
  const served = new Set(results.map((r) => r.body));
  for (const i of API_INSTANCES) assert.ok(served.has(i), `${i} served`);
  assert.match(mesh.cp.out, /leaving instance=api-v1\.shop#0/);
  assert.match(mesh.cp.out, /drained instance=api-v1\.shop#0: every connected proxy ACKed/);
});

test('SIGKILL of an instance under load: only the requests in flight on it may fail', { timeout: 60_000 }, async () => {
  const victim = 'api-v1.shop#1';
  const workers = 6;
  let killed: Promise<void> | undefined;
  const results = await mesh.traffic(URL_API, {
    count: 1000, workers, spreadMs: 6000, maxMs: 20_000,
    onProgress: (n) => {
      if (n === 200) {
        killed = (async () => {
          const s = mesh.sidecars.get(victim)!;
          s.proc.signal('SIGKILL');
          await mesh.stopApp(victim);
          await s.proc.exited;
        })();
      }
    },
  });
  await killed;
  const failed = failures(results);
  console.log(`# SIGKILL under load (concurrency ${workers}): ${failed.length} failed of ${results.length}${failed.length ? `: ${failed.slice(0, 6).join(' | ')}` : ''}`);
  assert.equal(results.length, 1000);
  assert.ok(failed.length <= workers, `${failed.length} failures > concurrency ${workers}: ${failed.join(' | ')}`);
  // The control plane saw the stream close: the instance is out of rotation; bring it back for what follows.
  await waitFor(`${victim} out of web's snapshot`, async () => !usableApiEndpoints(await mesh.configDump('web.shop')).includes(victim) || undefined, 10_000, 50);
  await startInstance(victim);
  await inRotation(victim);
});

test('an instance whose app is down at start never enters rotation; it does once the app answers', { timeout: 30_000 }, async () => {
  const i = 'api-v2.shop';
  const old = mesh.sidecars.get(i)!;
  await old.proc.stop(15_000);
  await mesh.stopApp(i);
  await waitFor(`${i} out of web's snapshot`, async () => !usableApiEndpoints(await mesh.configDump('web.shop')).includes(i) || undefined, 10_000, 50);
  // A port nothing listens on yet: the sidecar's first health check fails, and its hello says so.
  const port = await (await import('./running-mesh.js')).freePort();
  const s = await mesh.startSidecar(i, port);
  await mesh.synced(ALL, 15_000);
  await s.proc.line(/app unhealthy/, 5000);
  for (let k = 0; k < 10; k++) {
    assert.ok(!usableApiEndpoints(await mesh.configDump('web.shop')).includes(i), 'not in rotation while its app is down');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.doesNotMatch(mesh.cp.out.slice(mesh.cp.out.lastIndexOf(`proxy connected instance=${i} `)), new RegExp(`health instance=${i.replace('.', '\\.')} unhealthy`), 'no flap: it never counted healthy');
  // The app comes up on that port: the next health check brings it into rotation.
  const { createServer } = await import('node:http');
  const app = createServer((req, res) => (req.url === '/healthz' ? res.end('ok') : res.end(i)));
  await new Promise<void>((r) => app.listen(port, '127.0.0.1', r));
  mesh.apps.set(i, app);
  await inRotation(i);
});
