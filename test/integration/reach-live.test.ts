/**
 * The reachability matrix of the bank example against what live proxies
 * answer, cell by cell and request by request: `trellis up` on a copy of
 * examples/bank (real control plane, sidecars, bank services), then every
 * probe of every cell is sent the way that source would send it:
 *
 * - a sidecar source: from its app's side, to its sidecar's outbound
 *   listener (absolute-form, as the bank's services call); allowed = an
 *   answer that is not 403, denied = 403 "RBAC: access denied";
 * - the ingress gateway: to its listener with the destination as Host;
 *   "routed elsewhere" = answered by another service than the destination;
 * - plaintext: straight to each destination instance's inbound port without
 *   TLS; "mTLS refused" = the connection closes without an HTTP answer.
 *
 * Every cell must agree. Bounded: the mesh starts in well under 30 s, about a
 * hundred requests follow; every process group of the mesh is killed after.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { loadConfig } from '../../src/api/load.js';
import { meshOf } from '../../src/analyze/analyze.js';
import { reachMatrix } from '../../src/analyze/reach/matrix.js';
import type { ReachProbe } from '../../src/analyze/reach/model.js';
import type { MeshState } from '../../src/cli/up/state.js';
import { groupMembers } from '../../src/cli/up/process-group.js';
import { ROOT } from '../helpers/mesh.js';
import { killGroups, tempDir } from '../up/helpers.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SKIP = existsSync(join(ROOT, 'dist', 'src', 'proxy', 'data-plane.js')) ? undefined : 'the data plane is not built';

const work = tempDir('trellis-reach-live-');
const app = join(work, 'bank');
const stateDir = join(work, 'state');
const env = { ...process.env, XDG_STATE_HOME: join(work, 'xdg'), TRELLIS_STATE_DIR: '' };
let up: ChildProcess | undefined;
const groups = new Set<number>();

after(async () => {
  if (up?.pid && up.exitCode === null && up.signalCode === null) {
    try { process.kill(-up.pid, 'SIGINT'); } catch { /* gone */ }
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && groupMembers(up.pid).length > 0) await new Promise((r) => setTimeout(r, 100));
  }
  killGroups([...(up?.pid ? [up.pid] : []), ...groups]);
  const left = [...(up?.pid ? [up.pid] : []), ...groups].flatMap((g) => groupMembers(g));
  assert.deepEqual(left, [], 'no process of the mesh is left');
  rmSync(work, { recursive: true, force: true });
});

interface Answer { status: number; body: string; closed?: boolean }

function send(port: number, method: string, path: string, host: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host, 'content-length': '0' }, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => { req.destroy(); resolve({ status: 0, body: 'timeout' }); });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: `closed: ${e.code}`, closed: true }));
    req.end();
  });
}

const serviceOf = (body: string): string | undefined => { try { return (JSON.parse(body) as { service?: string }).service; } catch { return undefined; } };

test('the bank\'s reachability matrix agrees with the live proxies on every cell', { skip: SKIP ?? false, timeout: 90_000 }, async () => {
  cpSync(join(ROOT, 'examples', 'bank'), app, { recursive: true, filter: (src) => !src.includes('/.trellis') });
  const mesh = meshOf(loadConfig([app]));
  const matrix = reachMatrix(mesh.config, mesh.registry);
  assert.equal(matrix.sources.length, 8, 'six workloads, the gateway and plaintext');
  assert.equal(matrix.destinations.length, 5);

  let out = '';
  up = spawn(process.execPath, [CLI, 'up', app, '--state-dir', stateDir], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  up.stdout!.on('data', (b) => (out += b));
  up.stderr!.on('data', (b) => (out += b));
  const deadline = Date.now() + 45_000;
  while (!out.includes('Stop:     Ctrl-C')) {
    if (up.exitCode !== null) throw new Error(`trellis up exited with ${up.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`the mesh did not start within 45 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const state = JSON.parse(readFileSync(join(stateDir, 'mesh.json'), 'utf8')) as MeshState;
  for (const i of state.instances) for (const p of [i.pids.proxy, i.pids.app]) if (p) groups.add(p);
  for (const g of state.ingress) if (g.pid) groups.add(g.pid);
  if (state.controlPlane.pid) groups.add(state.controlPlane.pid);

  const ingressPort = Object.values(state.ingress[0]!.ports)[0]!;
  const instancesOf = (id: string) => state.instances.filter((i) => `${i.workload}.${i.namespace}` === id);
  const mismatches: string[] = [];
  let sent = 0;
  for (const cell of matrix.cells) {
    const src = matrix.sources.find((s) => s.id === cell.from)!;
    const dst = matrix.destinations.find((d) => d.id === cell.to)!;
    const destName = dst.service.split('.')[0]!;
    for (const p of cell.probes) {
      const expect = expectation(p);
      let got: string;
      if (src.kind === 'plaintext') {
        // Every instance of the destination must refuse it.
        const answers = await Promise.all(dst.workloads.flatMap(instancesOf).map((i) => send(i.inboundPort, p.method, p.path, `${dst.service}:${dst.port}`)));
        sent += answers.length;
        got = answers.every((a) => a.closed) ? 'refused' : answers.map((a) => a.status).join(',');
      } else {
        const a = src.kind === 'gateway'
          ? await send(ingressPort, p.method, p.path, dst.service)
          : await send(instancesOf(src.id)[0]!.outboundPort, p.method, `http://${dst.service}:${dst.port}${p.path}`, `${dst.service}:${dst.port}`);
        sent++;
        const by = serviceOf(a.body);
        got = a.closed || a.status === 0 ? `no answer (${a.body})`
          : a.status === 403 && /RBAC: access denied/.test(a.body) ? 'rbac-denied'
            : by !== undefined && by !== destName ? 'elsewhere'
              : a.status === 403 ? `403 without RBAC (${a.body})` : 'allowed';
      }
      if (got !== expect) mismatches.push(`${cell.from} → ${cell.to} ${p.method} ${p.path}: matrix says ${expect} (${p.decision.reason}), live: ${got}`);
    }
  }
  console.log(`# ${sent} live requests over ${matrix.cells.length} cells`);
  assert.ok(sent >= matrix.cells.length, 'every cell was sent at least one request');
  assert.deepEqual(mismatches, []);
  // The cells the bank is about, spelled out (a matrix that said "everything allowed" everywhere would fail here).
  const cellOf = (from: string, to: string) => matrix.cells.find((c) => c.from === from && c.to === to)!;
  assert.equal(cellOf('frontend.bank', 'accounts.bank:8080').summary, 'GET (any path); everything else denied');
  assert.equal(cellOf('funds-transfer.bank', 'debit-credit.bank:8080').summary, 'POST /credit, /debit; everything else denied');
  assert.equal(cellOf('frontend.bank', 'debit-credit.bank:8080').access, 'none');
  assert.ok(matrix.cells.filter((c) => c.from === 'plaintext').every((c) => c.probes.every((p) => p.decision.kind === 'mtls-refused')));
});

/** What the live mesh must show for a probe, from the matrix's verdict and decision. */
function expectation(p: ReachProbe): string {
  if (p.verdict === 'allowed') return 'allowed';
  switch (p.decision.kind) {
    case 'mtls-refused': return 'refused';
    case 'routed-elsewhere': return 'elsewhere';
    case 'default-deny': case 'deny-policy': return 'rbac-denied';
    default: return p.decision.kind;
  }
}
