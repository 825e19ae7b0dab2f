/** The data-plane bench's arithmetic (bench/data-plane/h2load.ts, report.ts): h2load's output read right, medians, spreads, goal ratios, the table's goal lines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRun, percentile } from '../../bench/data-plane/h2load.js';
import { aggregate, goals, median, table, type RunSample } from '../../bench/data-plane/report.js';

const SUMMARY = `finished in 1.00s, 4.00 req/s, 4.5KB/s
requests: 5 total, 5 started, 5 done, 3 succeeded, 2 failed, 1 errored, 0 timeout
status codes: 3 2xx, 0 3xx, 0 4xx, 1 5xx
`;

test('parseRun: rps from the summary, percentiles from the 200 rows of the log, every other row an error', () => {
  const log = ['1\t200\t1000', '2\t200\t3000', '3\t503\t100', '4\t200\t2000', '5\t-1\t50', ''].join('\n');
  const r = parseRun(SUMMARY, log);
  assert.equal(r.rps, 4);
  assert.equal(r.ok, 3);
  assert.equal(r.errors, 2);
  assert.deepEqual([r.p50Ms, r.p90Ms, r.p99Ms], [2, 3, 3]);
  assert.throws(() => parseRun('something else', ''), /h2load's summary is not in the expected form/);
});

test('percentile is the nearest rank; median averages the middle two', () => {
  const xs = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.deepEqual([percentile(xs, 0.5), percentile(xs, 0.9), percentile(xs, 0.99), percentile(xs, 1)], [50, 90, 99, 100]);
  assert.ok(Number.isNaN(percentile(new Float64Array(), 0.5)));
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

const proxy = (name: string, cpu: number, rssMb = 10) => ({ name, cpuUsPerReq: cpu, sysUsPerReq: cpu / 2, rssBytes: rssMb * 1024 * 1024 });
/** A run of round `round`. */
const inRound = (r: RunSample, round: number): RunSample => ({ ...r, round });
function run(scenario: string, mode: 'max' | 'rate', p99: number, proxies: RunSample['proxies'], errors = 0): RunSample {
  return { scenario, mode, rps: 100, errors, p50Ms: p99 / 4, p90Ms: p99 / 2, p99Ms: p99, proxies, upstream: proxy('upstream', 5) };
}

test('aggregate: medians over rounds with min–max spread, errors summed, proxies kept in order', () => {
  const rows = aggregate([
    run('mesh', 'max', 3, [proxy('a', 10, 50), proxy('b', 20)]),
    run('mesh', 'max', 1, [proxy('a', 30, 70), proxy('b', 40)], 2),
    run('mesh', 'max', 2, [proxy('a', 20, 60), proxy('b', 30)], 1),
  ]);
  assert.equal(rows.length, 1);
  const r = rows[0]!;
  assert.equal(r.rounds, 3);
  assert.equal(r.p99_ms, 2);
  assert.deepEqual(r.spread.p99_ms, { min: 1, max: 3 });
  assert.equal(r.errors, 3);
  assert.deepEqual(r.proxies.map((p) => [p.name, p.cpu_us_per_req, p.rss_mb]), [['a', 20, 60], ['b', 30, 10]]);
  assert.deepEqual(r.proxies[0]!.spread.cpu_us_per_req, { min: 10, max: 30 });
});

test('goals: sidecar CPU ÷ nginx per hop, added p99 ÷ nginx added p99, max sidecar RSS; no p99 ratio when nginx added nothing', () => {
  const rows = aggregate([
    run('direct', 'max', 1, []), run('direct', 'rate', 1, []),
    run('mesh', 'max', 9, [proxy('sidecar-outbound', 60, 90), proxy('sidecar-inbound', 45, 70)]), run('mesh', 'rate', 4, []),
    run('nginx', 'max', 2, [proxy('nginx-outbound', 16), proxy('nginx-inbound', 14)]), run('nginx', 'rate', 2.5, []),
  ]);
  const g = goals(rows);
  assert.deepEqual(g.cpu_per_req_vs_nginx_hop, { value: 4, goal: 3, met: false, by_sidecar: { 'sidecar-outbound': 4, 'sidecar-inbound': 3 } });
  assert.deepEqual(g.added_p99_vs_nginx, { value: 2, goal: 2, met: true, mesh_added_ms: 3, nginx_added_ms: 1.5 });
  assert.deepEqual(g.max_sidecar_rss_mb, { value: 90, goal: 80, met: false });
  // With the rate runs' proxies, the pair's CPU ratio at that rate comes with the p99 ratio.
  const rateRows = aggregate([
    run('direct', 'rate', 1, []),
    run('mesh', 'rate', 4, [proxy('sidecar-outbound', 90), proxy('sidecar-inbound', 110)]),
    run('nginx', 'rate', 2.5, [proxy('nginx-outbound', 30), proxy('nginx-inbound', 50)]),
  ]);
  const withCpu = goals(rateRows);
  assert.equal(withCpu.added_p99_vs_nginx!.pair_cpu_ratio, 2.5);
  assert.match(table(rateRows, withCpu), /→ 2\.00× — goal ≤ 2×: met \(the pair's CPU per request at that rate: 2\.50× nginx's\)/);
  const flat = goals(aggregate([run('direct', 'rate', 2, []), run('mesh', 'rate', 4, []), run('nginx', 'rate', 2, [])]));
  assert.ok(Number.isNaN(flat.added_p99_vs_nginx!.value));
  assert.equal(flat.added_p99_vs_nginx!.met, false);
  assert.deepEqual(Object.keys(goals(aggregate([run('direct', 'max', 1, [])]))), []);
});

test('goals: the cost of observability is the sidecar pair\'s CPU per request, mesh-observed ÷ mesh-bare at max load, with each sidecar\'s and metrics-only ratios', () => {
  const observed = [proxy('sidecar-outbound', 66), proxy('sidecar-inbound', 54)];
  const rows = aggregate([
    run('mesh', 'max', 9, [proxy('sidecar-outbound', 55), proxy('sidecar-inbound', 44)]),
    run('mesh-bare', 'max', 9, [proxy('sidecar-outbound', 60), proxy('sidecar-inbound', 40)]), run('mesh-bare', 'rate', 4, [proxy('sidecar-outbound', 1), proxy('sidecar-inbound', 1)]),
    run('mesh-observed', 'max', 9, observed), run('mesh-observed', 'rate', 4, [proxy('sidecar-outbound', 9), proxy('sidecar-inbound', 9)]),
  ]);
  const g = goals(rows).observed_cpu_per_req_vs_bare!;
  assert.deepEqual(g, {
    value: 1.2, goal: 1.15, met: false, by_sidecar: { 'sidecar-outbound': 1.1, 'sidecar-inbound': 1.35 },
    observed_us_per_req: 120, bare_us_per_req: 100, default_vs_bare: 0.99, log_vs_bare: null, trace_vs_bare: null,
  });
  assert.match(table(rows, goals(rows)), /CPU per request with observability ÷ without \(mesh-observed ÷ mesh-bare, max\): 120\.0 ÷ 100\.0 µs → 1\.20× \(sidecar-outbound 1\.10×, sidecar-inbound 1\.35×\); metrics alone \(mesh ÷ mesh-bare\) 0\.99× — goal ≤ 1\.15×: NOT met/);
  // The parts one at a time, when mesh-log and mesh-trace ran.
  const parts = aggregate([run('mesh-bare', 'max', 9, [proxy('sidecar-outbound', 60), proxy('sidecar-inbound', 40)]),
    run('mesh-observed', 'max', 9, observed), run('mesh-log', 'max', 9, [proxy('sidecar-outbound', 60), proxy('sidecar-inbound', 50)]),
    run('mesh-trace', 'max', 9, [proxy('sidecar-outbound', 63), proxy('sidecar-inbound', 42)])]);
  const pg = goals(parts).observed_cpu_per_req_vs_bare!;
  assert.deepEqual([pg.default_vs_bare, pg.log_vs_bare, pg.trace_vs_bare], [null, 1.1, 1.05]);
  assert.match(table(parts, goals(parts)), /\(sidecar-outbound 1\.10×, sidecar-inbound 1\.35×\); access log alone \(mesh-log ÷ mesh-bare\) 1\.10×; tracing alone \(mesh-trace ÷ mesh-bare\) 1\.05× — goal/);
  const within = goals(aggregate([run('mesh-bare', 'max', 1, [proxy('a', 100)]), run('mesh-observed', 'max', 1, [proxy('a', 115)])])).observed_cpu_per_req_vs_bare!;
  assert.deepEqual([within.value, within.met, within.default_vs_bare], [1.15, true, null]);
  assert.equal(goals(aggregate([run('mesh-observed', 'max', 1, observed)])).observed_cpu_per_req_vs_bare, undefined);
});

test('goals: with the runs, the ratios are also taken within each round and their median given (paired), rounds missing a side left out', () => {
  // The machine is twice as fast in round 1: the ratios of medians mix that in, the paired ones do not.
  const runs = [
    inRound(run('mesh-bare', 'max', 9, [proxy('sidecar-outbound', 100), proxy('sidecar-inbound', 100)]), 0),
    inRound(run('mesh-observed', 'max', 9, [proxy('sidecar-outbound', 110), proxy('sidecar-inbound', 110)]), 0),
    inRound(run('mesh-bare', 'max', 9, [proxy('sidecar-outbound', 50), proxy('sidecar-inbound', 50)]), 1),
    inRound(run('mesh-observed', 'max', 9, [proxy('sidecar-outbound', 55), proxy('sidecar-inbound', 55)]), 1),
    inRound(run('mesh-bare', 'max', 9, [proxy('sidecar-outbound', 200), proxy('sidecar-inbound', 200)]), 2),
    inRound(run('mesh-observed', 'max', 9, [proxy('sidecar-outbound', 60), proxy('sidecar-inbound', 60)]), 3),
    inRound(run('mesh', 'max', 9, [proxy('sidecar-outbound', 90), proxy('sidecar-inbound', 60)]), 0),
    inRound(run('nginx', 'max', 9, [proxy('nginx-outbound', 30), proxy('nginx-inbound', 30)]), 0),
    inRound(run('mesh', 'max', 9, [proxy('sidecar-outbound', 40), proxy('sidecar-inbound', 30)]), 1),
    inRound(run('nginx', 'max', 9, [proxy('nginx-outbound', 20), proxy('nginx-inbound', 20)]), 1),
  ];
  const g = goals(aggregate(runs), runs);
  assert.equal(g.observed_cpu_per_req_vs_bare!.paired, 1.1);
  assert.equal(g.cpu_per_req_vs_nginx_hop!.paired, 2.5, 'round 0: 90 ÷ 30 = 3; round 1: 40 ÷ 20 = 2');
  assert.match(table(aggregate(runs), g), /paired by round 1\.10× — goal ≤ 1\.15×/);
  assert.match(table(aggregate(runs), g), /sidecar-inbound [\d.]+×; paired by round 2\.50× — goal ≤ 3×/);
  assert.equal(goals(aggregate(runs)).observed_cpu_per_req_vs_bare!.paired, undefined, 'without the runs, no paired figure');
  const metrics = goals(aggregate(runs), runs).observed_cpu_per_req_vs_bare!.paired_alone?.metrics;
  assert.ok(metrics !== undefined && Math.abs(metrics - 0.725) < 1e-9, `mesh ÷ mesh-bare: round 0 150 ÷ 200, round 1 70 ÷ 100, median 0.725, not ${metrics}`);
});

test('goals: the parts alone (mesh, mesh-log, mesh-trace ÷ mesh-bare) are paired by round too, and the table gives both', () => {
  const pair = (us: number) => [proxy('sidecar-outbound', us), proxy('sidecar-inbound', us)];
  const runs = [0, 1].flatMap((round) => {
    const k = round === 0 ? 1 : 2; // the machine is twice as slow in round 1
    return [
      inRound(run('mesh-bare', 'max', 9, pair(50 * k)), round),
      inRound(run('mesh-observed', 'max', 9, pair(60 * k)), round),
      inRound(run('mesh-log', 'max', 9, pair((round === 0 ? 55 : 56) * k)), round),
      inRound(run('mesh-trace', 'max', 9, pair(51 * k)), round),
    ];
  });
  const g = goals(aggregate(runs), runs).observed_cpu_per_req_vs_bare!;
  assert.deepEqual(Object.keys(g.paired_alone ?? {}), ['log', 'trace']);
  assert.ok(Math.abs(g.paired_alone!.log! - 1.11) < 1e-9 && Math.abs(g.paired_alone!.trace! - 1.02) < 1e-9, JSON.stringify(g.paired_alone));
  assert.match(table(aggregate(runs), goals(aggregate(runs), runs)), /access log alone \(mesh-log ÷ mesh-bare\) 1\.11× \(paired 1\.11×\); tracing alone \(mesh-trace ÷ mesh-bare\) 1\.02× \(paired 1\.02×\); paired by round 1\.20×/);
  assert.equal(goals(aggregate(runs)).observed_cpu_per_req_vs_bare!.paired_alone, undefined, 'without the runs, no paired figures');
});

test('goals: with a baseline build, each mesh scenario ÷ its @baseline twin (max), per proxy and paired by round, with p99 of both at rate', () => {
  const runs = [
    inRound(run('mesh', 'max', 9, [proxy('sidecar-outbound', 90), proxy('sidecar-inbound', 60)]), 0),
    inRound(run('mesh@baseline', 'max', 9, [proxy('sidecar-outbound', 100), proxy('sidecar-inbound', 100)]), 0),
    inRound(run('mesh', 'max', 9, [proxy('sidecar-outbound', 40), proxy('sidecar-inbound', 40)]), 1),
    inRound(run('mesh@baseline', 'max', 9, [proxy('sidecar-outbound', 50), proxy('sidecar-inbound', 50)]), 1),
    inRound(run('mesh', 'rate', 3, [proxy('sidecar-outbound', 1), proxy('sidecar-inbound', 1)]), 0),
    inRound(run('mesh@baseline', 'rate', 4, [proxy('sidecar-outbound', 1), proxy('sidecar-inbound', 1)]), 0),
  ];
  const g = goals(aggregate(runs), runs).vs_baseline!['mesh']!;
  assert.ok(Math.abs(g.cpu_ratio - 115 / 150) < 1e-9, `medians: (65 + 50) ÷ (75 + 75), not ${g.cpu_ratio}`);
  assert.ok(Math.abs(g.paired! - 0.775) < 1e-9, `paired: 150 ÷ 200 and 80 ÷ 100, median 0.775, not ${g.paired}`);
  assert.deepEqual([g.p99_ms, g.baseline_p99_ms], [3, 4]);
  assert.match(table(aggregate(runs), goals(aggregate(runs), runs)), /this build ÷ the baseline \(mesh ÷ mesh@baseline\): CPU per request 0\.77× \(sidecar-outbound 0\.87×, sidecar-inbound 0\.67×\); paired by round 0\.78×; p99 at 1000 req\/s 3\.00 vs 4\.00 ms/);
  assert.equal(goals(aggregate(runs.filter((r) => r.scenario === 'mesh'))).vs_baseline, undefined, 'no baseline, no figure');
});
