/**
 * From measured rounds to what the bench prints: medians over rounds with
 * their spread (min–max), the `--json` document (docs/benchmark.md; later
 * issues add scenarios and fields, never change the shape), the human
 * table, and the goal ratios of issues 5 and 7 taken within the same run.
 */
import type { Mode } from './h2load.js';

/** One proxy process in one measured run. */
export interface ProxySample {
  readonly name: string;
  readonly cpuUsPerReq: number;
  /** The kernel's part of cpuUsPerReq (on loopback, mostly the TCP stack behind each write). */
  readonly sysUsPerReq: number;
  readonly rssBytes: number;
}

/** One measured run of one scenario in one mode. */
export interface RunSample {
  readonly scenario: string;
  readonly mode: Mode;
  readonly rps: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly proxies: readonly ProxySample[];
  readonly upstream: ProxySample;
  /** Which round the run belongs to (a round runs every scenario once, one after the other). */
  readonly round?: number;
}

export interface Spread {
  readonly min: number;
  readonly max: number;
}

export interface ProxyRow {
  readonly name: string;
  readonly cpu_us_per_req: number;
  /** The kernel's part of cpu_us_per_req. */
  readonly sys_us_per_req: number;
  readonly rss_mb: number;
  readonly spread: { readonly cpu_us_per_req: Spread; readonly rss_mb: Spread };
}

/** A scenario × mode in the JSON document: medians over rounds; `errors` is the sum. */
export interface ScenarioRow {
  readonly name: string;
  readonly mode: Mode;
  readonly rps: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly errors: number;
  readonly proxies: readonly ProxyRow[];
  readonly rounds: number;
  readonly spread: { readonly rps: Spread; readonly p50_ms: Spread; readonly p90_ms: Spread; readonly p99_ms: Spread };
  /** The nginx upstream (not a proxy: shows that it was not the bottleneck). */
  readonly upstream: ProxyRow;
}

export interface Goal {
  readonly value: number;
  readonly goal: number;
  readonly met: boolean;
}

/** What zero trust costs (issue 6): `mesh` (STRICT mTLS, one AuthorizationPolicy) against `mesh-plaintext`. Not a goal: a figure. */
export interface MtlsCost {
  /** The sidecar pair's CPU per request, mesh ÷ mesh-plaintext (max mode), and each sidecar's. */
  readonly cpu_ratio: number;
  readonly by_sidecar: Record<string, number>;
  readonly mtls_us_per_req: number;
  readonly plaintext_us_per_req: number;
  /** p99 at 1000 req/s, ms, and the difference. */
  readonly mtls_p99_ms: number;
  readonly plaintext_p99_ms: number;
  readonly added_p99_ms: number;
}

/** What one rate-limit scope costs against the plain `mesh` (issue 9). */
export interface RateLimitScopeCost {
  /** The sidecar pair's CPU per request, with the limit ÷ mesh (max mode), and each sidecar's. */
  readonly cpu_ratio: number;
  readonly by_sidecar: Record<string, number>;
  readonly limited_us_per_req: number;
  readonly plain_us_per_req: number;
  /** p99 at 1000 req/s, ms, and the difference with mesh's. */
  readonly p99_ms: number;
  readonly plain_p99_ms: number;
  readonly added_p99_ms: number;
  /** Global only: the Redis server's own CPU per request (max mode), not in cpu_ratio. */
  readonly redis_us_per_req?: number;
}

/** What a rate limit that never triggers costs: `mesh-ratelimit-local` and `mesh-ratelimit-global` against `mesh`. Not a goal: a figure. */
export interface RateLimitCost {
  readonly local?: RateLimitScopeCost;
  readonly global?: RateLimitScopeCost;
}

/** The name of a scenario run from the --baseline build: `<scenario>@baseline`. */
export const BASELINE_SUFFIX = '@baseline';

export interface Goals {
  /**
   * With --baseline: each mesh scenario's proxies' CPU per request (max) ÷
   * the same scenario's run from the baseline build (`<name>@baseline`),
   * each proxy's ratio, the ratio paired by round, and p99 at 1 000 req/s of
   * both when rate mode ran. A figure, not a goal.
   */
  readonly vs_baseline?: Record<string, { readonly cpu_ratio: number; readonly by_proxy: Record<string, number>; readonly paired?: number; readonly p99_ms?: number; readonly baseline_p99_ms?: number }>;
  /**
   * What a resilient route costs (issue 8): the sidecar pair's CPU per request
   * in mesh-resilient ÷ in mesh (max mode), and each sidecar's own ratio.
   */
  readonly resilient_cpu_per_req_vs_plain_route?: Goal & {
    readonly by_sidecar: Record<string, number>;
    readonly resilient_us_per_req: number;
    readonly plain_us_per_req: number;
  };
  /** Present when `mesh` and `mesh-plaintext` ran. */
  readonly mtls_cost?: MtlsCost;
  /** Present when `mesh` and a `mesh-ratelimit-*` scenario ran. */
  readonly rate_limit_cost?: RateLimitCost;
  /**
   * Each sidecar's CPU per request ÷ nginx's per hop (the mean of its two
   * hops), max mode. `paired`: the same ratio taken within each round (runs
   * seconds apart) and the median of those, when the runs were given: this
   * VM's speed drifts between rounds, and a paired ratio cancels most of it.
   */
  readonly cpu_per_req_vs_nginx_hop?: Goal & { readonly by_sidecar: Record<string, number>; readonly paired?: number };
  /** (mesh p99 − direct p99) ÷ (nginx p99 − direct p99), rate mode. */
  readonly added_p99_vs_nginx?: Goal & {
    readonly mesh_added_ms: number;
    readonly nginx_added_ms: number;
    /**
     * The sidecar pair's CPU per request at 1 000 req/s ÷ the nginx pair's, when both have proxies: h2load
     * sends its rate as bursts of one request per connection, so the p99 is mostly a burst's drain time, which
     * this sets; the rest, and most of the ratio's swing from run to run, is the noise in each side's p99.
     */
    readonly pair_cpu_ratio?: number;
  };
  /** The highest sidecar RSS under 32 connections (max mode), MB. */
  readonly max_sidecar_rss_mb?: Goal;
  /**
   * The cost of observability (issue 7): the sidecar pair's CPU per request in
   * mesh-observed ÷ in mesh-bare (max mode), each sidecar's own ratio, and the
   * default mesh's (service metrics only) ÷ mesh-bare, null without `mesh`.
   */
  readonly observed_cpu_per_req_vs_bare?: Goal & {
    readonly by_sidecar: Record<string, number>;
    readonly observed_us_per_req: number;
    readonly bare_us_per_req: number;
    readonly default_vs_bare: number | null;
    /** mesh-log ÷ mesh-bare and mesh-trace ÷ mesh-bare (the access log alone, tracing alone), null without those scenarios. */
    readonly log_vs_bare: number | null;
    readonly trace_vs_bare: number | null;
    /** The ratio within each round, median over rounds (as cpu_per_req_vs_nginx_hop's), when the runs were given. */
    readonly paired?: number;
    /** default_vs_bare, log_vs_bare and trace_vs_bare paired by round the same way, for the scenarios that ran. */
    readonly paired_alone?: { readonly metrics?: number; readonly log?: number; readonly trace?: number };
  };
}

const MB = 1024 * 1024;
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
/** The median (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const spread = (xs: readonly number[]): Spread => ({ min: Math.min(...xs), max: Math.max(...xs) });

function proxyRow(samples: readonly ProxySample[]): ProxyRow {
  const cpu = samples.map((s) => s.cpuUsPerReq);
  const rss = samples.map((s) => s.rssBytes / MB);
  const sys = median(samples.map((s) => s.sysUsPerReq));
  return { name: samples[0]!.name, cpu_us_per_req: median(cpu), sys_us_per_req: sys, rss_mb: median(rss), spread: { cpu_us_per_req: spread(cpu), rss_mb: spread(rss) } };
}

/** Groups runs by scenario and mode, in first-seen order, into medians with spreads. */
export function aggregate(runs: readonly RunSample[]): ScenarioRow[] {
  const groups = new Map<string, RunSample[]>();
  for (const r of runs) {
    const key = `${r.scenario} ${r.mode}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((rs) => {
    const f = (pick: (r: RunSample) => number) => rs.map(pick);
    return {
      name: rs[0]!.scenario,
      mode: rs[0]!.mode,
      rps: median(f((r) => r.rps)),
      p50_ms: median(f((r) => r.p50Ms)),
      p90_ms: median(f((r) => r.p90Ms)),
      p99_ms: median(f((r) => r.p99Ms)),
      errors: rs.reduce((n, r) => n + r.errors, 0),
      proxies: rs[0]!.proxies.map((_, i) => proxyRow(rs.map((r) => r.proxies[i]!))),
      rounds: rs.length,
      spread: { rps: spread(f((r) => r.rps)), p50_ms: spread(f((r) => r.p50Ms)), p90_ms: spread(f((r) => r.p90Ms)), p99_ms: spread(f((r) => r.p99Ms)) },
      upstream: proxyRow(rs.map((r) => r.upstream)),
    };
  });
}

export const GOALS = { cpuRatio: 3, p99Ratio: 2, rssMb: 80, observedCpuRatio: 1.15, resilientCpuRatio: 1.1 } as const;

/** The CPU per request of a scenario's proxies together. */
const pairCpu = (r: ScenarioRow) => r.proxies.reduce((n, p) => n + p.cpu_us_per_req, 0);
/** The CPU per request of a scenario's sidecars together (without the Redis of a global limit). */
const sidecarCpu = (r: ScenarioRow) => r.proxies.reduce((n, p) => n + (p.name.startsWith('sidecar-') ? p.cpu_us_per_req : 0), 0);

function rateLimitCost(limitedMax: ScenarioRow, limitedRate: ScenarioRow, meshMax: ScenarioRow, meshRate: ScenarioRow): RateLimitScopeCost {
  const redis = limitedMax.proxies.find((p) => p.name === 'redis');
  return {
    cpu_ratio: sidecarCpu(limitedMax) / sidecarCpu(meshMax),
    by_sidecar: Object.fromEntries(meshMax.proxies.map((p) => [p.name, (limitedMax.proxies.find((q) => q.name === p.name)?.cpu_us_per_req ?? NaN) / p.cpu_us_per_req])),
    limited_us_per_req: sidecarCpu(limitedMax), plain_us_per_req: sidecarCpu(meshMax),
    p99_ms: limitedRate.p99_ms, plain_p99_ms: meshRate.p99_ms, added_p99_ms: limitedRate.p99_ms - meshRate.p99_ms,
    ...(redis ? { redis_us_per_req: redis.cpu_us_per_req } : {}),
  };
}

/**
 * `ratio(a, b)` of the runs of scenarios `a` and `b` (max mode) in the same
 * round, median over the rounds that have both; undefined without any.
 */
export function pairedByRound(runs: readonly RunSample[], a: string, b: string, ratio: (x: RunSample, y: RunSample) => number): number | undefined {
  const of = (name: string) => new Map(runs.filter((r) => r.scenario === name && r.mode === 'max' && r.round !== undefined).map((r) => [r.round!, r]));
  const as = of(a);
  const bs = of(b);
  const ratios = [...as].flatMap(([round, x]) => { const y = bs.get(round); return y ? [ratio(x, y)] : []; }).filter(Number.isFinite);
  return ratios.length ? median(ratios) : undefined;
}

/** pairCpu of one run: its proxies' CPU per request together. */
const runPairCpu = (r: RunSample) => r.proxies.reduce((n, p) => n + p.cpuUsPerReq, 0);
/** One run's proxies' CPU per request ÷ another's (runs of one round). */
const pairRatio = (a: RunSample, b: RunSample) => runPairCpu(a) / runPairCpu(b);

/** The goal ratios, for those whose scenarios ran; with the runs, also their paired-by-round values. */
export function goals(rows: readonly ScenarioRow[], runs?: readonly RunSample[]): Goals {
  const row = (name: string, mode: Mode) => rows.find((r) => r.name === name && r.mode === mode);
  const out: { -readonly [K in keyof Goals]: Goals[K] } = {};
  const meshMax = row('mesh', 'max');
  const nginxMax = row('nginx', 'max');
  if (meshMax && nginxMax && nginxMax.proxies.length) {
    const hop = nginxMax.proxies.reduce((n, p) => n + p.cpu_us_per_req, 0) / nginxMax.proxies.length;
    const by = Object.fromEntries(meshMax.proxies.map((p) => [p.name, p.cpu_us_per_req / hop]));
    const value = Math.max(...Object.values(by));
    const paired = runs && pairedByRound(runs, 'mesh', 'nginx', (m, n) => {
      const nginxHop = runPairCpu(n) / n.proxies.length;
      return Math.max(...m.proxies.map((p) => p.cpuUsPerReq / nginxHop));
    });
    out.cpu_per_req_vs_nginx_hop = { value, goal: GOALS.cpuRatio, met: value <= GOALS.cpuRatio, by_sidecar: by, ...(paired !== undefined ? { paired } : {}) };
  }
  const direct = row('direct', 'rate');
  const meshRate = row('mesh', 'rate');
  const nginxRate = row('nginx', 'rate');
  if (direct && meshRate && nginxRate) {
    const mesh = meshRate.p99_ms - direct.p99_ms;
    const nginx = nginxRate.p99_ms - direct.p99_ms;
    // nginx's added p99 can come out ≤ 0 on a noisy machine: then there is no ratio to give.
    const value = nginx > 0 ? mesh / nginx : NaN;
    const pairCpu = (r: ScenarioRow) => r.proxies.reduce((n, p) => n + p.cpu_us_per_req, 0);
    const cpu = meshRate.proxies.length && nginxRate.proxies.length ? pairCpu(meshRate) / pairCpu(nginxRate) : undefined;
    out.added_p99_vs_nginx = {
      value, goal: GOALS.p99Ratio, met: value <= GOALS.p99Ratio, mesh_added_ms: mesh, nginx_added_ms: nginx,
      ...(cpu !== undefined && Number.isFinite(cpu) ? { pair_cpu_ratio: cpu } : {}),
    };
  }
  if (meshMax) {
    const value = Math.max(...meshMax.proxies.map((p) => p.rss_mb));
    out.max_sidecar_rss_mb = { value, goal: GOALS.rssMb, met: value <= GOALS.rssMb };
  }
  const plainMax = row('mesh-plaintext', 'max');
  const plainRate = row('mesh-plaintext', 'rate');
  if (meshMax && plainMax && meshRate && plainRate) {
    out.mtls_cost = {
      cpu_ratio: pairCpu(meshMax) / pairCpu(plainMax),
      by_sidecar: Object.fromEntries(meshMax.proxies.map((p, i) => [p.name, p.cpu_us_per_req / plainMax.proxies[i]!.cpu_us_per_req])),
      mtls_us_per_req: pairCpu(meshMax), plaintext_us_per_req: pairCpu(plainMax),
      mtls_p99_ms: meshRate.p99_ms, plaintext_p99_ms: plainRate.p99_ms, added_p99_ms: meshRate.p99_ms - plainRate.p99_ms,
    };
  }
  const resilient = row('mesh-resilient', 'max');
  if (meshMax && resilient) {
    const value = pairCpu(resilient) / pairCpu(meshMax);
    out.resilient_cpu_per_req_vs_plain_route = {
      value, goal: GOALS.resilientCpuRatio, met: value <= GOALS.resilientCpuRatio,
      by_sidecar: Object.fromEntries(resilient.proxies.map((p, i) => [p.name, p.cpu_us_per_req / meshMax.proxies[i]!.cpu_us_per_req])),
      resilient_us_per_req: pairCpu(resilient), plain_us_per_req: pairCpu(meshMax),
    };
  }
  if (meshMax && meshRate) {
    const cost: { local?: RateLimitScopeCost; global?: RateLimitScopeCost } = {};
    for (const scope of ['local', 'global'] as const) {
      const max = row(`mesh-ratelimit-${scope}`, 'max');
      const rate = row(`mesh-ratelimit-${scope}`, 'rate');
      if (max && rate) cost[scope] = rateLimitCost(max, rate, meshMax, meshRate);
    }
    if (cost.local || cost.global) out.rate_limit_cost = cost;
  }
  const bare = row('mesh-bare', 'max');
  const observed = row('mesh-observed', 'max');
  const vsBare = (name: string): number | null => {
    const r = row(name, 'max');
    return r && bare ? pairCpu(r) / pairCpu(bare) : null;
  };
  if (bare && observed) {
    const value = pairCpu(observed) / pairCpu(bare);
    const by = Object.fromEntries(observed.proxies.map((p, i) => [p.name, p.cpu_us_per_req / bare.proxies[i]!.cpu_us_per_req]));
    out.observed_cpu_per_req_vs_bare = {
      value, goal: GOALS.observedCpuRatio, met: value <= GOALS.observedCpuRatio, by_sidecar: by,
      observed_us_per_req: pairCpu(observed), bare_us_per_req: pairCpu(bare), default_vs_bare: meshMax ? pairCpu(meshMax) / pairCpu(bare) : null,
      log_vs_bare: vsBare('mesh-log'), trace_vs_bare: vsBare('mesh-trace'),
    };
    const pairedVsBare = (name: string) => runs && pairedByRound(runs, name, 'mesh-bare', pairRatio);
    const paired = pairedVsBare('mesh-observed');
    if (paired !== undefined) out.observed_cpu_per_req_vs_bare = { ...out.observed_cpu_per_req_vs_bare, paired };
    const alone = Object.entries({ metrics: 'mesh', log: 'mesh-log', trace: 'mesh-trace' }).flatMap(([part, name]) => {
      const v = pairedVsBare(name);
      return v === undefined ? [] : [[part, v] as const];
    });
    if (alone.length) out.observed_cpu_per_req_vs_bare = { ...out.observed_cpu_per_req_vs_bare, paired_alone: Object.fromEntries(alone) };
  }
  const twins = rows.filter((r) => r.mode === 'max' && r.name.endsWith(BASELINE_SUFFIX));
  if (twins.length) {
    const vs: Record<string, NonNullable<Goals['vs_baseline']>[string]> = {};
    for (const base of twins) {
      const name = base.name.slice(0, -BASELINE_SUFFIX.length);
      const cur = row(name, 'max');
      if (!cur) continue;
      const paired = runs && pairedByRound(runs, name, base.name, pairRatio);
      const curRate = row(name, 'rate');
      const baseRate = row(base.name, 'rate');
      vs[name] = {
        cpu_ratio: pairCpu(cur) / pairCpu(base),
        by_proxy: Object.fromEntries(cur.proxies.map((p, i) => [p.name, p.cpu_us_per_req / base.proxies[i]!.cpu_us_per_req])),
        ...(paired !== undefined ? { paired } : {}),
        ...(curRate && baseRate ? { p99_ms: curRate.p99_ms, baseline_p99_ms: baseRate.p99_ms } : {}),
      };
    }
    if (Object.keys(vs).length) out.vs_baseline = vs;
  }
  return out;
}

// ---- the human table

const num = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const withSpread = (x: number, s: Spread, digits: number) => `${num(x, digits)} (${num(s.min, digits)}–${num(s.max, digits)})`;
const pad = (s: string, n: number) => s.padEnd(n);

function proxyLine(p: ProxyRow, label = p.name): string {
  return `    ${pad(label, 18)} cpu ${pad(withSpread(p.cpu_us_per_req, p.spread.cpu_us_per_req, 1), 22)} µs/req (sys ${pad(`${num(p.sys_us_per_req, 1)})`, 7)} rss ${withSpread(p.rss_mb, p.spread.rss_mb, 1)} MB`;
}

export function table(rows: readonly ScenarioRow[], g: Goals): string {
  const out: string[] = [];
  out.push(`${pad('scenario', 23)}${pad('mode', 6)}${pad('req/s (min–max)', 26)}${pad('p50 ms', 8)}${pad('p90 ms', 8)}${pad('p99 ms (min–max)', 24)}errors`);
  for (const r of rows) {
    out.push(`${pad(r.name, 23)}${pad(r.mode, 6)}${pad(withSpread(r.rps, r.spread.rps, 0), 26)}${pad(num(r.p50_ms, 2), 8)}${pad(num(r.p90_ms, 2), 8)}${pad(withSpread(r.p99_ms, r.spread.p99_ms, 2), 24)}${r.errors}`);
    for (const p of r.proxies) out.push(proxyLine(p));
    out.push(proxyLine(r.upstream, '(upstream nginx)'));
  }
  const verdict = (x: Goal) => (x.met ? 'met' : 'NOT met');
  out.push('', 'goals (ratios within this run):');
  if (g.cpu_per_req_vs_nginx_hop) {
    const c = g.cpu_per_req_vs_nginx_hop;
    const each = Object.entries(c.by_sidecar).map(([n, v]) => `${n} ${num(v, 2)}×`).join(', ');
    const paired = c.paired === undefined ? '' : `; paired by round ${num(c.paired, 2)}×`;
    out.push(`  sidecar CPU per request ÷ nginx per hop (max): ${each}${paired} — goal ≤ ${c.goal}×: ${verdict(c)}`);
  }
  if (g.added_p99_vs_nginx) {
    const p = g.added_p99_vs_nginx;
    out.push(`  added p99 at 1000 req/s: mesh +${num(p.mesh_added_ms, 2)} ms, nginx +${num(p.nginx_added_ms, 2)} ms → ${num(p.value, 2)}× — goal ≤ ${p.goal}×: ${Number.isFinite(p.value) ? verdict(p) : 'no ratio (nginx added nothing measurable)'}` +
      (p.pair_cpu_ratio !== undefined ? ` (the pair's CPU per request at that rate: ${num(p.pair_cpu_ratio, 2)}× nginx's)` : ''));
  }
  if (g.max_sidecar_rss_mb) {
    const m = g.max_sidecar_rss_mb;
    out.push(`  max sidecar RSS under 32 connections: ${num(m.value, 1)} MB — goal ≤ ${m.goal} MB: ${verdict(m)}`);
  }
  if (g.observed_cpu_per_req_vs_bare) {
    const c = g.observed_cpu_per_req_vs_bare;
    const each = Object.entries(c.by_sidecar).map(([n, v]) => `${n} ${num(v, 2)}×`).join(', ');
    const alone = (what: string, scenario: string, v: number | null, p: number | undefined) =>
      (v === null ? '' : `; ${what} alone (${scenario} ÷ mesh-bare) ${num(v, 2)}×${p === undefined ? '' : ` (paired ${num(p, 2)}×)`}`);
    const pa = c.paired_alone;
    const metricsOnly = alone('metrics', 'mesh', c.default_vs_bare, pa?.metrics) + alone('access log', 'mesh-log', c.log_vs_bare, pa?.log) + alone('tracing', 'mesh-trace', c.trace_vs_bare, pa?.trace);
    const paired = c.paired === undefined ? '' : `; paired by round ${num(c.paired, 2)}×`;
    out.push(`  CPU per request with observability ÷ without (mesh-observed ÷ mesh-bare, max): ${num(c.observed_us_per_req, 1)} ÷ ${num(c.bare_us_per_req, 1)} µs → ${num(c.value, 2)}× (${each})${metricsOnly}${paired} — goal ≤ ${c.goal}×: ${verdict(c)}`);
  }
  if (g.resilient_cpu_per_req_vs_plain_route) {
    const c = g.resilient_cpu_per_req_vs_plain_route;
    const each = Object.entries(c.by_sidecar).map(([n, v]) => `${n} ${num(v, 2)}×`).join(', ');
    out.push(`  CPU per request on a resilient route ÷ the plain route (mesh-resilient ÷ mesh, max): ${num(c.resilient_us_per_req, 1)} ÷ ${num(c.plain_us_per_req, 1)} µs → ${num(c.value, 2)}× (${each}) — goal ≤ ${c.goal}×: ${verdict(c)}`);
  }
  if (g.mtls_cost) {
    const c = g.mtls_cost;
    const each = Object.entries(c.by_sidecar).map(([n, v]) => `${n} ${num(v, 2)}×`).join(', ');
    out.push(`  what zero trust costs (mesh ÷ mesh-plaintext): CPU per request ${num(c.mtls_us_per_req, 1)} ÷ ${num(c.plaintext_us_per_req, 1)} µs → ${num(c.cpu_ratio, 2)}× (${each}); p99 at 1000 req/s ${num(c.mtls_p99_ms, 2)} vs ${num(c.plaintext_p99_ms, 2)} ms (${c.added_p99_ms >= 0 ? '+' : ''}${num(c.added_p99_ms, 2)} ms)`);
  }
  for (const scope of ['local', 'global'] as const) {
    const c = g.rate_limit_cost?.[scope];
    if (!c) continue;
    const each = Object.entries(c.by_sidecar).map(([n, v]) => `${n} ${num(v, 2)}×`).join(', ');
    const redis = c.redis_us_per_req === undefined ? '' : `; Redis itself ${num(c.redis_us_per_req, 1)} µs/req`;
    out.push(`  what a ${scope} rate limit costs (mesh-ratelimit-${scope} ÷ mesh): CPU per request ${num(c.limited_us_per_req, 1)} ÷ ${num(c.plain_us_per_req, 1)} µs → ${num(c.cpu_ratio, 2)}× (${each})${redis}; p99 at 1000 req/s ${num(c.p99_ms, 2)} vs ${num(c.plain_p99_ms, 2)} ms (${c.added_p99_ms >= 0 ? '+' : ''}${num(c.added_p99_ms, 2)} ms)`);
  }
  for (const [name, c] of Object.entries(g.vs_baseline ?? {})) {
    const each = Object.entries(c.by_proxy).map(([n, v]) => `${n} ${num(v, 2)}×`).join(', ');
    const paired = c.paired === undefined ? '' : `; paired by round ${num(c.paired, 2)}×`;
    const p99 = c.p99_ms === undefined ? '' : `; p99 at 1000 req/s ${num(c.p99_ms, 2)} vs ${num(c.baseline_p99_ms!, 2)} ms`;
    out.push(`  this build ÷ the baseline (${name} ÷ ${name}${BASELINE_SUFFIX}): CPU per request ${num(c.cpu_ratio, 2)}× (${each})${paired}${p99}`);
  }
  if (Object.keys(g).length === 0) out.push('  (need the direct, mesh and nginx scenarios, or mesh-bare and mesh-observed)');
  return out.join('\n');
}
