/**
 * `trellis ca finish-rotation` refuses while a connected proxy still holds
 * an old-root certificate, and says which: a real control plane (in this
 * process, a CA in a state dir), a proxy's stream connected with a
 * certificate from the first root, the CLI as a user runs it.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigDir, SHOP, startControlPlane, StreamClient, waitFor } from '../controlplane/helpers.js';
import { MAIN } from './processes.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const cli = (...args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 }, (e, stdout, stderr) => {
    resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr });
  });
});

test('finish-rotation is refused, naming the proxy, while a connected proxy holds a certificate from the old root; --force drops the old root anyway', async () => {
  const dir = new ConfigDir({ 'app.yaml': SHOP });
  cleanup.push(() => dir.remove());
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-ca-cli-'));
  cleanup.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const t = await startControlPlane(dir.path, { stateDir });
  cleanup.push(() => t.cp.close());
  const web = StreamClient.hello(t.grpc, 'web.shop', '127.0.0.1:1');
  cleanup.push(() => web.close());
  await waitFor('web.shop connected', async () => (await t.get<{ instance: string }[]>('/proxies')).body.find((p) => p.instance === 'web.shop'));
  const rotated = await cli('ca', 'rotate', '--admin', t.admin);
  assert.equal(rotated.code, 0, rotated.stderr);
  const refused = await cli('ca', 'finish-rotation', '--admin', t.admin);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /1 connected proxies still hold a certificate from an old root; they renew at half life \(or retry with \?force=true\): web\.shop/);
  const forced = await cli('ca', 'finish-rotation', '--force', '--admin', t.admin, '-o', 'json');
  assert.equal(forced.code, 0, forced.stderr);
  const status = JSON.parse(forced.stdout) as { rotating: boolean; roots: unknown[] };
  assert.deepEqual([status.rotating, status.roots.length], [false, 1]);
});
