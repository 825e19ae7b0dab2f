/**
 * Per-upstream local ports under `trellis up`: the plan gives each instance
 * its own local port per upstream (or the manifest's fixed one), passes them
 * to the sidecar as `--upstream` and to the app as TRELLIS_UPSTREAM_*; then
 * end to end, a real `trellis up` of a two-service app whose web app reaches
 * a TCP "database" through the variable it was given.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appEnv, planMesh } from '../../src/cli/up/plan.js';
import { sidecarArgs } from '../../src/cli/up/launch.js';
import { upstreamPorts } from '../../src/cli/commands/proxy.js';
import type { MeshState } from '../../src/cli/up/state.js';
import { meshFromYaml, ROOT } from '../helpers/mesh.js';
import { killGroups, tempDir, waitFor } from './helpers.js';

const APP = (webExtra = '') => `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: shop }
spec:
  namespace: shop
  services:
  - name: db
    ports: [{ name: tcp-db, port: 5432 }]
    command: [${JSON.stringify(process.execPath)}, db.mjs]
  - name: web
    ports: [{ name: http, port: 8080 }]
    health: { path: /healthz }
    command: [${JSON.stringify(process.execPath)}, web.mjs]
    upstreams: [{ service: db, port: 5432 }]
${webExtra}`;

const counter = () => { let n = 20000; return () => ++n; };

test('each instance gets its own local port per upstream, as --upstream and as TRELLIS_UPSTREAM_* variables', () => {
  const { config, registry } = meshFromYaml(APP('    replicas: 2\n    env: { TRELLIS_UPSTREAM_DB_5432_PORT: "1" }'));
  const plan = planMesh(config, registry, counter());
  const webs = plan.instances.filter((i) => i.service === 'web');
  assert.deepEqual(webs.map((i) => i.upstreams.map((u) => [u.host, u.port, u.env])), [[['db.shop', 5432, 'TRELLIS_UPSTREAM_DB_5432']], [['db.shop', 5432, 'TRELLIS_UPSTREAM_DB_5432']]]);
  const [a, b] = webs.map((i) => i.upstreams[0]!.localPort);
  assert.notEqual(a, b);
  const all = plan.instances.flatMap((i) => [i.appPort, i.inboundPort, i.outboundPort, i.adminPort, ...i.upstreams.map((u) => u.localPort)]);
  assert.equal(new Set(all).size, all.length, 'no port is handed out twice');
  assert.deepEqual(sidecarArgs(plan, webs[1]!, '/state').slice(-2), ['--upstream', `db.shop:5432=${b}`]);
  const env = appEnv(webs[1]!, {});
  assert.deepEqual([env.TRELLIS_UPSTREAM_DB_5432, env.TRELLIS_UPSTREAM_DB_5432_HOST, env.TRELLIS_UPSTREAM_DB_5432_PORT], [`127.0.0.1:${b}`, '127.0.0.1', String(b)]);
  assert.deepEqual(plan.warnings, ['web.shop: env TRELLIS_UPSTREAM_DB_5432_PORT is set by trellis up; the manifest\'s value is ignored']);
  // An instance without upstreams gets neither flags nor variables.
  const db = plan.instances.find((i) => i.service === 'db')!;
  assert.ok(!sidecarArgs(plan, db, '/state').includes('--upstream'));
  assert.ok(!Object.keys(appEnv(db, {})).some((k) => k.startsWith('TRELLIS_UPSTREAM_')));
});

test('a fixed localPort is used as it is; an upstream the configuration does not declare is a warning', () => {
  const { config, registry } = meshFromYaml(APP().replace('upstreams: [{ service: db, port: 5432 }]', 'upstreams: [{ service: db, port: 5432, localPort: 15432 }, { service: cache, port: 6379 }, { service: db, port: 9 }]'));
  const plan = planMesh(config, registry, counter());
  const web = plan.instances.find((i) => i.service === 'web')!;
  assert.equal(web.upstreams[0]!.localPort, 15432);
  assert.deepEqual(plan.warnings, [
    'web.shop: upstream cache.shop:6379: there is no service cache.shop; its local port closes connections until the configuration declares it',
    'web.shop: upstream db.shop:9: service db.shop has no port 9 (its ports: 5432); its local port closes connections until the configuration declares it',
  ]);
  // The same port handed out by the allocator as well: refused with what to do.
  const ports = [15432];
  let n = 30000;
  assert.throws(() => planMesh(config, registry, () => ports.shift() ?? ++n), /localPort 15432 of upstream db\.shop:5432 of web\.shop was also picked as a free port for another process of the mesh; run trellis up again/);
});

test('trellis proxy --upstream: <service>[.<namespace>]:<port>=<localPort>, each upstream once', () => {
  assert.deepEqual(upstreamPorts(['db.shop:5432=15432', 'Cache:6379=0']), [{ host: 'db.shop', port: 5432, localPort: 15432 }, { host: 'cache', port: 6379, localPort: 0 }]);
  for (const bad of ['db.shop=15432', 'db.shop:0=1', 'db.shop:5432=70000', ':5432=1', 'db shop:1=2']) {
    assert.throws(() => upstreamPorts([bad]), (e: Error) => e.message === `--upstream takes <service>[.<namespace>]:<port>=<localPort> (e.g. db.bank:5432=15432, 0 for any local port), not "${bad}"`, bad);
  }
  assert.throws(() => upstreamPorts(['db:1=2', 'db:1=3']), /--upstream db:1 is given twice \("db:1=2" and "db:1=3"\)/);
});

// ---- end to end, with the real control plane and proxies ----

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const DB = `import { createServer } from 'node:net';
createServer((s) => {
  let buf = '';
  s.on('data', (c) => { buf += c; if (buf.includes('\\n')) { s.end('PONG ' + process.env.INSTANCE + ' for ' + buf.trim() + '\\n'); buf = ''; } });
  s.on('error', () => {});
}).listen(Number(process.env.PORT), '127.0.0.1');
`;
const WEB = `import { createServer } from 'node:http';
import { connect } from 'node:net';
createServer((req, res) => {
  if (req.url === '/healthz') { res.end('ok'); return; }
  const at = process.env.TRELLIS_UPSTREAM_DB_5432;
  const s = connect(Number(process.env.TRELLIS_UPSTREAM_DB_5432_PORT), process.env.TRELLIS_UPSTREAM_DB_5432_HOST);
  let answer = '';
  s.on('data', (c) => { answer += c; });
  s.on('error', (e) => { answer += 'error ' + e.message; });
  s.on('close', () => res.end(JSON.stringify({ at, answer })));
  s.end('PING from web\\n');
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

const groups = new Set<number>();
let up: ChildProcess | undefined;
after(() => {
  if (up?.pid && up.exitCode === null) { try { process.kill(-up.pid, 'SIGKILL'); } catch { /* gone */ } }
  killGroups([...groups]);
});

test('trellis up: the web app reaches the TCP database through the local port its variable names', { timeout: 90_000 }, async () => {
  const dir = tempDir('trellis-upstreams-');
  writeFileSync(join(dir, 'app.yaml'), APP());
  writeFileSync(join(dir, 'db.mjs'), DB);
  writeFileSync(join(dir, 'web.mjs'), WEB);
  const stateDir = join(dir, '.state');
  let out = '';
  up = spawn(process.execPath, [CLI, 'up', dir, '--state-dir', stateDir], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDG_STATE_HOME: join(dir, 'xdg'), TRELLIS_STATE_DIR: '' } });
  groups.add(up.pid!);
  up.stdout!.on('data', (b) => (out += b));
  up.stderr!.on('data', (b) => (out += b));
  const exited = new Promise<number | null>((r) => up!.on('exit', (code) => r(code)));
  await waitFor('the mesh to be up', () => { if (up!.exitCode !== null) throw new Error(`trellis up exited ${up!.exitCode}:\n${out}`); return out.includes('Stop:     Ctrl-C'); }, 60_000);
  const state = JSON.parse(readFileSync(join(stateDir, 'mesh.json'), 'utf8')) as MeshState;
  for (const i of state.instances) for (const p of [i.pids.proxy, i.pids.app]) if (p) groups.add(p);
  if (state.controlPlane.pid) groups.add(state.controlPlane.pid);
  const web = state.instances.find((i) => i.service === 'web')!;
  const local = web.upstreams?.['db.shop:5432'];
  assert.ok(local, `mesh.json lists the upstream port: ${JSON.stringify(web)}`);
  const r = await fetch(`http://127.0.0.1:${web.appPort}/call`);
  const body = (await r.json()) as { at: string; answer: string };
  assert.deepEqual(body, { at: `127.0.0.1:${local}`, answer: 'PONG db.shop for PING from web\n' });
  const proxyLog = readFileSync(join(stateDir, 'logs', 'web.shop.proxy.log'), 'utf8');
  assert.match(proxyLog, new RegExp(`upstreams=db\\.shop:5432=127\\.0\\.0\\.1:${local}`));
  process.kill(up.pid!, 'SIGINT');
  assert.equal(await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]), 0, out);
});
