/**
 * The `trellis up`, `status` and `logs` commands as processes: up (with the
 * fake control plane and proxies) prints progress and the table, status and
 * logs find the mesh through the pointer, SIGINT stops everything.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';
import { writeMeshState, type MeshState } from '../../src/cli/up/state.js';
import { killGroups, liveGroups, readJournal, tempDir, waitFor } from './helpers.js';
import { appDir } from './mesh-fixture.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const UP = join(ROOT, 'dist', 'test', 'up', 'fixtures', 'up-with-fake-trellis.js');
const pgids: number[] = [];
const servers: Server[] = [];
after(() => {
  killGroups(pgids);
  for (const s of servers) s.close();
});

function trellis(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Like trellis(), without blocking this process (whose servers must keep answering). */
function trellisAsync(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = start([CLI, ...args], env);
  return p.exit.then((code) => ({ code, out: p.out(), err: p.err() }));
}

/** Starts a process in its own group and collects its output. */
function start(argv: string[], env: Record<string, string>): { child: ChildProcess; out: () => string; err: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, argv, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  pgids.push(child.pid!);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b) => (out += b));
  child.stderr!.on('data', (b) => (err += b));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, exit };
}

test('trellis up with a configuration error prints file:line and starts nothing', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'app.yaml'), 'apiVersion: trellis.dev/v1alpha1\nkind: App\nmetadata: { name: x }\nspec:\n  services:\n  - name: web\n    ports: [{ port: 80 }]\n    replicas: -1\n    command: node web.js\n');
  const state = join(dir, 'state');
  const r = trellis({ XDG_STATE_HOME: tempDir() }, 'up', dir, '--state-dir', state);
  assert.equal(r.code, 1);
  assert.match(r.err, /app\.yaml:8:\d+: error TRL0106 App default\/x spec\.services\[0\]\.replicas: .*replicas must not be negative/);
  assert.match(r.err, /nothing was started/);
  assert.equal(existsSync(state), false, 'no state dir: nothing started');
});

test('trellis up without an App, or on a file, says what it needs', () => {
  const empty = tempDir();
  writeFileSync(join(empty, 'mesh.yaml'), 'apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata: { name: mesh }\nspec: {}\n');
  const r = trellis({ XDG_STATE_HOME: tempDir() }, 'up', empty);
  assert.equal(r.code, 1);
  assert.match(r.err, /no App manifest \(kind: App\) in .*: trellis up has nothing to run/);
  const f = trellis({}, 'up', join(empty, 'mesh.yaml'));
  assert.equal(f.code, 2);
  assert.match(f.err, /is not a directory/);
});

test('up → table; status and logs through the pointer; SIGINT stops everything and removes the state', async () => {
  const dir = appDir();
  const xdg = tempDir();
  const journal = join(tempDir(), 'journal');
  const stateDir = join(tempDir(), 'state');
  const env = { XDG_STATE_HOME: xdg, JOURNAL: journal };
  const up = start([UP, dir, '--state-dir', stateDir, '--stop-timeout', '2s'], env);
  await waitFor('the table', () => up.out().includes('Stop:     Ctrl-C'), 45_000).catch((e: Error) => { throw new Error(`${e.message}\nstdout:\n${up.out()}\nstderr:\n${up.err()}`); });
  const out = up.out();
  assert.match(out, /^Starting 4 instances and 1 gateway from /m);
  assert.match(out, /^✓ control plane/m);
  assert.match(out, /^SERVICE\s+INSTANCE\s+VERSION\s+ZONE\s+APP\s+INBOUND\s+OUTBOUND\s+ADMIN$/m);
  assert.match(out, /^web\s+web\.shop#0\s+-\s+r-a\s+\d+\s+\d+\s+\d+\s+\d+$/m);
  assert.match(out, /^api\s+api-v1\.shop\s+v1\s+-\s+\d+/m);
  assert.match(out, /^edge\.shop\s+shop\/edge\s+127\.0\.0\.1:\d+ \(port 80\)\s+\d+$/m);
  const url = /^Try:\s+curl (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(out)?.[1];
  assert.ok(url, 'the ingress URL to try');

  const status = trellis(env, 'status', '-o', 'json');
  assert.equal(status.code, 0, status.err);
  const doc = JSON.parse(status.out);
  assert.equal(doc.schema, 'trellis.dev/status/v1');
  assert.deepEqual(doc.proxies.map((p: { instance: string; kind: string; sync: string }) => [p.instance, p.kind, p.sync]), [
    ['edge.shop', 'gateway', 'SYNCED'], ['web.shop#0', 'sidecar', 'SYNCED'], ['web.shop#1', 'sidecar', 'SYNCED'], ['api-v1.shop', 'sidecar', 'SYNCED'], ['worker.shop', 'sidecar', 'SYNCED'],
  ]);
  assert.deepEqual(doc.summary, { total: 5, synced: 5, stale: 0, nacked: 0 });
  assert.equal(doc.mesh.stateDir, stateDir);
  const text = trellis(env, 'status');
  assert.match(text.out, /^INSTANCE\s+WORKLOAD\s+KIND\s+VERSION\s+SYNC\s+INBOUND\s+OUTBOUND\s+ADMIN$/m);
  assert.match(text.out, /^web\.shop#1\s+web\.shop\s+sidecar\s+v1\s+SYNCED\s+\d+\s+\d+\s+\d+$/m);
  assert.match(text.out, /5 proxies: 5 SYNCED, 0 STALE, 0 NACKED/);

  // The fake app logs nothing; the log files still carry trellis up's start lines.
  const logs = trellis(env, 'logs', 'web');
  assert.equal(logs.code, 0, logs.err);
  assert.match(logs.out, /^\[web\.shop#0\] --- trellis up: start #1 of web\.shop#0\.app/m);
  assert.match(logs.out, /^\[web\.shop#1\] --- trellis up: start #1 of web\.shop#1\.app/m);
  const one = trellis(env, 'logs', 'web.shop#1', '--proxy');
  assert.match(one.out, /^--- trellis up: start #1 of web\.shop#1\.proxy at \S+: .*fake-trellis\.mjs proxy --instance web\.shop#1/m);
  assert.doesNotMatch(one.out, /\[web/, 'one instance: no prefix');
  const unknown = trellis(env, 'logs', 'nope');
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /no service, workload or instance "nope".*known: control-plane, edge, edge\.shop, web, web\.shop#0/);

  // --follow prints what is appended, until SIGINT.
  const follow = start([CLI, 'logs', 'api', '--follow'], env);
  await waitFor('the existing lines', () => follow.out().includes('start #1 of api-v1.shop.app'), 10_000);
  appendFileSync(join(stateDir, 'logs', 'api-v1.shop.app.log'), 'a new line\n');
  await waitFor('the appended line', () => follow.out().includes('a new line'), 10_000);
  process.kill(follow.child.pid!, 'SIGINT');
  assert.equal(await follow.exit, 0);

  const groups = [...new Set(readJournal(journal).map((e) => e.pid))];
  assert.equal(groups.length, 10, 'control plane, gateway, 4 sidecars, 4 apps');
  process.kill(up.child.pid!, 'SIGINT');
  const code = await Promise.race([up.exit, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
  assert.equal(code, 0, `trellis up exit: ${String(code)}\n${up.err()}`);
  assert.match(up.out(), /stopped 10 processes\n$/);
  assert.deepEqual(liveGroups([up.child.pid!, ...groups]), [], 'no process of the mesh is left');
  assert.equal(existsSync(join(stateDir, 'mesh.json')), false);
  assert.equal(existsSync(join(xdg, 'trellis', 'current')), false);

  const after = trellis(env, 'status');
  assert.equal(after.code, 1);
  assert.match(after.err, /no mesh is running: .*trellis\/current does not exist/);
  const byDir = trellis(env, 'logs', 'api-v1', '--state-dir', stateDir, '-n', '1');
  assert.equal(byDir.code, 0, byDir.err);
  assert.match(byDir.out, /^--- trellis up: api-v1\.shop\.app exited \(signal SIGTERM\)|^--- trellis up: api-v1\.shop\.app exited \(code 0\)/m, 'logs stay readable after the mesh stopped');
});

test('status shows NACKED with the reason, a disconnected proxy as STALE, and proxies mesh.json does not list', async () => {
  const srv = createServer((req, res) => {
    if (req.url !== '/proxies') return res.writeHead(404).end();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify([
      { instance: 'a.ns', workload: 'a', namespace: 'ns', kind: 'sidecar', identity: 'x', connected: true, lastPushedVersion: 'v2', lastAckedVersion: 'v1', sync: 'NACKED', nackReason: 'bad route regex', listeners: { inbound: '127.0.0.1:1' } },
      { instance: 'vm.ns', workload: 'vm', namespace: 'ns', kind: 'sidecar', identity: 'y', connected: true, lastPushedVersion: 'v1', lastAckedVersion: 'v1', sync: 'SYNCED', listeners: { inbound: '127.0.0.1:7001', outbound: '127.0.0.1:7002', admin: '127.0.0.1:7003' } },
    ]));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const admin = (srv.address() as { port: number }).port;
  const stateDir = tempDir();
  mkdirSync(join(stateDir, 'logs'));
  const state: MeshState = {
    pid: process.pid, startedAt: new Date().toISOString(), status: 'running', configDir: '/app', stateDir,
    controlPlane: { grpc: 1, admin }, ingress: [],
    instances: ['a.ns', 'b.ns'].map((instance, i) => ({ instance, service: instance[0]!, workload: instance[0]!, namespace: 'ns', version: '', region: '', zone: '', appPort: 10 + i, inboundPort: 20 + i, outboundPort: 30 + i, adminPort: 40 + i, pids: {} })),
  };
  writeMeshState(state);
  const r = await trellisAsync({ TRELLIS_STATE_DIR: stateDir }, 'status');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^a\.ns\s+a\.ns\s+sidecar\s+v1\s+NACKED\s+20\s+30\s+40$/m);
  assert.match(r.out, /^b\.ns\s+b\.ns\s+sidecar\s+-\s+STALE \(disconnected\)\s+21\s+31\s+41$/m);
  assert.match(r.out, /^vm\.ns\s+vm\.ns\s+sidecar\s+v1\s+SYNCED\s+7001\s+7002\s+7003$/m);
  assert.match(r.out, /^a\.ns: NACKED: bad route regex$/m);
  assert.match(r.out, /3 proxies: 1 SYNCED, 1 STALE, 1 NACKED/);
  const j = JSON.parse((await trellisAsync({ TRELLIS_STATE_DIR: stateDir }, 'status', '-o', 'json')).out);
  assert.deepEqual(j.proxies[0], { instance: 'a.ns', workload: 'a', namespace: 'ns', kind: 'sidecar', service: 'a', connected: true, sync: 'NACKED', nackReason: 'bad route regex', version: 'v1', lastPushedVersion: 'v2', ports: { inbound: 20, outbound: 30, admin: 40, app: 10, listen: null } });

  await new Promise((r) => srv.close(r));
  const down = trellis({ TRELLIS_STATE_DIR: stateDir }, 'status');
  assert.equal(down.code, 1);
  assert.match(down.err, /the control plane of the mesh in .* does not answer on http:\/\/127\.0\.0\.1:\d+\/proxies/);
  writeMeshState({ ...state, pid: 2 ** 22 + 17 });
  const gone = trellis({ TRELLIS_STATE_DIR: stateDir }, 'status');
  assert.equal(gone.code, 1);
  assert.match(gone.err, /no mesh is running: .*mesh\.json was left by trellis up \(pid \d+\), which is gone/);
});
