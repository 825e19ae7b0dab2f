/**
 * End to end: `trellis up examples/bank` (a copy, with a temp state dir) as a
 * real process with the real control plane, proxies and bank services.
 * Through the ingress to the frontend, which calls accounts and
 * funds-transfer through the mesh; `trellis status` all SYNCED; an edit of
 * the accounts split moves new traffic to v2; an invalid edit is reported
 * with file and line while traffic keeps flowing; SIGINT leaves no process of
 * the mesh behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';
import { groupMembers } from '../../src/cli/up/process-group.js';
import type { MeshState } from '../../src/cli/up/state.js';
import { killGroups, tempDir } from '../up/helpers.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** The running mesh needs the real `trellis control-plane` and `trellis proxy` (with its data plane). */
function missing(): string | undefined {
  for (const c of ['control-plane', 'proxy']) {
    const r = spawnSync(process.execPath, [CLI, c, '--help'], { encoding: 'utf8', timeout: 20_000 });
    if (r.status !== 0) return `\`trellis ${c}\` is not available yet`;
  }
  if (!existsSync(join(ROOT, 'dist', 'src', 'proxy', 'data-plane.js'))) return 'the data plane (src/proxy/data-plane.ts) is not built yet';
  return undefined;
}
const SKIP = missing();
const HAVE_CURL = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).status === 0;

const work = tempDir('trellis-e2e-');
const app = join(work, 'bank');
const stateDir = join(work, 'state');
const env = { ...process.env, XDG_STATE_HOME: join(work, 'xdg'), TRELLIS_STATE_DIR: '' };
let up: ChildProcess | undefined;
let out = '';
let err = '';
let exited: Promise<number | null> = Promise.resolve(null);
/** Every process group of the mesh, as mesh.json named them while it ran. */
const groups = new Set<number>();

before(() => {
  if (SKIP) return;
  cpSync(join(ROOT, 'examples', 'bank'), app, { recursive: true, filter: (src) => !src.includes('/.trellis') });
});

after(async () => {
  if (up && up.exitCode === null && up.signalCode === null) {
    try { process.kill(-up.pid!, 'SIGINT'); } catch { /* gone */ }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  }
  killGroups([...(up?.pid ? [up.pid] : []), ...groups]);
});

function trellis(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000, env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** GET through the ingress: curl when the machine has it (a peer nobody here wrote), else node's http. */
function get(url: string, headers: Record<string, string> = {}): { status: number; body: string } {
  if (HAVE_CURL) {
    const r = spawnSync('curl', ['-s', '-m', '5', '-o', '-', '-w', '\n%{http_code}', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url], { encoding: 'utf8', timeout: 10_000 });
    const at = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
  }
  throw new Error('use getAsync without curl');
}

function getAsync(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  if (HAVE_CURL) return Promise.resolve(get(url, headers));
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function meshState(): MeshState {
  return JSON.parse(readFileSync(join(stateDir, 'mesh.json'), 'utf8')) as MeshState;
}

function recordGroups(): void {
  const s = meshState();
  if (s.controlPlane.pid) groups.add(s.controlPlane.pid);
  for (const g of s.ingress) if (g.pid) groups.add(g.pid);
  for (const i of s.instances) for (const p of [i.pids.proxy, i.pids.app]) if (p) groups.add(p);
}

async function poll<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last: ${String(last)})` : ''}\nstdout of trellis up:\n${out}\nstderr:\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let ingress = '';

test('trellis up examples/bank starts the mesh and prints the table and the ingress URL', { skip: SKIP ?? false, timeout: 120_000 }, async () => {
  if (!HAVE_CURL) console.log('# curl is not installed: requests go through node:http instead');
  up = spawn(process.execPath, [CLI, 'up', app, '--state-dir', stateDir], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  up.stdout!.on('data', (b) => (out += b));
  up.stderr!.on('data', (b) => (err += b));
  exited = new Promise((r) => up!.on('exit', (code) => r(code)));
  await poll('the table', 90_000, async () => {
    if (up!.exitCode !== null) throw new Error(`trellis up exited with ${up!.exitCode}`);
    return out.includes('Stop:     Ctrl-C') ? true : undefined;
  });
  recordGroups();
  assert.match(out, /^SERVICE\s+INSTANCE\s+VERSION\s+ZONE\s+APP\s+INBOUND\s+OUTBOUND\s+ADMIN$/m);
  assert.match(out, /^accounts\s+accounts-v2\.bank\s+v2\s+eu-west-b\s+\d+\s+\d+\s+\d+\s+\d+$/m);
  assert.match(out, /✓ mesh in sync/);
  ingress = /^Try:\s+curl (\S+)$/m.exec(out)?.[1] ?? '';
  assert.match(ingress, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.equal(groups.size, 1 + 1 + 11 * 2, 'control plane, ingress, 11 sidecars and 11 apps');
});

test('through the ingress, the frontend calls accounts and funds-transfer through the mesh', { skip: SKIP ?? false, timeout: 30_000 }, async () => {
  assert.ok(ingress, 'the mesh is up');
  const r = await getAsync(ingress);
  assert.equal(r.status, 200, r.body);
  const page = JSON.parse(r.body);
  assert.equal(page.service, 'frontend');
  assert.match(page.instance, /^frontend\.bank#[01]$/);
  assert.equal(page.balance.status, 200);
  assert.equal(page.balance.body.service, 'accounts');
  assert.match(page.balance.body.instance, /^accounts-v[12]\.bank/);
  assert.match(page.balance.body.version, /^v[12]$/);
  const t = page.transfer.body;
  assert.equal(page.transfer.status, 200, JSON.stringify(page.transfer));
  assert.deepEqual([t.service, t.transfer, t.debit.body.service, t.credit.body.service, t.notification.body.service], ['funds-transfer', 'done', 'debit-credit', 'debit-credit', 'notifications']);
  // The canary opt-in header travels from the edge to the frontend's call to accounts.
  const canary = JSON.parse((await getAsync(`${ingress}balance`, { 'x-canary': 'true' })).body);
  assert.equal(canary.balance.body.version, 'v2');
});

/** A request from `instance`'s app through its sidecar (absolute form, as the bank's services send them). */
function viaSidecar(instance: string, method: string, url: string, body?: unknown): Promise<{ status: number; body: string }> {
  const i = meshState().instances.find((x) => x.instance === instance)!;
  const u = new URL(url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: i.outboundPort, method, path: url, headers: { host: u.host, ...(data ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}) }, timeout: 5000 }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('the bank\'s policies: each allowed call is allowed, and each other caller, method or path is denied with 403', { skip: SKIP ?? false, timeout: 30_000 }, async () => {
  const cases: [caller: string, method: string, url: string, body: unknown, status: number][] = [
    ['frontend.bank#0', 'GET', 'http://accounts:8080/balance?account=alice', undefined, 200],
    ['frontend.bank#1', 'POST', 'http://accounts:8080/balance?account=alice', {}, 403],
    ['notifications.bank#0', 'GET', 'http://accounts:8080/balance?account=alice', undefined, 403],
    ['funds-transfer.bank#0', 'POST', 'http://debit-credit:8080/debit', { account: 'alice', amount: 1 }, 200],
    ['funds-transfer.bank#1', 'POST', 'http://debit-credit:8080/credit', { account: 'bob', amount: 1 }, 200],
    ['funds-transfer.bank#0', 'GET', 'http://debit-credit:8080/debit', undefined, 403],
    ['funds-transfer.bank#0', 'POST', 'http://debit-credit:8080/refund', { account: 'alice', amount: 1 }, 403],
    ['frontend.bank#0', 'POST', 'http://debit-credit:8080/debit', { account: 'alice', amount: 1 }, 403],
    ['accounts-v1.bank#0', 'POST', 'http://debit-credit:8080/credit', { account: 'eve', amount: 100 }, 403],
    ['frontend.bank#0', 'POST', 'http://funds-transfer:8080/transfer', { from: 'alice', to: 'bob', amount: 1 }, 200],
    ['notifications.bank#1', 'POST', 'http://funds-transfer:8080/transfer', { from: 'alice', to: 'bob', amount: 1 }, 403],
    // The path is normalized before it is matched: no way around the /debit rule with dots or doubled slashes.
    ['frontend.bank#0', 'POST', 'http://debit-credit:8080//debit', { account: 'alice', amount: 1 }, 403],
    ['funds-transfer.bank#0', 'POST', 'http://debit-credit:8080/x/../debit', { account: 'alice', amount: 1 }, 200],
  ];
  for (const [caller, method, url, body, status] of cases) {
    const r = await viaSidecar(caller, method, url, body);
    assert.equal(r.status, status, `${caller} ${method} ${url}: ${r.status} ${r.body}`);
    if (status === 403) assert.match(r.body, /RBAC: access denied/);
  }
});

test('STRICT mTLS: a plaintext request straight to a sidecar\'s inbound port gets no answer', { skip: SKIP ?? false, timeout: 30_000 }, async () => {
  const i = meshState().instances.find((x) => x.instance === 'accounts-v1.bank#0')!;
  const r = await new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port: i.inboundPort, path: '/balance?account=alice', headers: { host: 'accounts.bank:8080' }, timeout: 5000 }, (res) => resolve(`answered ${res.statusCode}`));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`closed: ${e.code}`));
    req.on('timeout', () => { req.destroy(); resolve('timeout'); });
    req.end();
  });
  assert.match(r, /^closed: /, `the connection is closed without an HTTP answer (${r})`);
});

test('trellis status: every proxy SYNCED', { skip: SKIP ?? false, timeout: 30_000 }, async () => {
  const doc = await poll('all SYNCED', 10_000, async () => {
    const r = trellis('status', '-o', 'json');
    if (r.code !== 0) throw new Error(r.err);
    const d = JSON.parse(r.out);
    return d.summary.synced === d.summary.total ? d : undefined;
  });
  assert.equal(doc.summary.total, 12);
  assert.ok(doc.proxies.every((p: { connected: boolean; version: string | null }) => p.connected && p.version));
  assert.equal(doc.proxies.find((p: { kind: string }) => p.kind === 'gateway').instance, 'ingressgateway.istio-system');
});

test('an edit of the split (0/100) sends new traffic to accounts v2 within about a second', { skip: SKIP ?? false, timeout: 30_000 }, async () => {
  const file = join(app, 'routing.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('weight: 90', 'weight: 0').replace('weight: 10', 'weight: 100'));
  const edited = Date.now();
  // Bounded: the first moment from which 20 requests in a row are all served by v2.
  let batch = 0;
  await poll('20 answers in a row from v2', 10_000, async () => {
    batch = Date.now();
    for (let i = 0; i < 20; i++) {
      const r = JSON.parse((await getAsync(`${ingress}balance`)).body);
      if (r.balance?.body?.version !== 'v2') return undefined;
    }
    return true;
  });
  const took = batch - edited;
  console.log(`# v2 took all new traffic ${took} ms after the edit`);
  assert.ok(took < 2000, `the split applied ${took} ms after the edit`);
});

test('an invalid edit is reported with file and line, and traffic keeps flowing', { skip: SKIP ?? false, timeout: 30_000 }, async () => {
  const file = join(app, 'routing.yaml');
  const text = readFileSync(file, 'utf8');
  const line = text.split('\n').findIndex((l) => l.includes('timeout: 2s')) + 1;
  writeFileSync(file, text.replace('timeout: 2s', 'timeout: forever'));
  const log = join(stateDir, 'logs', 'control-plane.log');
  await poll('the error in the control plane log', 10_000, async () => (new RegExp(`routing\\.yaml:${line}:\\d+: error TRL0106`).test(readFileSync(log, 'utf8')) ? true : undefined));
  for (let i = 0; i < 10; i++) {
    const r = await getAsync(`${ingress}balance`);
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).balance.body.version, 'v2', 'the last good configuration stays in force');
  }
  const st = JSON.parse(trellis('status', '-o', 'json').out);
  assert.equal(st.summary.nacked, 0);
});

test('an app that dies is restarted and the mesh sends it traffic again', { skip: SKIP ?? false, timeout: 30_000 }, async () => {
  const before = meshState().instances.find((i) => i.instance === 'accounts-v2.bank')!.pids.app!;
  process.kill(-before, 'SIGKILL');
  const pid = await poll('a new accounts-v2 app in mesh.json', 15_000, async () => {
    const p = meshState().instances.find((i) => i.instance === 'accounts-v2.bank')!.pids.app;
    return p !== undefined && p !== before ? p : undefined;
  });
  groups.add(pid);
  assert.match(out, /accounts-v2\.bank\.app exited \(signal SIGKILL\)/);
  // It was started again only once its sidecar's health check had taken it out of rotation.
  await poll('the restart gate in the log', 10_000, async () => (/accounts-v2\.bank\.app: out of rotation \(its sidecar's health check failed\)/.test(out) ? true : undefined));
  // All of accounts' traffic goes to v2 now (the edit above): it answers again once its sidecar sees it healthy.
  await poll('accounts v2 answering through the mesh again', 15_000, async () => {
    const r = await getAsync(`${ingress}balance`);
    return r.status === 200 && JSON.parse(r.body).balance.body.instance === 'accounts-v2.bank' ? true : undefined;
  });
});

test('SIGINT stops everything: no process of the mesh is left, mesh.json and the pointer are gone', { skip: SKIP ?? false, timeout: 60_000 }, async () => {
  assert.ok(up?.pid);
  recordGroups();
  process.kill(up.pid, 'SIGINT');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 45_000))]);
  assert.equal(code, 0, `exit ${String(code)}\n${err}`);
  assert.match(out, /stopped 24 processes/);
  assert.doesNotMatch(out, /SIGKILL: /, 'every process left on SIGTERM');
  // Each sidecar left rotation through the control plane before its app was stopped.
  const proxyLog = readFileSync(join(stateDir, 'logs', 'accounts-v1.bank#0.proxy.log'), 'utf8');
  assert.match(proxyLog, /SIGTERM: leaving rotation, then draining/);
  assert.match(proxyLog, /drained: /);
  const left = [up.pid, ...groups].flatMap((g) => groupMembers(g));
  assert.deepEqual(left, [], 'processes of the mesh\'s groups still running');
  assert.equal(existsSync(join(stateDir, 'mesh.json')), false);
  assert.equal(existsSync(join(work, 'xdg', 'trellis', 'current')), false);
  const refused = await getAsync(ingress).then((r) => r.status, () => 0);
  assert.equal(refused, 0, 'nothing listens on the ingress port any more');
});
