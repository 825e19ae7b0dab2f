/**
 * `npm run bench [-- flags]`: the data-plane benchmark (issue 5). Over
 * loopback, three ways from the load generator (h2load) to one fast upstream
 * (nginx, a fixed 1 KiB body), HTTP/1.1 keep-alive:
 *
 *   direct  h2load → upstream
 *   mesh    h2load → `trellis proxy` client.bench (outbound listener)
 *                  → `trellis proxy` upstream.bench (inbound) → upstream,
 *           configured by a real `trellis control-plane`
 *   nginx   h2load → nginx → nginx → upstream (the same two hops, done by a
 *           native proxy configured as a fair peer)
 *   mesh-bare, mesh-observed
 *           the mesh with observability as far off as it goes, and with all of
 *           it on (metrics, a JSON access log, 1 % of requests traced to a
 *           collector the bench runs): the cost of observability (mesh.ts)
 *   mesh-log, mesh-trace
 *           (only when asked for) the mesh with the access log alone, with
 *           tracing alone: what each part of mesh-observed costs (`mesh` has
 *           the service metrics alone)
 *   mesh-ratelimit-local, mesh-ratelimit-global
 *           the mesh with a RateLimitPolicy on the upstream far above the load
 *           (never refuses), local to the sidecar or global in a Redis the
 *           bench runs (redis.ts): what a rate-limit decision costs
 *
 * each in two modes: `max` (32 connections, closed loop: throughput and CPU
 * per request) and `rate` (1 000 requests/s: latency). For each: req/s,
 * p50/p90/p99, errors, and for every proxy process its CPU per request
 * (user + sys from /proc over the round ÷ requests) and its peak RSS. Every
 * scenario is warmed up first (Node's JIT), then measured in several rounds,
 * interleaved so that the machine's drift hits all of them alike; the
 * figures are medians with the spread (min–max) beside them.
 *
 * How to read it: absolute numbers drift on a shared 2-core machine; the
 * ratios at the end (sidecar vs nginx, observed vs bare, in the same run) are
 * what the goals are about. Everything runs on one machine, the load
 * generator included, so `max` is bounded by the 2 cores together, not by one
 * proxy alone.
 * docs/benchmark.md explains the figures and the JSON document.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PROXY_NODE_FLAGS } from '../../src/cli/proxy-process.js';
import { Children, type Child } from './children.js';
import { Collector } from './collector.js';
import { RATE_RPS, runLoad, type LoadTarget, type Mode } from './h2load.js';
import { checkObservability, nodeFlagsOf, checkRateLimit, checkResilient, partsOf, startMesh, TRACE_SAMPLING_PERCENT, TRELLIS_MAIN, UPSTREAM_AUTHORITY, type Observability } from './mesh.js';
import { REDIS_INSTALL, redisVersion, startRedis, type Redis } from './redis.js';
import { hopPki, startHop, startUpstream, type Nginx } from './nginx.js';
import { CLK_TCK, groupCpu, sampleRss } from './proc-stats.js';
import { aggregate, BASELINE_SUFFIX, goals, table, type RunSample } from './report.js';

const SCENARIOS = ['direct', 'mesh', 'mesh-plaintext', 'mesh-resilient', 'mesh-bare', 'mesh-log', 'mesh-trace', 'mesh-observed', 'mesh-ratelimit-local', 'mesh-ratelimit-global', 'nginx'] as const;
/** Run when asked for only: the parts of mesh-observed one at a time. */
const ON_REQUEST: readonly string[] = ['mesh-log', 'mesh-trace'];
type ScenarioName = (typeof SCENARIOS)[number];
/** The mesh scenarios and what their sidecars observe. */
const MESHES: Partial<Record<ScenarioName, Observability>> = {
  mesh: 'default', 'mesh-plaintext': 'default', 'mesh-resilient': 'default', 'mesh-bare': 'off', 'mesh-observed': 'all', 'mesh-log': 'log', 'mesh-trace': 'trace',
  'mesh-ratelimit-local': 'default', 'mesh-ratelimit-global': 'default',
};
/** The mesh scenarios with a RateLimitPolicy, and its scope. */
const RATE_LIMITED: Partial<Record<ScenarioName, 'local' | 'global'>> = { 'mesh-ratelimit-local': 'local', 'mesh-ratelimit-global': 'global' };
const ALL_MODES: readonly Mode[] = ['max', 'rate'];
/** On Debian 12 `nginx-light` is only a transitional package that pulls in `nginx`; later releases dropped it. */
const INSTALL = 'apt-get install nginx nghttp2-client';

const HELP = `npm run bench [-- flags]   (or: node dist/bench/data-plane/main.js [flags])

The data-plane benchmark: direct, through two trellis sidecars (mesh), and
through two nginx proxies (nginx), each at max load (32 connections) and at
${RATE_RPS} requests/s. The cost of observability: the two sidecars with it as
far off as it goes (mesh-bare: no service metrics, access log or tracing), and
with all of it on (mesh-observed: service metrics, a JSON access log, and
${TRACE_SAMPLING_PERCENT} % of requests traced to a collector the bench runs). The cost of a
rate limit that never triggers: local to the sidecar (mesh-ratelimit-local) or
global in a Redis the bench starts (mesh-ratelimit-global). Prints a table (or
one JSON document with --json) of req/s, p50/p90/p99, errors, and each proxy's
CPU per request and RSS, with the goal ratios of issues 5 and 7.
Needs nginx and h2load: ${INSTALL}; mesh-ratelimit-global needs redis-server: ${REDIS_INSTALL}

  --json             print one JSON document (docs/benchmark.md) instead of the table
  --rounds N         measured rounds per scenario and mode (default 5)
  --duration S       seconds per measured run (default 5)
  --scenarios a,b    which of ${SCENARIOS.join(',')}
                     (default all but ${ON_REQUEST.join(' and ')}: the access log alone, tracing alone)
  --modes a,b        which of ${ALL_MODES.join(',')} (default both): max alone is enough for CPU per request
  --quick            1 round of 1 s each after a 0.5 s warm-up (the shape test uses it)
  --together         run a round's scenarios at the same time, each with its own
                     h2load, instead of one after the other: the machine's
                     noise then falls on all of them alike, and the ratios
                     paired by round compare runs of the same seconds (req/s
                     and latency are then those of a shared machine)
  --warmup S         seconds of load at max before a scenario is measured
                     (default 3; with --fresh, every round warms up again)
  --fresh            start every proxy (and control plane) anew for each round:
                     a process's speed is partly a draw made when it starts (the
                     same code in two meshes differs by up to ±10 % here), which
                     rounds in the same processes cannot average out
  --baseline DIR     another Trellis build (a checkout or git worktree, built):
                     every mesh scenario also runs from it, as <scenario>@baseline,
                     and a last line gives this build's CPU per request ÷ the
                     baseline's (best with --together --fresh)
  --profile DIR      run the sidecars under node --cpu-prof, profiles written to DIR on exit
                     (the CPU figures then include the profiler's cost)
  --help             this text`;

class UsageError extends Error {}

interface Settings {
  readonly json: boolean;
  readonly rounds: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly scenarios: readonly ScenarioName[];
  readonly modes: readonly Mode[];
  /** Every round runs its scenarios at the same time, each with its own h2load. */
  readonly together: boolean;
  /** Every round starts the proxies and control planes anew. */
  readonly fresh: boolean;
  /** Another build's CLI (`<dir>/dist/src/cli/main.js`): every mesh scenario runs from it too, as `<scenario>@baseline`. */
  readonly baseline?: { readonly dir: string; readonly main: string };
  readonly profileDir?: string;
}

/** A flag's comma-separated list, each item one of `allowed` (kept in `allowed`'s order); `fallback` when the flag is absent. */
function listOf<T extends string>(flag: string, given: string | undefined, allowed: readonly T[], fallback: readonly T[]): readonly T[] {
  if (given === undefined) return fallback;
  const items = given.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = items.filter((i) => !(allowed as readonly string[]).includes(i));
  if (unknown.length || items.length === 0) throw new UsageError(`${flag} takes a list of ${allowed.join(', ')}; unknown: "${unknown.join(',') || given}"`);
  return allowed.filter((a) => items.includes(a));
}

/** `--baseline DIR`: a built Trellis (a checkout or worktree after `npm ci && npm run build`). */
function baselineOf(given: string): { dir: string; main: string } {
  const dir = resolve(given);
  const main = join(dir, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(main)) throw new UsageError(`--baseline ${given}: ${main} is missing; --baseline takes another Trellis build (a checkout or git worktree after npm ci && npm run build)`);
  if (main === TRELLIS_MAIN) throw new UsageError(`--baseline ${given} is this build: give another one`);
  return { dir, main };
}

function settings(argv: string[]): Settings | 'help' {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' }, rounds: { type: 'string' }, duration: { type: 'string' }, scenarios: { type: 'string' }, modes: { type: 'string' },
        quick: { type: 'boolean' }, together: { type: 'boolean' }, fresh: { type: 'boolean' }, warmup: { type: 'string' }, baseline: { type: 'string' }, profile: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (see --help)`);
  }
  if (v.help) return 'help';
  const rounds = Number(v.rounds ?? (v.quick ? 1 : 5));
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new UsageError(`--rounds takes a whole number from 1 to 100, not "${v.rounds}"`);
  const duration = Number(v.duration ?? (v.quick ? 1 : 5));
  if (!(duration >= 0.2 && duration <= 600)) throw new UsageError(`--duration takes seconds from 0.2 to 600, not "${v.duration}"`);
  const warmup = Number(v.warmup ?? (v.quick ? 0.5 : 3));
  if (!(warmup >= 0.2 && warmup <= 600)) throw new UsageError(`--warmup takes seconds from 0.2 to 600, not "${v.warmup}"`);
  const names = listOf('--scenarios', v.scenarios, SCENARIOS, SCENARIOS.filter((n) => !ON_REQUEST.includes(n)));
  const modes = listOf('--modes', v.modes, ALL_MODES, ALL_MODES);
  return {
    json: v.json ?? false,
    rounds,
    durationMs: duration * 1000,
    warmupMs: warmup * 1000,
    scenarios: names,
    modes,
    together: v.together ?? false,
    fresh: v.fresh ?? false,
    ...(v.baseline !== undefined ? { baseline: baselineOf(v.baseline) } : {}),
    ...(v.profile ? { profileDir: resolve(v.profile) } : {}),
  };
}

/** A tool's version line, or undefined when it is not installed. */
function version(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return undefined;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0];
}

function preflight(scenarios: readonly ScenarioName[]): { nginx: string; h2load: string; redis?: string } {
  const nginx = version('nginx', ['-v']);
  const h2load = version('h2load', ['--version']);
  const needsRedis = scenarios.some((s) => RATE_LIMITED[s] === 'global');
  const redis = needsRedis ? redisVersion() : undefined;
  const missing = [nginx ? '' : 'nginx', h2load ? '' : 'h2load (nghttp2-client)', needsRedis && !redis ? 'redis-server' : ''].filter(Boolean);
  if (missing.length) {
    const install = `${nginx && h2load ? 'apt-get install' : INSTALL}${needsRedis && !redis ? ` ${REDIS_INSTALL.replace('apt-get install ', '')}` : ''}`;
    const note = nginx ? '' : " (Debian 12's nginx-light is only a transitional package for nginx; later releases have no nginx-light)";
    throw new UsageError(`the data-plane bench needs ${missing.join(' and ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed. On Debian: ${install}${note}`);
  }
  if (!existsSync('/proc/self/stat')) throw new UsageError('the data-plane bench reads CPU time and RSS from /proc: it runs on Linux only');
  if (!existsSync(TRELLIS_MAIN)) throw new UsageError(`${TRELLIS_MAIN} is missing: run npm run build first`);
  return { nginx: nginx!, h2load: h2load!, ...(redis ? { redis } : {}) };
}

interface Scenario {
  /** A scenario's name, with `@baseline` for one run from the baseline build. */
  readonly name: string;
  readonly target: LoadTarget;
  readonly proxies: readonly { readonly name: string; readonly child: Child }[];
  /** Fails unless the scenario is what it claims (run after its warm-up). */
  readonly check?: () => Promise<void>;
  /** What --fresh stops before a round starts the scenario anew (its control plane and proxies). */
  readonly processes?: readonly Child[];
}

/**
 * One run of each of `ss` at the same time, each with its own load generator
 * (one scenario alone: the usual run). CPU per request is each group's CPU
 * over the same window ÷ its own answered requests; the upstream, which the
 * scenarios share, is charged its CPU ÷ all of their requests.
 */
async function measure(children: Children, ss: readonly Scenario[], upstream: Nginx, mode: Mode, ms: number, logFile: string): Promise<RunSample[]> {
  const groups = [...ss.flatMap((s) => s.proxies.map((p) => p.child.pgid)), upstream.child.pgid];
  const before = groups.map(groupCpu);
  const rss = sampleRss(groups);
  const loads = await Promise.all(ss.map((s, i) => runLoad(children, s.target, mode, ms, ss.length === 1 ? logFile : `${logFile}.${i}`)));
  const peak = rss.stop();
  const cpu = groups.map((g, i) => {
    const now = groupCpu(g);
    return { user: now.user - before[i]!.user, sys: now.sys - before[i]!.sys };
  });
  children.checkAlive();
  const sample = (name: string, i: number, requests: number) => {
    const per = (us: number) => us / Math.max(1, requests);
    return { name, cpuUsPerReq: per(cpu[i]!.user + cpu[i]!.sys), sysUsPerReq: per(cpu[i]!.sys), rssBytes: peak[i]! };
  };
  const upstreamSample = sample('upstream', groups.length - 1, loads.reduce((n, l) => n + l.ok, 0));
  let at = 0;
  return ss.map((s, k) => {
    const load = loads[k]!;
    const proxies = s.proxies.map((p) => sample(p.name, at++, load.ok));
    return { scenario: s.name, mode, rps: load.rps, errors: load.errors, p50Ms: load.p50Ms, p90Ms: load.p90Ms, p99Ms: load.p99Ms, proxies, upstream: upstreamSample };
  });
}

async function run(o: Settings, tools: { nginx: string; h2load: string; redis?: string }, children: Children, dir: string): Promise<void> {
  const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const upstream = await startUpstream(children, join(dir, 'upstream'));
  // A trace collector per scenario that traces (its spans are its own), in this process, unref'd: an error anywhere
  // ends the bench with process.exit, and the collectors with it.
  const collectors = new Map<string, { readonly collector: Collector; readonly port: number }>();
  // The scenarios to run: each named one, and after each mesh its baseline twin (--baseline).
  const runNames = o.scenarios.flatMap((n) => (o.baseline && MESHES[n] ? [n, `${n}${BASELINE_SUFFIX}`] : [n]));
  /** mesh-observed's access logs: one per mesh started (with --fresh, one per round). */
  const accessLogs: string[] = [];
  // One Redis for the global limit, started with the other children and stopped with them.
  let redis: Redis | undefined;
  const baselineFlags = o.baseline ? await nodeFlagsOf(o.baseline.dir) : undefined;
  // With --fresh, each round's processes are new: `generation` names their directories.
  const start = async (generation: number): Promise<Scenario[]> => {
    const scenarios: Scenario[] = [];
    const at = (name: string) => join(dir, generation === 0 ? name : `${name}.${generation}`);
    for (const run of runNames) {
      const name = run.replace(BASELINE_SUFFIX, '') as ScenarioName;
      const fromBaseline = run !== name;
      if (name === 'direct') scenarios.push({ name, target: { port: upstream.port, authority: `127.0.0.1:${upstream.port}` }, proxies: [] });
      const observability = MESHES[name];
      if (observability) {
        // One collector per scenario for the whole run (--fresh meshes send to the same one).
        if (!collectors.has(run) && partsOf(observability).trace) {
          const c = new Collector();
          collectors.set(run, { collector: c, port: await c.start() });
        }
        const collector = collectors.get(run)?.collector;
        const collectorPort = collectors.get(run)?.port;
        const rateLimit = RATE_LIMITED[name];
        if (rateLimit === 'global') redis ??= await startRedis(children);
        const m = await startMesh(children, {
          dir: at(run), upstreamPort: upstream.port, observability, security: name === 'mesh-plaintext' ? 'plaintext' : 'mtls', resilient: name === 'mesh-resilient',
          ...(rateLimit ? { rateLimit } : {}), ...(rateLimit === 'global' ? { redis: redis!.address } : {}),
          ...(collectorPort ? { collectorPort } : {}), ...(o.profileDir ? { profileDir: o.profileDir } : {}),
          ...(fromBaseline ? { main: o.baseline!.main, nodeFlags: baselineFlags! } : {}),
        });
        if (run === 'mesh-observed' && m.accessLog) accessLogs.push(m.accessLog);
        const sidecars = [{ name: 'sidecar-outbound', child: m.outbound }, { name: 'sidecar-inbound', child: m.inbound }];
        const spansBefore = collector?.spans ?? 0;
        scenarios.push({
          // The global limit's Redis is measured beside the sidecars (after them: the sidecar figures keep their places).
          name: run, target: { port: m.entryPort, authority: UPSTREAM_AUTHORITY }, proxies: rateLimit === 'global' ? [...sidecars, { name: 'redis', child: redis!.child }] : sidecars,
          processes: [m.controlPlane, m.outbound, m.inbound],
          check: async () => {
            await checkObservability(m, observability, () => (collector?.spans ?? 0) - spansBefore, name === 'mesh-plaintext' ? 'plaintext' : 'mtls');
            if (name === 'mesh-resilient') await checkResilient(m);
            if (rateLimit) await checkRateLimit(m, rateLimit);
          },
        });
      }
      if (name === 'nginx') {
        const pki = await hopPki(at('nginx-pki'));
        const back = await startHop(children, 'nginx inbound hop', at('nginx-inbound'), upstream.port, pki, 'from-caller');
        const front = await startHop(children, 'nginx outbound hop', at('nginx-outbound'), back.port, pki, 'to-next');
        scenarios.push({
          name, target: { port: front.port, authority: UPSTREAM_AUTHORITY }, proxies: [{ name: 'nginx-outbound', child: front.child }, { name: 'nginx-inbound', child: back.child }],
          processes: [front.child, back.child],
        });
      }
    }
    for (const s of scenarios) {
      say(`warming up ${s.name} (${o.warmupMs} ms at max)`);
      await runLoad(children, s.target, 'max', o.warmupMs, logFile);
      if (!s.check) continue;
      await s.check();
      // The check's requests (a denied DELETE, the scrapes) are the first of their kind: the JIT throws away code that
      // assumed they would not come, and the proxies run slower for seconds until it has rebuilt it. Not in a measured round.
      say(`warming up ${s.name} again after its check (${o.warmupMs} ms at max)`);
      await runLoad(children, s.target, 'max', o.warmupMs, logFile);
    }
    return scenarios;
  };
  const logFile = join(dir, 'h2load.log');
  let scenarios = await start(0);
  const runs: RunSample[] = [];
  for (let r = 0; r < o.rounds; r++) {
    if (o.fresh && r > 0) {
      say(`round ${r + 1}/${o.rounds}: starting every proxy anew (--fresh)`);
      for (const s of scenarios) for (const c of s.processes ?? []) await children.stop(c, 5000);
      scenarios = await start(r);
    }
    // Interleaved, and each round starts one scenario further on, so that drift does not favour one.
    const order = scenarios.map((_, i) => scenarios[(i + r) % scenarios.length]!);
    for (const batch of o.together ? [order] : order.map((s) => [s])) {
      for (const mode of o.modes) {
        say(`round ${r + 1}/${o.rounds}: ${batch.map((s) => s.name).join(' + ')} ${mode} for ${o.durationMs} ms`);
        for (const sample of await measure(children, batch, upstream, mode, o.durationMs, logFile)) runs.push({ ...sample, round: r });
      }
    }
  }
  await Promise.all([...collectors.values()].map((c) => c.collector.close()));
  const collector = collectors.get('mesh-observed')?.collector;
  const order = (x: RunSample) => runNames.indexOf(x.scenario) * 2 + o.modes.indexOf(x.mode);
  const rows = aggregate([...runs].sort((a, b) => order(a) - order(b)));
  const g = goals(rows, runs);
  const machine = {
    node: process.version, kernel: release(), cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown',
    clk_tck: CLK_TCK, nginx: tools.nginx, h2load: tools.h2load, ...(tools.redis ? { redis: tools.redis } : {}), load_average: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
  };
  // What mesh-observed's sidecars produced over the whole run: evidence that it observed what it says.
  const observed = collector && {
    trace_sampling_percent: TRACE_SAMPLING_PERCENT, spans_received: collector.spans, span_exports: collector.exports,
    access_log_bytes: accessLogs.reduce((n, f) => n + (statSync(f, { throwIfNoEntry: false })?.size ?? 0), 0),
    access_logs: accessLogs.length,
  };
  const document = {
    machine, settings: { rounds: o.rounds, modes: o.modes, together: o.together, fresh: o.fresh, node_flags: PROXY_NODE_FLAGS, ...(o.baseline ? { baseline: o.baseline.dir, baseline_node_flags: baselineFlags } : {}), duration_s: o.durationMs / 1000, warmup_s: o.warmupMs / 1000, rate_rps: RATE_RPS, profiled: o.profileDir !== undefined },
    scenarios: rows, goals: g, ...(observed ? { observed } : {}),
  };
  if (o.json) {
    // Three decimals are more than the machine's noise allows; NaN (no ratio) becomes null.
    const rounded = (_: string, v: unknown) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v);
    process.stdout.write(JSON.stringify(document, rounded, 2) + '\n');
    return;
  }
  process.stdout.write(`data-plane bench: ${o.rounds} round(s) of ${o.durationMs / 1000} s per scenario and mode${o.together ? ', the scenarios of a round at the same time' : ''}${o.fresh ? ', every round in new processes' : ''}${o.baseline ? `, each mesh also from ${o.baseline.dir}` : ''}; medians (min–max); ${machine.cpus} cores, ${machine.node}, ${tools.nginx}, ${tools.h2load}\n`);
  if (o.profileDir) process.stdout.write(`profiling: the sidecars ran under --cpu-prof (profiles in ${o.profileDir}); their CPU figures include the profiler\n`);
  process.stdout.write(table(rows, g) + '\n');
  if (observed) process.stdout.write(`mesh-observed over the run: ${observed.spans_received} spans received in ${observed.span_exports} exports (sampling ${TRACE_SAMPLING_PERCENT} %), access log ${(observed.access_log_bytes / 1024 / 1024).toFixed(1)} MB${observed.access_logs > 1 ? ` (in ${observed.access_logs} files, a mesh's each)` : ''}\n`);
}

async function main(): Promise<number> {
  let o;
  try {
    o = settings(process.argv.slice(2));
    if (o === 'help') {
      process.stdout.write(HELP + '\n');
      return 0;
    }
    const tools = preflight(o.scenarios);
    const children = new Children();
    const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
    let interrupted: Promise<never> | undefined;
    const stop = async (sig: string): Promise<never> => {
      process.stderr.write(`bench: ${sig}: stopping every process it started\n`);
      await children.stopAll(3000);
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    };
    process.once('SIGINT', () => void (interrupted = stop('SIGINT')));
    process.once('SIGTERM', () => void (interrupted = stop('SIGTERM')));
    try {
      await run(o, tools, children, dir);
    } catch (e) {
      // A run cut short by Ctrl-C fails too (its h2load was killed): the signal's exit wins. Ctrl-C reaches the
      // whole process group, so h2load may die, and its failure arrive, before our own handler has run: give it a moment.
      if (!interrupted) await new Promise((r) => setTimeout(r, 200));
      if (interrupted) await interrupted;
      throw e;
    } finally {
      // Profiles are written when the sidecars exit: give them time for it.
      await children.stopAll(o.profileDir ? 15_000 : 5000);
      rmSync(dir, { recursive: true, force: true });
    }
    return 0;
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

// Exit at once: a child that did not stop in time must not keep the bench alive (the exit hook kills its group).
process.exit(await main());
