/** Port allocation, and the state files of a running mesh: mesh.json and the pointer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { allocatePorts, PortPool } from '../../src/cli/up/ports.js';
import { findStateDir, pointerFile, readMeshState, removeMeshState, stateDirForUp, writeMeshState, writePointer, type MeshState } from '../../src/cli/up/state.js';
import { tempDir } from './helpers.js';

test('allocatePorts gives distinct loopback ports that are free to bind', async () => {
  const ports = await allocatePorts(40);
  assert.equal(new Set(ports).size, 40);
  assert.ok(ports.every((p) => p > 0 && p < 65536));
  for (const p of ports.slice(0, 5)) {
    const s = createServer();
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(p, '127.0.0.1', () => resolve()); });
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

test('a PortPool hands out each port once and says when it runs out', () => {
  const pool = new PortPool([1001, 1002]);
  assert.deepEqual([pool.next(), pool.next()], [1001, 1002]);
  assert.throws(() => pool.next(), /exhausted/);
});

test('the state dir: --state-dir, then TRELLIS_STATE_DIR, then <dir>/.trellis', () => {
  assert.equal(stateDirForUp('/tmp/s', '/app', {}), '/tmp/s');
  assert.equal(stateDirForUp(undefined, '/app', { TRELLIS_STATE_DIR: '/tmp/env' }), '/tmp/env');
  assert.equal(stateDirForUp(undefined, '/app', {}), '/app/.trellis');
});

test('the pointer lives under XDG_STATE_HOME, else ~/.local/state', () => {
  assert.equal(pointerFile({ XDG_STATE_HOME: '/x/state' }), '/x/state/trellis/current');
  assert.match(pointerFile({}), /\/\.local\/state\/trellis\/current$/);
  assert.match(pointerFile({ XDG_STATE_HOME: 'relative' }), /\/\.local\/state\/trellis\/current$/, 'a relative XDG_STATE_HOME is ignored, as the spec says');
});

const state = (stateDir: string): MeshState => ({
  pid: process.pid, startedAt: new Date().toISOString(), status: 'running', configDir: '/app', stateDir,
  controlPlane: { grpc: 1, admin: 2 }, ingress: [], instances: [],
});

test('mesh.json and the pointer are written, found, and removed', () => {
  const xdg = tempDir();
  const env = { XDG_STATE_HOME: xdg };
  const dir = join(tempDir(), 'state');
  const written = state(dir);
  writeMeshState(written);
  writePointer(dir, env);
  assert.equal(readFileSync(pointerFile(env), 'utf8'), dir + '\n');
  assert.equal(findStateDir(undefined, env), dir);
  assert.equal(findStateDir('/given', env), '/given');
  assert.equal(findStateDir(undefined, { ...env, TRELLIS_STATE_DIR: '/from-env' }), '/from-env');
  assert.deepEqual(readMeshState(dir), written);
  removeMeshState(dir, env);
  assert.equal(existsSync(join(dir, 'mesh.json')), false);
  assert.equal(existsSync(pointerFile(env)), false);
  assert.throws(() => findStateDir(undefined, env), /no mesh is running: .*current does not exist/);
  assert.equal(readMeshState(dir), undefined);
});

test('removing a mesh leaves a pointer that names another mesh', () => {
  const env = { XDG_STATE_HOME: tempDir() };
  const mine = tempDir();
  const theirs = tempDir();
  writeMeshState(state(mine));
  writePointer(theirs, env);
  removeMeshState(mine, env);
  assert.equal(readFileSync(pointerFile(env), 'utf8').trim(), theirs);
});

test('a mesh.json that is not JSON is reported with its path', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'mesh.json'), '{ nope');
  assert.throws(() => readMeshState(dir), /mesh\.json is not valid JSON/);
});
