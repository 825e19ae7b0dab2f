/**
 * A quick sanity benchmark of the data plane (not a test, no assertions):
 * the same bounded loop of requests, direct to an app and through two data
 * planes (caller's outbound → callee's inbound → app), each in its own
 * process so that their CPU can be told apart.
 *
 *     npx tsc -p . && node dist/test/proxy/data-plane-bench.js [requests=5000] [concurrency=32]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { compile } from '../../src/compile/index.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';
import { withEndpoints } from '../helpers/proxy.js';

type Msg = { kind: 'ready'; address: string; inbound?: string; outbound?: string } | { kind: 'cpu'; user: number; system: number };

async function child(role: string): Promise<void> {
  const send = (m: Msg) => process.send!(m);
  process.on('message', (m: { kind: string; snapshot?: Snapshot; appPort?: number }) => {
    if (m.kind === 'exit') process.exit(0);
    if (m.kind === 'cpu') { const c = process.cpuUsage(); send({ kind: 'cpu', user: c.user, system: c.system }); }
    if (m.kind === 'proxy') {
      const dp = createDataPlane({ mode: 'sidecar', ...(m.appPort ? { appPort: m.appPort } : {}) });
      void dp.start().then((a) => {
        const r = dp.apply(m.snapshot!);
        if (!r.ok) throw new Error(r.reason);
        send({ kind: 'ready', address: a.admin, inbound: a.inbound!, outbound: a.outbound! });
      });
    }
  });
  if (role === 'app') {
    const body = Buffer.from('{"ok":true}');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }); res.end(body); });
    });
    server.listen(0, '127.0.0.1', () => send({ kind: 'ready', address: `127.0.0.1:${(server.address() as AddressInfo).port}` }));
  }
}

function start(role: string, init?: object): Promise<{ p: ChildProcess; ready: Extract<Msg, { kind: 'ready' }> }> {
  // BENCH_PROF=<dir> writes a CPU profile of each child there.
  const prof = process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  const p = fork(fileURLToPath(import.meta.url), [role], { stdio: 'inherit', execArgv: prof });
  return new Promise((resolve) => {
    p.once('message', (m: Msg) => resolve({ p, ready: m as Extract<Msg, { kind: 'ready' }> }));
    if (init) p.send(init);
  });
}

const cpuOf = (p: ChildProcess) => new Promise<number>((resolve) => {
  p.once('message', (m: Msg) => resolve(m.kind === 'cpu' ? (m.user + m.system) / 1000 : NaN));
  p.send({ kind: 'cpu' });
});

async function load(origin: string, path: string, host: string, n: number, concurrency: number): Promise<{ ms: number; p50: number; p99: number; failed: number }> {
  const pool = new Pool(origin, { connections: concurrency });
  const lat: number[] = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      const s = performance.now();
      const r = await pool.request({ path, method: 'GET', headers: { host } });
      await r.body.dump();
      if (r.statusCode !== 200) failed++;
      lat.push(performance.now() - s);
    }
  }));
  const ms = performance.now() - t0;
  await pool.close();
  lat.sort((a, b) => a - b);
  return { ms, p50: lat[Math.floor(lat.length / 2)]!, p99: lat[Math.floor(lat.length * 0.99)]!, failed };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 5000);
  const c = Number(process.argv[3] ?? 32);
  const mesh = meshFromYaml(TWO_SERVICES);
  const app = await start('app');
  const appPort = Number(app.ready.address.split(':')[1]);
  const callee = await start('proxy', { kind: 'proxy', appPort, snapshot: compile(mesh.config, mesh.registry, { workload: 'api-v2', namespace: 'shop' }) });
  const [addr, port] = callee.ready.inbound!.split(':');
  const callerSnap = withEndpoints(compile(mesh.config, mesh.registry, { workload: 'web-v1', namespace: 'shop' }), { 'api-v2.shop': { address: addr!, port: Number(port), health: 'HEALTHY' } });
  const caller = await start('proxy', { kind: 'proxy', snapshot: callerSnap });
  const runs: [string, string, string, string][] = [
    ['direct', `http://${app.ready.address}`, '/', 'api'],
    ['two data planes', `http://${caller.ready.outbound}`, 'http://api/', 'api'],
  ];
  for (const [name, origin, path, host] of runs) {
    await load(origin, path, host, Math.min(1000, n), c); // warm-up
    const before = await Promise.all([app.p, caller.p, callee.p].map(cpuOf));
    const r = await load(origin, path, host, n, c);
    const after = await Promise.all([app.p, caller.p, callee.p].map(cpuOf));
    const cpu = after.map((a, i) => a - before[i]!);
    console.log(`${name.padEnd(16)} ${n} requests, concurrency ${c}: ${(n / (r.ms / 1000)).toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, failed ${r.failed}; ` +
      `CPU ms: app ${cpu[0]!.toFixed(0)}, caller proxy ${cpu[1]!.toFixed(0)} (${(cpu[1]! * 1000 / n).toFixed(0)} µs/req), callee proxy ${cpu[2]!.toFixed(0)} (${(cpu[2]! * 1000 / n).toFixed(0)} µs/req)`);
  }
  for (const x of [app, caller, callee]) x.p.send({ kind: 'exit' });
}

const role = process.argv[2];
if (role === 'app' || role === 'proxy') void child(role);
else void main();
