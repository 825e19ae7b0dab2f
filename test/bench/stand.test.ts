/**
 * The bench's instruments for measurements it does not make itself:
 * stand.js leaves the bench's mesh and nginx pair running and says where
 * they are; sampler.js, preloaded into the sidecars, writes a sampling
 * heap profile (or, with TRELLIS_SAMPLE=cpu, a CPU profile) between two
 * SIGUSR2s; profile-top.js reads it per request. SIGINT stops everything stand.js started. Needs nginx (`.ci/run`
 * installs it); skipped here without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heapTop } from '../../bench/data-plane/profile-top.js';
import { ROOT } from '../helpers/mesh.js';

const DP = join(ROOT, 'dist', 'bench', 'data-plane');
const haveNginx = !spawnSync('nginx', ['-v']).error;
const needNginx = haveNginx || process.env.CI ? {} : { skip: 'nginx is not installed (apt-get install nginx)' };

function get(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, path: '/', headers: { host } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
    r.on('error', reject);
    r.end();
  });
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) Z /.test(spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout);

async function until<T>(f: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// What the alloc run saw a request allocate; the live run (after it) must keep less.
let allocatedPerRequest = 0;
for (const kind of ['alloc', 'live', 'cpu'] as const) {
test(`stand.js: the mesh and the nginx pair answer where it says; the preloaded sampler (${kind}) writes a profile of the window between two SIGUSR2s; SIGINT leaves no process`, needNginx, async () => {
  const allocDir = mkdtempSync(join(tmpdir(), 'sample-test-'));
  const child = spawn(process.execPath, [join(DP, 'stand.js')], {
    env: { ...process.env, TRELLIS_SAMPLE: kind, TRELLIS_SAMPLE_DIR: allocDir, NODE_OPTIONS: `--import=${join(DP, 'sampler.js')}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const bound = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const line = await until(() => (out.includes('\n') ? out.split('\n')[0] : undefined), 40_000, `stand.js's line (stderr: ${err})`);
    const where = JSON.parse(line) as { mesh: number; nginx: number; upstream: number; pids: Record<string, number> };
    assert.equal(await get(where.mesh, 'upstream:8080'), 200, 'through the two sidecars');
    assert.equal(await get(where.nginx, `127.0.0.1:${where.nginx}`), 200, 'through the two nginx hops');
    assert.equal(await get(where.upstream, `127.0.0.1:${where.upstream}`), 200, 'the upstream itself');

    const outbound = where.pids.outbound!;
    process.kill(outbound, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 300));
    const N = 50;
    for (let i = 0; i < N; i++) assert.equal(await get(where.mesh, 'upstream:8080'), 200);
    process.kill(outbound, 'SIGUSR2');
    const name = kind === 'cpu' ? `cpu.client.bench.${outbound}.cpuprofile` : `${kind}.client.bench.${outbound}.heapprofile`;
    const file = await until(() => readdirSync(allocDir).find((f) => f === name), 10_000, `the profile ${name}`);
    if (kind === 'alloc') {
      const report = heapTop(join(allocDir, file), 10, N);
      const perRequest = Number(/: (\d+) B\/req allocated \(50 requests\)/.exec(report)?.[1]);
      assert.ok(perRequest > 0, `no allocation per request in:\n${report}`);
      allocatedPerRequest = perRequest;
      assert.match(report, /trellis src\/proxy/, 'the proxy\'s own code allocates on the request path');
    } else if (kind === 'live') {
      // Only what survived a full collection at the stop: far less than all that the same traffic allocated.
      const report = heapTop(join(allocDir, file), 10, N);
      const kept = Number(/: (\d+) B\/req allocated \(50 requests\)/.exec(report)?.[1] ?? 0);
      assert.ok(allocatedPerRequest > 0, 'the alloc run went first and measured');
      assert.ok(kept < allocatedPerRequest / 2, `live kept ${kept} B/req of ${allocatedPerRequest} allocated:\n${report}`);
    } else {
      const p = JSON.parse(readFileSync(join(allocDir, file), 'utf8')) as { nodes: { callFrame: { url: string } }[]; samples: number[] };
      assert.ok(p.samples.length > 0, 'no samples');
      assert.ok(p.nodes.some((n) => n.callFrame.url.includes('/dist/src/proxy/')), 'the window saw none of the proxy\'s code');
    }

    child.kill('SIGINT');
    assert.equal(await exited, 0);
    const left = Object.entries(where.pids).filter(([, pid]) => alive(pid));
    assert.deepEqual(left, [], 'processes stand.js started are still running');
  } finally {
    clearTimeout(bound);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(allocDir, { recursive: true, force: true });
  }
});
}

test('stand.js: a bad flag, or no nginx on PATH, exits 2 saying what to do', () => {
  const r = spawnSync(process.execPath, [join(DP, 'stand.js'), '--security', 'sometimes'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--security takes one of mtls, plaintext \(not "sometimes"\)/);
  const noNginx = spawnSync(process.execPath, [join(DP, 'stand.js')], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
  assert.equal(noNginx.status, 2);
  assert.match(noNginx.stderr, /nginx is not installed\. On Debian: apt-get install nginx/);
  const help = spawnSync(process.execPath, [join(DP, 'stand.js'), '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--observability/);
});

test('profile-top: a heap profile is summed by function and by area, per request; a native frame is charged to the JavaScript above it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'heap-top-'));
  const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9, columnNumber: 0, scriptId: '1' });
  const profile = {
    head: {
      callFrame: frame('(root)', ''), selfSize: 0, id: 1, children: [
        { callFrame: frame('handle', 'file:///x/dist/src/proxy/fast-h1.js'), selfSize: 3000, id: 2, children: [
          { callFrame: frame('Map', ''), selfSize: 1000, id: 3, children: [] },
        ] },
        { callFrame: frame('emit', 'node:events'), selfSize: 1000, id: 4, children: [] },
      ],
    },
    samples: [],
  };
  const file = join(dir, 'x.heapprofile');
  writeFileSync(file, JSON.stringify(profile));
  const report = heapTop(file, 5, 10);
  assert.match(report, /: 500 B\/req allocated \(10 requests\)/);
  assert.match(report, /80\.0%\s+400 B\/req\s+trellis src\/proxy/, 'the native Map charged to the proxy\'s frame');
  assert.match(report, /20\.0%\s+100 B\/req\s+node events/);
  assert.match(report, /60\.0%\s+300 B\/req\s+handle dist\/src\/proxy\/fast-h1\.js:10/);
  const total = heapTop(file, 5, undefined);
  assert.match(total, /: 5 KiB allocated/);
  rmSync(dir, { recursive: true, force: true });
});

test('profile-top: --help explains and exits 0; an unknown flag or a file it cannot read is one line, not a stack trace', () => {
  const top = join(DP, 'profile-top.js');
  const help = spawnSync(process.execPath, [top, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--per REQUESTS/);
  const flag = spawnSync(process.execPath, [top, '--frobnicate', 'x.cpuprofile'], { encoding: 'utf8' });
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /^profile-top: unknown flag --frobnicate\n/);
  const missing = spawnSync(process.execPath, [top, '/nonexistent/x.cpuprofile'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^profile-top: \/nonexistent\/x\.cpuprofile: ENOENT/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');
});
