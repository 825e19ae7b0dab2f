/**
 * RunningMesh with real child processes: the fake control plane and proxies
 * of fixtures/fake-trellis.mjs, real app processes. Start order, readiness,
 * the app's environment, mesh.json, restarts, stop order, failed and
 * interrupted start-ups — and no process left behind.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createProgress } from '../../src/cli/up/progress.js';
import { RunningMesh, StartupError, type RunOptions } from '../../src/cli/up/run-mesh.js';
import { pointerFile, readMeshState, writeMeshState } from '../../src/cli/up/state.js';
import type { MeshPlan } from '../../src/cli/up/plan.js';
import { FAKE_TRELLIS, killGroups, liveGroups, PROC, readJournal, tempDir, waitFor } from './helpers.js';
import { appDir, capture, planFor } from './mesh-fixture.js';

const pgids: number[] = [];
const meshes: RunningMesh[] = [];
after(async () => {
  await Promise.allSettled(meshes.map((m) => m.stop()));
  killGroups(pgids);
});

function options(configDir: string, extra: Partial<RunOptions> & { envExtra?: Record<string, string> } = {}) {
  const stateDir = join(tempDir(), 'state');
  const xdg = tempDir();
  const journal = join(tempDir(), 'journal');
  const out = capture();
  const lines: string[] = [];
  const { envExtra, ...rest } = extra;
  const o: RunOptions = {
    configDir, stateDir, trellis: [process.execPath, FAKE_TRELLIS],
    env: { ...process.env, XDG_STATE_HOME: xdg, JOURNAL: journal, ...envExtra },
    startupTimeoutMs: 30_000, stopGraceMs: 1000, restart: { initialDelayMs: 100, maxDelayMs: 1000, resetAfterMs: 10_000 },
    progress: createProgress(out, false), log: (l) => lines.push(l), ...rest,
  };
  return { o, stateDir, journal, out, lines, pointer: pointerFile({ XDG_STATE_HOME: xdg }) };
}

async function started(plan: MeshPlan, o: RunOptions): Promise<RunningMesh> {
  const m = await RunningMesh.start(plan, o);
  meshes.push(m);
  pgids.push(...m.supervisor.processes.map((p) => p.pid!).filter(Boolean));
  return m;
}

test('up starts the control plane, the gateway, then each sidecar before its app, and stops in reverse', async () => {
  const dir = appDir();
  const { plan } = await planFor(dir);
  const { o, stateDir, journal, out, pointer } = options(dir);
  const mesh = await started(plan, o);

  const j = readJournal(journal);
  const at = (event: string, instance?: string) => j.find((e) => e.event === event && (instance === undefined || e.instance === instance));
  const cp = at('cp-start')!;
  assert.deepEqual(cp.flags, { config: dir, 'grpc-port': String(plan.controlPlane.grpcPort), 'admin-port': String(plan.controlPlane.adminPort), 'state-dir': stateDir });
  const gw = at('proxy-start', 'edge.shop')!;
  assert.ok(gw.t > cp.t && (gw.flags as { gateway: string }).gateway === 'true');
  assert.deepEqual((gw.flags as { listen: string[] }).listen, [`80=${plan.gateways[0]!.listen[80]}`]);
  assert.equal(plan.instances.length, 4);
  for (const i of plan.instances) {
    const ready = at('proxy-ready', i.instance);
    const app = at('app-start', i.instance);
    assert.ok(ready && app, `${i.instance}: proxy ready and app started`);
    assert.ok(app.t >= ready.t, `${i.instance}: the app starts after its sidecar is ready`);
    assert.ok(ready.t >= at('proxy-ready', 'edge.shop')!.t, 'instances start after the ingress is ready');
    assert.equal(app.cwd, dir, 'apps run in the app directory');
  }
  const web0 = at('app-start', 'web.shop#0')!.env as Record<string, string>;
  const w0 = plan.instances.find((i) => i.instance === 'web.shop#0')!;
  assert.deepEqual(web0, {
    HTTP_PROXY: `http://127.0.0.1:${w0.outboundPort}`, TRELLIS_OUTBOUND: `http://127.0.0.1:${w0.outboundPort}`, PORT: String(w0.appPort),
    SERVICE: 'web', WORKLOAD: 'web', NAMESPACE: 'shop', INSTANCE: 'web.shop#0', VERSION: '', GREETING: 'hello',
  });
  assert.equal((at('app-start', 'api-v1.shop')!.env as Record<string, string>).VERSION, 'v1');

  assert.match(out.text(), /✓ control plane  admin :\d+  ready in \d+\.\ds/);
  assert.match(out.text(), /✓ ingress edge\.shop  :\d+ \(port 80\)/);
  assert.match(out.text(), /✓ web\.shop#1  web  ready in/);
  assert.match(out.text(), /✓ mesh in sync  5 proxies SYNCED, 4 instances in rotation/);

  const state = readMeshState(stateDir)!;
  assert.equal(state.status, 'running');
  assert.equal(state.pid, process.pid);
  assert.equal(readFileSync(pointer, 'utf8').trim(), stateDir);
  assert.deepEqual(state.instances.map((i) => [i.instance, i.service, i.zone, typeof i.pids.proxy, typeof i.pids.app]), [
    ['web.shop#0', 'web', 'r-a', 'number', 'number'], ['web.shop#1', 'web', 'r-b', 'number', 'number'],
    ['api-v1.shop', 'api', '', 'number', 'number'], ['worker.shop', 'worker', '', 'number', 'number'],
  ]);
  assert.deepEqual(state.ingress.map((g) => [g.gateway, g.ports, g.gateways]), [['edge.shop', { 80: plan.gateways[0]!.listen[80] }, ['shop/edge']]]);
  assert.equal(typeof state.controlPlane.pid, 'number');

  const groups = mesh.supervisor.processes.map((p) => p.pid!);
  assert.equal(groups.length, 1 + 1 + 4 * 2);
  const results = await mesh.stop();
  assert.ok(results.every((r) => r.by === 'SIGTERM'), JSON.stringify(results));
  assert.deepEqual(liveGroups(groups), [], 'no process of the mesh is left');
  const k = readJournal(journal);
  const last = (ev: string) => Math.max(...k.filter((e) => e.event === ev).map((e) => e.t));
  const first = (ev: string) => Math.min(...k.filter((e) => e.event === ev).map((e) => e.t));
  assert.equal(k.filter((e) => e.event === 'app-term').length, 4);
  for (const i of plan.instances) {
    const proxyTerm = k.find((e) => e.event === 'proxy-term' && e.instance === i.instance)!;
    const appTerm = k.find((e) => e.event === 'app-term' && e.instance === i.instance)!;
    assert.ok(appTerm.t >= proxyTerm.t, `${i.instance}: its sidecar stops (leaves rotation, drains) before its app`);
  }
  assert.ok(first('cp-term') >= last('proxy-term') && first('cp-term') >= last('app-term'), 'the control plane stops last');
  void first;
  assert.equal(existsSync(join(stateDir, 'mesh.json')), false, 'mesh.json removed');
  assert.equal(existsSync(pointer), false, 'pointer removed');
  assert.ok(existsSync(join(stateDir, 'logs', 'web.shop#0.app.log')) && existsSync(join(stateDir, 'logs', 'web.shop#0.proxy.log')));
  assert.ok(existsSync(join(stateDir, 'logs', 'control-plane.log')) && existsSync(join(stateDir, 'logs', 'ingress-edge.shop.log')));
});

test('an app that dies is restarted, logged, and its new pid lands in mesh.json', async () => {
  const dir = appDir();
  const { plan } = await planFor(dir);
  const { o, stateDir, journal, lines } = options(dir);
  const mesh = await started(plan, o);
  const firstPid = readMeshState(stateDir)!.instances.find((i) => i.instance === 'api-v1.shop')!.pids.app!;
  process.kill(firstPid, 'SIGKILL');
  await waitFor('a second start of api-v1.shop', () => readJournal(journal).filter((e) => e.event === 'app-start' && e.instance === 'api-v1.shop').length >= 2, 20_000);
  const pid = await waitFor('the new pid in mesh.json', () => {
    const p = readMeshState(stateDir)?.instances.find((i) => i.instance === 'api-v1.shop')?.pids.app;
    return p !== undefined && p !== firstPid ? p : undefined;
  }, 10_000);
  assert.ok(pid > 0);
  assert.ok(lines.some((l) => /^\d\d:\d\d:\d\d api-v1\.shop\.app exited \(signal SIGKILL\) after \d+\.\ds$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /api-v1\.shop\.app: restart #1 in 0\.1s/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /api-v1\.shop\.app: out of rotation \(its sidecar's health check failed\) after \d+\.\ds; starting it again/.test(l)), lines.join('\n'));
  const groups = mesh.supervisor.processes.map((p) => p.pid).filter((p): p is number => p !== undefined);
  pgids.push(...groups);
  await mesh.stop();
  assert.deepEqual(liveGroups([...groups, firstPid]), []);
});

test('a sidecar that never gets ready fails the start-up: the error names it and shows its log; nothing is left', async () => {
  const dir = appDir();
  const { plan } = await planFor(dir);
  const { o, stateDir, journal, pointer } = options(dir, { startupTimeoutMs: 5000, envExtra: { FAKE_NEVER_READY: 'api-v1.shop' } });
  const err = await RunningMesh.start(plan, o).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof StartupError, String(err));
  assert.equal(err.aborted, false);
  assert.match(err.message, /sidecar of api-v1\.shop was not ready after \d\.\ds \(last: HTTP 503 from http:\/\/127\.0\.0\.1:\d+\/ready\)/);
  assert.match(err.message, /The end of .*api-v1\.shop\.proxy\.log:\n {4}--- trellis up: start #1 of api-v1\.shop\.proxy/);
  const pids = [...new Set(readJournal(journal).map((e) => e.pid))];
  pgids.push(...pids);
  assert.ok(pids.length >= 3);
  assert.deepEqual(liveGroups(pids), []);
  assert.equal(existsSync(join(stateDir, 'mesh.json')), false);
  assert.equal(existsSync(pointer), false);
});

test('an aborted start-up (Ctrl-C while starting) stops what it started', async () => {
  const dir = appDir();
  const { plan } = await planFor(dir);
  const ac = new AbortController();
  const { o, journal, stateDir } = options(dir, { signal: ac.signal, envExtra: { FAKE_NEVER_READY: 'edge.shop' } });
  const p = RunningMesh.start(plan, o).then(() => undefined, (e: unknown) => e);
  await waitFor('the gateway to start', () => readJournal(journal).some((e) => e.event === 'proxy-start'));
  ac.abort();
  const err = await p;
  assert.ok(err instanceof StartupError && err.aborted, String(err));
  const pids = [...new Set(readJournal(journal).map((e) => e.pid))];
  pgids.push(...pids);
  assert.deepEqual(liveGroups(pids), []);
  assert.equal(existsSync(join(stateDir, 'mesh.json')), false);
});

test('a second mesh on the state dir of a running one is refused before it starts anything', async () => {
  const dir = appDir();
  const { plan } = await planFor(dir);
  const first = options(dir);
  const mesh = await started(plan, first.o);
  const journalBefore = readJournal(first.journal).length;
  // mesh.json names this very process; pretend it is another trellis up by rewriting the pid to our parent's.
  const state = JSON.parse(readFileSync(join(first.stateDir, 'mesh.json'), 'utf8'));
  writeMeshState({ ...state, pid: process.ppid });
  const err = await RunningMesh.start(plan, first.o).then(() => undefined, (e: unknown) => e);
  assert.match(String((err as Error).message), new RegExp(`a mesh is already running from ${first.stateDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(trellis up, pid ${process.ppid}\\)`));
  assert.equal(readJournal(first.journal).length, journalBefore, 'nothing was started');
  await mesh.stop();
});

test('a mesh.json left by a trellis up that died is taken over, with a warning naming its live process groups', async () => {
  const dir = appDir();
  const { plan } = await planFor(dir);
  const { o, stateDir, out } = options(dir);
  const orphan = spawn(process.execPath, [PROC, 'orphan'], { detached: true, stdio: 'ignore' });
  pgids.push(orphan.pid!);
  writeMeshState({ pid: 2 ** 22 + 19, startedAt: 'earlier', status: 'running', configDir: dir, stateDir, controlPlane: { grpc: 1, admin: 2, pid: orphan.pid! }, ingress: [], instances: [] });
  const mesh = await started(plan, o);
  assert.match(out.text(), new RegExp(`warning: the trellis up of earlier \\(pid ${2 ** 22 + 19}\\) did not stop cleanly; process groups it started still run: ${orphan.pid}`));
  assert.equal(readMeshState(stateDir)!.pid, process.pid);
  await mesh.stop();
  process.kill(-orphan.pid!, 'SIGKILL');
});
