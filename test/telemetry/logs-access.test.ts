/**
 * `trellis logs --access [name]`: the access log lines (written by the real
 * AccessLog into the proxies' log files, between other log lines) of one
 * service's sidecars, or of every proxy, from a mesh's state dir.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import type { InstanceState, MeshState } from '../../src/cli/up/state.js';
import { AccessLog } from '../../src/telemetry/access-log.js';
import { ROOT } from '../helpers/mesh.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'trellis-logs-access-'));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

const instance = (name: string, service: string): InstanceState => ({
  instance: name, service, workload: name.split('.')[0]!, namespace: 'shop', version: 'v1', region: '', zone: '',
  appPort: 1, inboundPort: 2, outboundPort: 3, adminPort: 4, pids: {},
});

const record = (proxy: string, path: string, status: number): RequestRecord => ({
  direction: 'outbound', proxy, requestId: `id-${path}`, method: 'GET', authority: 'api', path, protocol: 'HTTP/1.1', status,
  responseFlags: [], startTime: Date.UTC(2026, 0, 1), durationMs: 1, bytesReceived: 0, bytesSent: 2,
});

before(async () => {
  mkdirSync(join(dir, 'logs'));
  const state: MeshState = {
    pid: process.pid, startedAt: new Date().toISOString(), status: 'running', configDir: dir, stateDir: dir,
    controlPlane: { grpc: 1, admin: 2 }, ingress: [], instances: [instance('web-v1.shop', 'web'), instance('api-v1.shop', 'api')],
  };
  writeFileSync(join(dir, 'mesh.json'), JSON.stringify(state));
  for (const [inst, paths] of [['web-v1.shop', ['/a', '/b']], ['api-v1.shop', ['/c']]] as const) {
    const file = join(dir, 'logs', `${inst}.proxy.log`);
    writeFileSync(file, `trellis proxy ${inst}: listening\n`);
    const log = new AccessLog({ file });
    for (const p of paths) log.log(record(inst, p, 200));
    await log.close();
    appendFileSync(file, '{"level":30,"msg":"not an access line"}\nsnapshot applied\n');
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

const paths = (out: string) => out.split('\n').filter(Boolean).map((l) => {
  const m = /^(?:\[(\S+)\] )?(\{.*\})$/.exec(l);
  assert.ok(m, `not an access line: ${l}`);
  return `${m[1] ?? ''}${JSON.parse(m[2]!).path}`;
});

test('logs --access <service>: only its sidecars\' access lines', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'logs', '--access', 'web', '--state-dir', dir]);
  assert.deepEqual(paths(stdout), ['/a', '/b']);
});

test('logs --access with no name: every proxy, each line labelled with its instance; -n counts access lines', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'logs', '--access', '--state-dir', dir]);
  assert.deepEqual(paths(stdout), ['web-v1.shop/a', 'web-v1.shop/b', 'api-v1.shop/c']);
  const tail = await run(process.execPath, [CLI, 'logs', '--access', '-n', '1', '--state-dir', dir]);
  assert.deepEqual(paths(tail.stdout), ['web-v1.shop/b', 'api-v1.shop/c']);
});

test('logs without a name and without --access is an error', async () => {
  await assert.rejects(run(process.execPath, [CLI, 'logs', '--state-dir', dir]), (e: { code?: number; stderr?: string }) => e.code === 2 && /--access/.test(e.stderr ?? ''));
});
