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
import { parseLogFormat } from '../../src/api/access-log-format.js';
import { AccessLog, type AccessLogOptions } from '../../src/telemetry/access-log.js';
import { ROOT } from '../helpers/mesh.js';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'trellis-logs-access-'));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** Istio's default TEXT access log format (MeshConfig accessLogFormat unset, accessLogEncoding TEXT). */
const ISTIO_DEFAULT_TEXT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" ' +
  '%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

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
    controlPlane: { grpc: 1, admin: 2 }, ingress: [],
    instances: [instance('web-v1.shop', 'web'), instance('api-v1.shop', 'api'), instance('db-v1.shop', 'db'), instance('cache-v1.shop', 'cache')],
  };
  writeFileSync(join(dir, 'mesh.json'), JSON.stringify(state));
  const istioDefault = parseLogFormat(ISTIO_DEFAULT_TEXT, 'TEXT');
  assert.ok('format' in istioDefault);
  const logs: readonly (readonly [string, readonly string[], Omit<AccessLogOptions, 'file'>])[] = [
    ['web-v1.shop', ['/a', '/b'], {}], ['api-v1.shop', ['/c'], {}],
    // TEXT lines: Trellis's default shape, and Istio's default format.
    ['db-v1.shop', ['/d'], { encoding: 'TEXT' }], ['cache-v1.shop', ['/e'], { encoding: 'TEXT', format: istioDefault.format }],
  ];
  for (const [inst, paths, options] of logs) {
    const file = join(dir, 'logs', `${inst}.proxy.log`);
    writeFileSync(file, `${new Date().toISOString()} proxy ${inst} listening inbound=127.0.0.1:2\n(node:1) Warning: something\n`);
    const log = new AccessLog({ file, ...options });
    for (const p of paths) log.log(record(inst, p, 200));
    await log.close();
    appendFileSync(file, '{"level":30,"msg":"not an access line"}\nsnapshot applied\n');
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `[instance]` (when labelled) and the path of each access line, JSON or TEXT. */
const paths = (out: string) => out.split('\n').filter(Boolean).map((l) => {
  const m = /^(?:\[([a-z0-9.-]+)\] )?(.*)$/.exec(l)!;
  const line = m[2]!;
  if (line.startsWith('{')) return `${m[1] ?? ''}${JSON.parse(line).path}`;
  const text = /^\[[^\]]+\] "GET (\S+) HTTP\/1\.1" 200 /.exec(line);
  assert.ok(text, `not an access line: ${l}`);
  return `${m[1] ?? ''}${text[1]}`;
});

test('logs --access <service>: only its sidecars\' access lines', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'logs', '--access', 'web', '--state-dir', dir]);
  assert.deepEqual(paths(stdout), ['/a', '/b']);
});

test('logs --access with no name: every proxy, each line labelled with its instance; -n counts access lines', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'logs', '--access', '--state-dir', dir]);
  assert.deepEqual(paths(stdout), ['web-v1.shop/a', 'web-v1.shop/b', 'api-v1.shop/c', 'db-v1.shop/d', 'cache-v1.shop/e']);
  const tail = await run(process.execPath, [CLI, 'logs', '--access', '-n', '1', '--state-dir', dir]);
  assert.deepEqual(paths(tail.stdout), ['web-v1.shop/b', 'api-v1.shop/c', 'db-v1.shop/d', 'cache-v1.shop/e']);
});

test('logs --access picks TEXT lines out of a proxy\'s own lines: Trellis\'s default TEXT shape and Istio\'s default format', async () => {
  for (const [name, path] of [['db', '/d'], ['cache', '/e']] as const) {
    const { stdout } = await run(process.execPath, [CLI, 'logs', '--access', name, '--state-dir', dir]);
    assert.deepEqual(paths(stdout), [path], name);
  }
});

test('logs without a name and without --access is an error', async () => {
  await assert.rejects(run(process.execPath, [CLI, 'logs', '--state-dir', dir]), (e: { code?: number; stderr?: string }) => e.code === 2 && /--access/.test(e.stderr ?? ''));
});
