/**
 * `node dist/bench/data-plane/crossover.js [--parts all|log,trace,metrics] [--pairs N] [--duration S] [--json]`:
 * what the access log, tracing and the service metrics cost a sidecar,
 * measured in the same processes, crossed.
 *
 * A goal ratio between two meshes is good to about ±10 % on this kind of
 * machine (docs/benchmark.md): a process's speed is partly drawn when it
 * starts, and the machine's speed drifts from second to second. Both cancel
 * in a crossover: two meshes (A and B) start with everything on; in each
 * pair of steps both are loaded at max at the same time, first A with the
 * parts on and B with them off, then the other way round: the access log and
 * tracing by removing the MeshConfig from the config directory (which the
 * control plane watches), the service metrics by adding a mesh-wide
 * Telemetry that turns them all off (so that with all three off a sidecar
 * makes no request records, as in the bench's mesh-bare). For a pair,
 *
 *   on ÷ off = √((A_on × B_on) ÷ (A_off × B_off))
 *
 * where each figure is the CPU per request of a mesh's two sidecars in one
 * step: each mesh is compared with itself (its draw cancels), and the
 * machine's drift falls on both halves of each step alike. Parts not
 * switched: the access log and tracing off, the service metrics on. Before
 * a step is measured, every sidecar's applied snapshot (admin /config_dump)
 * has the parts on or off as asked; after it,
 * a mesh's access log grew, its collector received spans, and its caller's
 * trellis_requests_total grew, exactly when those parts were on (spans:
 * unless sampling is 0).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Children } from './children.js';
import { Collector } from './collector.js';
import { runLoad } from './h2load.js';
import { meshConfig, nodeFlagsOf, startMesh, TRACE_SAMPLING_PERCENT, TRELLIS_MAIN, UPSTREAM_AUTHORITY, type Mesh } from './mesh.js';
import { startUpstream } from './nginx.js';
import { groupCpu } from './proc-stats.js';
import { httpGet, pollUntil } from '../../src/cli/up/http-probe.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';

const PART_NAMES = ['log', 'trace', 'metrics'] as const;
type Part = (typeof PART_NAMES)[number];
type Parts = ReadonlySet<Part>;

/** `all`, or a comma-separated list of parts. */
function partsArg(v: string): Parts {
  if (v === 'all') return new Set(PART_NAMES);
  const names = v.split(',').map((x) => x.trim());
  const bad = names.filter((n) => !(PART_NAMES as readonly string[]).includes(n));
  if (bad.length > 0) throw new UsageError(`--parts takes all, or a comma-separated list of ${PART_NAMES.join(', ')} (not "${v}")`);
  return new Set(names as Part[]);
}

/** Mesh-wide: every standard metric off on both sides (the off state of the metrics part). */
const METRICS_OFF = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: crossover-metrics-off, namespace: istio-system }
spec:
  metrics:
  - providers: [{ name: prometheus }]
    overrides: [{ match: { metric: ALL_METRICS, mode: CLIENT_AND_SERVER }, disabled: true }]
`;

const USAGE = `node dist/bench/data-plane/crossover.js [flags]

What the access log, tracing (${TRACE_SAMPLING_PERCENT} % sampled) and the service metrics cost the
bench's two sidecars, in the same processes: two meshes loaded at max at the
same time, one with the parts on and the other with them off, then swapped;
each pair of steps gives on ÷ off = sqrt((A_on x B_on) / (A_off x B_off)), in
which each process's start-up draw and the machine's drift cancel. Parts not
switched: the access log and tracing off, the service metrics on.
Needs nginx and h2load: apt-get install nginx nghttp2-client

  --parts P       all (the default: the access log, tracing and the service
                  metrics, what the bench's mesh-observed adds to mesh-bare),
                  or a comma-separated list of log, trace, metrics
  --pairs N       pairs of steps (default 5); the median and the spread are printed
  --duration S    seconds of measured load per step (default 4)
  --warmup S      seconds of load before each step is measured (default 1)
  --sampling P    percent of traces sampled while tracing is on (default ${TRACE_SAMPLING_PERCENT}); 0
                  leaves the trace context on every request and exports nothing
  --build DIR     run the control planes and sidecars of another Trellis build
                  (a checkout or git worktree, built): its own figure, to set
                  beside this build's from a run just before or after
  --json          one JSON document instead of lines
  --help          this text
`;

class UsageError extends Error {}

interface Settings {
  readonly parts: Parts;
  readonly pairs: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly sampling: number;
  /** Another build's CLI (`<dir>/dist/src/cli/main.js`), when --build names one. */
  readonly build?: { readonly dir: string; readonly main: string };
  readonly json: boolean;
}

function settings(argv: string[]): Settings | 'help' {
  const options = { parts: { type: 'string' }, pairs: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' }, sampling: { type: 'string' }, build: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
  let v: ReturnType<typeof parseArgs<{ args: string[]; strict: true; options: typeof options }>>['values'];
  try {
    v = parseArgs({ args: argv, strict: true, options }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (v.help) return 'help';
  const parts = partsArg(v.parts ?? 'all');
  const num = (flag: string, given: string | undefined, fallback: number, min: number) => {
    const n = given === undefined ? fallback : Number(given);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${flag} takes a number of at least ${min} (not "${given}")`);
    return n;
  };
  let build: Settings['build'];
  if (v.build !== undefined) {
    const dir = resolve(v.build);
    const main = join(dir, 'dist', 'src', 'cli', 'main.js');
    if (!existsSync(main)) throw new UsageError(`--build ${v.build}: ${main} is missing; give a Trellis checkout or worktree after npm ci && npm run build`);
    build = { dir, main };
  }
  return {
    ...(build ? { build } : {}),
    parts, pairs: Math.round(num('pairs', v.pairs, 5, 1)), durationMs: num('duration', v.duration, 4, 0.5) * 1000,
    warmupMs: num('warmup', v.warmup, 1, 0) * 1000, sampling: Math.min(100, num('sampling', v.sampling, TRACE_SAMPLING_PERCENT, 0)), json: v.json ?? false,
  };
}

/** One mesh of the two: its processes, its MeshConfig file, and its collector. */
interface Side {
  readonly name: 'A' | 'B';
  readonly mesh: Mesh;
  readonly collector: Collector;
  readonly configFile: string;
  readonly config: string;
  /** Where the Telemetry that turns the service metrics off goes while they are off. */
  readonly metricsOffFile: string;
}

/** Load on both meshes before the first pair. */
const INITIAL_WARMUP_MS = 3000;

/** How long the control plane and the sidecars get to apply a swapped MeshConfig. */
const SETTLE_MS = 10_000;

/** What a side is to run with in a step: each part on or off. */
interface State { readonly log: boolean; readonly trace: boolean; readonly metrics: boolean }

/** Waits until both sidecars of a side have applied a snapshot with the parts on or off as asked. */
async function applied(s: Side, want: State): Promise<void> {
  const r = await pollUntil(async () => {
    for (const admin of s.mesh.admin) {
      const snap = (JSON.parse((await httpGet(`http://${admin}/config_dump`, 5000)).body) as { snapshot: Snapshot | null }).snapshot;
      const mesh = snap?.mesh;
      if ((mesh?.accessLogFile !== undefined) !== want.log || (mesh?.tracing !== undefined) !== want.trace || (snap?.metrics === undefined) !== want.metrics) return `http://${admin}/config_dump`;
    }
    return true;
  }, { timeoutMs: SETTLE_MS, intervalMs: 100 });
  if (!r.ok) {
    const said = `access log ${want.log ? 'on' : 'off'}, tracing ${want.trace ? 'on' : 'off'}, service metrics ${want.metrics ? 'on' : 'off'}`;
    throw new Error(`mesh ${s.name}: its sidecars did not apply the swapped configuration (${said}) within ${SETTLE_MS} ms`);
  }
}

/** The requests the caller's sidecar has counted in trellis_requests_total (0 while the metrics are off: their series are not shown). */
async function requestsCounted(s: Side): Promise<number> {
  const text = (await httpGet(`http://${s.mesh.admin[0]}/metrics`, 5000)).body;
  let n = 0;
  for (const m of text.matchAll(/^trellis_requests_total\{[^}]*\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}

/** The CPU per request (µs) of a side's two sidecars over one measured run of both sides at once. */
async function step(children: Children, sides: readonly [Side, Side], on: readonly [boolean, boolean], o: Settings, dir: string): Promise<[number, number]> {
  const log = o.parts.has('log');
  const trace = o.parts.has('trace');
  const metrics = o.parts.has('metrics');
  // Parts not switched: the access log and tracing off (no MeshConfig names them), the service metrics on.
  sides.forEach((s, i) => {
    if (on[i] && (log || trace)) {
      writeFileSync(s.configFile, s.config);
      // A log that grows for the whole run costs more to append to (seen here); each on-step starts it empty.
      if (log && s.mesh.accessLog && existsSync(s.mesh.accessLog)) truncateSync(s.mesh.accessLog);
    } else {
      rmSync(s.configFile, { force: true });
    }
    if (metrics && !on[i]) writeFileSync(s.metricsOffFile, METRICS_OFF);
    else rmSync(s.metricsOffFile, { force: true });
  });
  await Promise.all(sides.map((s, i) => applied(s, { log: on[i]! && log, trace: on[i]! && trace, metrics: on[i]! || !metrics })));
  const targets = sides.map((s) => ({ port: s.mesh.entryPort, authority: UPSTREAM_AUTHORITY }));
  if (o.warmupMs > 0) await Promise.all(targets.map((t, i) => runLoad(children, t, 'max', o.warmupMs, join(dir, `warmup.${i}.log`))));
  const logSize = (s: Side) => (s.mesh.accessLog ? statSync(s.mesh.accessLog, { throwIfNoEntry: false })?.size ?? 0 : 0);
  const counted = await Promise.all(sides.map(requestsCounted));
  const before = sides.map((s, i) => ({ cpu: [s.mesh.outbound, s.mesh.inbound].map((c) => groupCpu(c.pgid)), log: logSize(s), spans: s.collector.spans, counted: counted[i]! }));
  const loads = await Promise.all(targets.map((t, i) => runLoad(children, t, 'max', o.durationMs, join(dir, `load.${i}.log`))));
  children.checkAlive();
  const perRequest = sides.map((s, i) => {
    const cpu = [s.mesh.outbound, s.mesh.inbound].map((c, k) => {
      const now = groupCpu(c.pgid);
      return now.user + now.sys - before[i]!.cpu[k]!.user - before[i]!.cpu[k]!.sys;
    });
    return (cpu[0]! + cpu[1]!) / Math.max(1, loads[i]!.ok);
  });
  // Spans leave in batches, at least every second: wait for the last ones before checking.
  await new Promise((r) => setTimeout(r, 1500));
  const countedAfter = await Promise.all(sides.map(requestsCounted));
  sides.forEach((s, i) => {
    const counting = countedAfter[i]! > before[i]!.counted;
    if (counting !== (on[i]! || !metrics)) throw new Error(`mesh ${s.name}: its caller's trellis_requests_total ${counting ? 'grew' : 'did not grow'} while the service metrics were ${on[i] || !metrics ? 'on' : 'off'}`);
    const grew = logSize(s) > before[i]!.log;
    const spans = s.collector.spans > before[i]!.spans;
    const state = on[i] ? 'on' : 'off';
    if (log && grew !== on[i]) throw new Error(`mesh ${s.name}: its access log ${grew ? 'grew' : 'did not grow'} while the parts were ${state}`);
    if (!log && grew) throw new Error(`mesh ${s.name}: its access log grew while only tracing was switched`);
    if (trace && o.sampling > 0 && spans !== on[i]) throw new Error(`mesh ${s.name}: its collector ${spans ? 'received' : 'received no'} spans while the parts were ${state}`);
    if ((!trace || o.sampling === 0) && spans) throw new Error(`mesh ${s.name}: its collector received spans while ${trace ? 'no trace was sampled' : 'only the access log was switched'}`);
    if (loads[i]!.errors > 0) throw new Error(`mesh ${s.name}: ${loads[i]!.errors} requests failed in a measured run`);
  });
  return [perRequest[0]!, perRequest[1]!];
}

interface Pair {
  /** CPU per request (µs, both sidecars) of each mesh with the parts on and off. */
  readonly aOn: number; readonly aOff: number; readonly bOn: number; readonly bOff: number;
  /** √((A_on × B_on) ÷ (A_off × B_off)). */
  readonly ratio: number;
}

const pairOf = (aOn: number, bOff: number, aOff: number, bOn: number): Pair => ({ aOn, aOff, bOn, bOff, ratio: Math.sqrt((aOn * bOn) / (aOff * bOff)) });

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(argv: string[]): Promise<number> {
  let o: Settings;
  try {
    const s = settings(argv);
    if (s === 'help') { process.stdout.write(USAGE); return 0; }
    o = s;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`crossover: ${e.message}\n${USAGE}`);
    return 2;
  }
  const missing = [spawnSync('nginx', ['-v']).error ? 'nginx' : '', spawnSync('h2load', ['--version']).error ? 'h2load (nghttp2-client)' : ''].filter(Boolean);
  if (missing.length) { process.stderr.write(`crossover: needs ${missing.join(' and ')}. On Debian: apt-get install nginx nghttp2-client\n`); return 2; }
  if (!existsSync(TRELLIS_MAIN)) { process.stderr.write(`crossover: ${TRELLIS_MAIN} is missing: run npm run build first\n`); return 2; }
  const say = (s: string) => process.stderr.write(`crossover: ${s}\n`);
  const children = new Children();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-crossover-'));
  const stop = () => { void children.stopAll(2000).then(() => process.exit(130)); };
  process.once('SIGINT', stop);
  try {
    const up = await startUpstream(children, join(dir, 'upstream'));
    const sides: Side[] = [];
    const build = o.build ? { main: o.build.main, nodeFlags: await nodeFlagsOf(o.build.dir) } : {};
    if (o.build) say(`the meshes run ${o.build.main}`);
    for (const name of ['A', 'B'] as const) {
      const collector = new Collector();
      const collectorPort = await collector.start();
      const meshDir = join(dir, `mesh-${name}`);
      const mesh = await startMesh(children, { dir: meshDir, upstreamPort: up.port, observability: 'all', collectorPort, ...build });
      // The MeshConfig of the on state: the access log and tracing, those of them that are switched.
      const config = meshConfig(o.parts.has('log') ? mesh.accessLog : undefined, o.parts.has('trace') ? collectorPort : undefined, o.sampling);
      sides.push({ name, mesh, collector, configFile: join(meshDir, 'config', 'mesh.yaml'), config, metricsOffFile: join(meshDir, 'config', 'crossover-metrics-off.yaml') });
      say(`mesh ${name} is up`);
    }
    const pair = sides as unknown as readonly [Side, Side];
    // New processes run their first seconds slower (the JIT, the heap growing): both meshes warm up first, everything on.
    say(`warming up both meshes (${INITIAL_WARMUP_MS} ms at max)`);
    await Promise.all(pair.map((s, i) => runLoad(children, { port: s.mesh.entryPort, authority: UPSTREAM_AUTHORITY }, 'max', INITIAL_WARMUP_MS, join(dir, `first.${i}.log`))));
    const pairs: Pair[] = [];
    for (let p = 1; p <= o.pairs; p++) {
      say(`pair ${p}/${o.pairs}: A on, B off`);
      const [aOn, bOff] = await step(children, pair, [true, false], o, dir);
      say(`pair ${p}/${o.pairs}: A off, B on`);
      const [aOff, bOn] = await step(children, pair, [false, true], o, dir);
      const r = pairOf(aOn, bOff, aOff, bOn);
      pairs.push(r);
      if (!o.json) {
        process.stdout.write(`pair ${p}: A ${aOn.toFixed(1)} on / ${aOff.toFixed(1)} off, B ${bOn.toFixed(1)} on / ${bOff.toFixed(1)} off µs a request (both sidecars): on ÷ off ${r.ratio.toFixed(3)}\n`);
      }
    }
    const ratios = pairs.map((x) => x.ratio);
    const summary = { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
    if (o.json) {
      process.stdout.write(`${JSON.stringify({ ...(o.build ? { build: o.build.dir } : {}), parts: PART_NAMES.filter((p) => o.parts.has(p)), sampling_percent: o.sampling, duration_s: o.durationMs / 1000, pairs, ...summary })}\n`);
    } else {
      const tracing = `tracing (${o.sampling} % sampled)`;
      const names = { log: 'the access log', trace: tracing, metrics: 'the service metrics' } as const;
      const list = PART_NAMES.filter((p) => o.parts.has(p)).map((p) => names[p]);
      const what = list.length > 1 ? `${list.slice(0, -1).join(', ')} and ${list.at(-1)}` : list[0]!;
      process.stdout.write(`${what} on ÷ off, CPU per request in the same sidecars: ${summary.median.toFixed(3)}× (${summary.min.toFixed(3)}–${summary.max.toFixed(3)} over ${pairs.length} pair${pairs.length > 1 ? 's' : ''})\n`);
    }
    return 0;
  } catch (e) {
    process.stderr.write(`crossover: ${(e as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', stop);
    await children.stopAll(5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main(process.argv.slice(2));
