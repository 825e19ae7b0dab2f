/**
 * The control plane's Prometheus text reader (src/telemetry/prom-text.ts):
 * on real proxy output (two data planes after known traffic, both metric
 * prefixes) it reads exactly what the strict test parser reads; escapes,
 * comments, timestamps and odd lines; and histogram_quantile's
 * interpolation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { histogramQuantile, parsePromText, type PromSample } from '../../src/telemetry/prom-text.js';
import { parsePrometheusText } from './prom-text.js';
import { scrape, startTwoProxies, type TwoProxies } from './two-proxies.js';

let p: TwoProxies;
let callerText: string;
let calleeText: string;

before(async () => {
  p = await startTwoProxies({}, { metricsPrefix: 'istio_' });
  for (let i = 0; i < 4; i++) assert.equal((await p.client.call('http://api/ok')).status, 200);
  assert.equal((await p.client.call('http://api/fail')).status, 503);
  callerText = (await scrape(p.caller)).text;
  calleeText = (await scrape(p.callee)).text;
});
after(async () => { await p?.close(); });

const key = (s: PromSample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())} ${s.value}`;

test('real proxy output: every sample the strict parser reads, with the same labels and values, nothing skipped', () => {
  for (const text of [callerText, calleeText]) {
    const ours = parsePromText(text);
    assert.equal(ours.skipped, 0);
    const strict = [...parsePrometheusText(text).values()].flatMap((f) => f.samples);
    assert.ok(strict.length > 100, `a full exposition (${strict.length} samples)`);
    assert.deepEqual(ours.samples.map(key).sort(), strict.map(key).sort());
  }
});

test('real proxy output: the service metrics under both prefixes, histogram buckets included', () => {
  const total = (text: string, name: string, match: Record<string, string>) =>
    parsePromText(text).samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
  assert.equal(total(callerText, 'trellis_requests_total', { reporter: 'source', response_code: '200', destination_service_name: 'api' }), 4);
  assert.equal(total(calleeText, 'istio_requests_total', { reporter: 'destination', response_code: '503' }), 3);
  const buckets = parsePromText(callerText).samples.filter((s) => s.name === 'trellis_request_duration_milliseconds_bucket' && s.labels['response_code'] === '200');
  assert.equal(buckets.length, 20, 'Istio\'s 19 bounds and +Inf');
  assert.equal(buckets.find((b) => b.labels['le'] === '+Inf')?.value, 4);
  const p99 = histogramQuantile(0.99, buckets.map((b) => ({ le: b.labels['le'] === '+Inf' ? Infinity : Number(b.labels['le']), count: b.value })));
  assert.ok(p99 !== undefined && p99 > 0 && p99 <= 1000, `p99 ${p99} ms`);
});

test('escaped label values, comments, timestamps, special values; an odd line is skipped, not fatal', () => {
  const text = [
    '# HELP x_total A counter, with "quotes" in the help.',
    '# TYPE x_total counter',
    'x_total{path="/a,b=c}",q="say \\"hi\\"",back="C:\\\\dir",nl="one\\ntwo"} 3 1700000000000',
    '',
    '# a comment of another kind',
    'x_total{ a = "spaced" , } 4',
    'this is not a sample',
    'x_total{broken="no end} 5',
    'up 1',
    'y{le="+Inf"} +Inf',
    'y{le="1"} -Inf',
    'z NaN',
    'z{a="b"} Nan',
  ].join('\n');
  const r = parsePromText(text);
  assert.equal(r.skipped, 2);
  assert.deepEqual(r.samples[0], { name: 'x_total', labels: { path: '/a,b=c}', q: 'say "hi"', back: 'C:\\dir', nl: 'one\ntwo' }, value: 3 });
  assert.deepEqual(r.samples[1], { name: 'x_total', labels: { a: 'spaced' }, value: 4 });
  assert.deepEqual(r.samples.slice(2, 5).map((s) => [s.name, s.value]), [['up', 1], ['y', Infinity], ['y', -Infinity]]);
  assert.deepEqual(r.samples.slice(5).map((s) => Number.isNaN(s.value)), [true, true]);
  assert.deepEqual(parsePromText(text, (n) => n === 'up').samples.map((s) => s.name), ['up'], 'keep picks families by name');
});

test('histogram_quantile: linear inside the bucket, the first bucket from 0, +Inf answers the highest bound', () => {
  const b = (pairs: [number, number][]) => pairs.map(([le, count]) => ({ le, count }));
  const h = b([[10, 0], [25, 0], [50, 20], [Infinity, 20]]);
  assert.equal(histogramQuantile(0.5, h), 37.5);
  assert.equal(histogramQuantile(0.99, h), 49.75);
  assert.equal(histogramQuantile(0.5, b([[10, 4], [20, 4], [Infinity, 4]])), 5);
  assert.equal(histogramQuantile(0.9, b([[10, 1], [20, 2], [Infinity, 10]])), 20, 'rank in +Inf: the highest finite bound');
  assert.equal(histogramQuantile(0.75, b([[Infinity, 4], [100, 2], [50, 2]])), 100, 'bucket order does not matter');
  assert.equal(histogramQuantile(0.5, b([[10, 0], [Infinity, 0]])), undefined, 'no observations');
  assert.equal(histogramQuantile(0.5, b([[10, 3], [20, 6]])), undefined, 'no +Inf bucket');
  assert.equal(histogramQuantile(0.5, b([[10, 4], [20, 3], [Infinity, 4]])), 5, 'a dip is raised to stay monotonic');
});
