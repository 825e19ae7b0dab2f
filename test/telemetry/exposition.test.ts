/**
 * The proxies' and control plane's /metrics rendering (src/telemetry/exposition.ts):
 * the same text prom-client's own `metrics()` makes, in both formats, and a
 * scrape that gives the event loop turns while it renders instead of holding
 * it for the whole exposition.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { render } from '../../src/telemetry/exposition.js';

const OPENMETRICS = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5';

function sampleRegistry(): Registry {
  const r = new Registry();
  const c = new Counter({ name: 'demo_requests_total', help: 'Requests, with a "quote" and a \\ in the help.', labelNames: ['code', 'path'], registers: [r] });
  c.inc({ code: '200', path: '/a"b\\c\nd' }, 3);
  c.inc({ code: '503', path: '/' });
  new Gauge({ name: 'demo_open', help: 'Open things.', registers: [r] }).set(7);
  const h = new Histogram({ name: 'demo_duration_ms', help: 'Durations.', labelNames: ['route'], buckets: [1, 10, 100], registers: [r] });
  for (const v of [0.5, 5, 50, 500]) h.observe({ route: 'r1' }, v);
  return r;
}

/** The families of `text` whose names are in `names`, as text blocks (both formats start a family with `# HELP`). */
function families(text: string, names: readonly string[]): string[] {
  return text.split(/(?=^# HELP )/m).map((b) => b.replace(/\n+(# EOF\n)?$/, '')).filter((b) => names.some((n) => b.startsWith(`# HELP ${n} `)));
}

test('renders what prom-client renders, as Prometheus text and as OpenMetrics (counters without _total in HELP and TYPE)', async () => {
  for (const openMetrics of [false, true]) {
    const reference = sampleRegistry();
    if (openMetrics) (reference as unknown as Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const expected = await reference.metrics();
    const ours = await render([sampleRegistry()], openMetrics ? OPENMETRICS : undefined);
    assert.equal(ours.contentType, openMetrics ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE);
    const names = openMetrics ? ['demo_requests', 'demo_open', 'demo_duration_ms'] : ['demo_requests_total', 'demo_open', 'demo_duration_ms'];
    const want = families(expected, names);
    assert.equal(want.length, 3, `the reference has the three families:\n${expected}`);
    assert.deepEqual(families(ours.body, names), want);
    // The process's own metrics are added, and the whole is one document in the format asked for.
    assert.match(ours.body, /^# TYPE process_cpu_user_seconds(_total)? counter$/m);
    if (openMetrics) assert.ok(ours.body.endsWith('\n# EOF\n') && ours.body.indexOf('# EOF') === ours.body.length - 6, 'one # EOF, at the end');
    else assert.ok(!ours.body.includes('# EOF') && ours.body.endsWith('\n') && !ours.body.endsWith('\n\n\n'));
  }
});

test('counter names are whole again after an OpenMetrics render, for the next text render', async () => {
  const r = sampleRegistry();
  await render([r], OPENMETRICS);
  assert.deepEqual(families((await render([r], undefined)).body, ['demo_requests_total']).length, 1);
  assert.ok(r.getSingleMetric('demo_requests_total'), 'still registered under its own name');
});

test('a scrape gives the event loop turns while it renders: a callback queued when it began runs before it ends', async () => {
  const r = new Registry();
  // Eight families that each take 1 ms to collect (as a cold scrape's families do on a loaded sidecar).
  for (let i = 0; i < 8; i++) {
    new Gauge({
      name: `slow_${i}`, help: 'Slow to collect.', registers: [r],
      collect() { const until = performance.now() + 1; while (performance.now() < until); this.set(i); },
    });
  }
  const order: string[] = [];
  setImmediate(() => order.push('immediate'));
  const timer = new Promise<void>((resolve) => setTimeout(() => { order.push('timer'); resolve(); }, 2));
  const body = (await render([r], undefined)).body;
  order.push('rendered');
  await timer;
  for (let i = 0; i < 8; i++) assert.match(body, new RegExp(`^slow_${i} ${i}$`, 'm'));
  assert.deepEqual([...order.slice(0, 2)].sort(), ['immediate', 'timer'], `the immediate and a 2 ms timer both ran during the 8 ms render: ${order}`);
  assert.equal(order[2], 'rendered');
});
