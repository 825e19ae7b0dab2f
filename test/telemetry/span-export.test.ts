/**
 * The span pipeline (span-export.ts) against a real OTLP/HTTP receiver:
 * batches of `maxExportBatchSize` go at once and a partial one after
 * `scheduledDelayMs`; the queue is bounded while the collector hangs (what
 * overflows is dropped and counted, once logged); close() sends what still
 * waits and returns within its bound even when the collector never
 * answers; the spans carry the records' ids, copied.
 */
import { after, test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import type { TracingSettings } from '../../src/protocol/snapshot.js';
import { randomHex } from '../../src/proxy/trace-context.js';
import { createPipeline } from '../../src/telemetry/span-export.js';
import type { TraceCounts } from '../../src/telemetry/tracing.js';
import { OtlpReceiver } from './otlp-receiver.js';

const receivers: OtlpReceiver[] = [];
after(async () => { await Promise.all(receivers.map((r) => r.close())); });

async function receiver(): Promise<OtlpReceiver> {
  const r = await new OtlpReceiver().start();
  receivers.push(r);
  return r;
}

const settingsFor = (port: number, timeoutMs = 300): TracingSettings => ({
  provider: 'otel', endpoint: `http://127.0.0.1:${port}/v1/traces`, headers: {}, timeoutMs, sampling: 100, maxPathTagLength: 256, maxTagLength: 256,
});

function record(i: number): RequestRecord {
  return Object.freeze({
    direction: 'outbound', proxy: 'sidecar~10.0.0.1~web-1.default~default.svc.cluster.local', requestId: `req-${i}`, method: 'GET',
    authority: 'api:8080', path: `/item/${i}`, protocol: 'HTTP/1.1', status: 200, responseFlags: [], startTime: Date.now(), durationMs: 1.5,
    bytesReceived: 0, bytesSent: 10, cluster: 'outbound|8080||api.default.svc.cluster.local', upstream: '10.0.0.2:8080',
    traceId: randomHex(16), spanId: randomHex(8), parentSpanId: i % 2 ? randomHex(8) : undefined, sampled: true,
  } satisfies RequestRecord);
}

const counts = (): TraceCounts => ({ exported: 0, failed: 0, dropped: 0 });

async function until(ok: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(what());
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('full batches go at once, the rest after the delay; the spans carry the records\' ids', async () => {
  const rx = await receiver();
  const c = counts();
  const lines: string[] = [];
  const p = createPipeline(settingsFor(rx.port), { maxQueueSize: 100, maxExportBatchSize: 10, scheduledDelayMs: 1500 }, c, (l) => lines.push(l));
  const records = Array.from({ length: 25 }, (_, i) => record(i));
  const added = Date.now();
  for (const r of records) p.add(r, undefined);
  await until(() => rx.spans.length >= 20, 1000, () => `received ${rx.spans.length} spans`);
  assert.deepEqual(rx.batches, [10, 10]);
  assert.equal(p.queued, 5);
  await until(() => rx.spans.length === 25, 4000, () => `received ${rx.spans.length} spans`);
  assert.deepEqual(rx.batches, [10, 10, 5]);
  assert.ok(Date.now() - added >= 1500, 'the partial batch waited for the delay');
  await until(() => c.exported === 25, 2000, () => `exported ${c.exported}`);
  assert.deepEqual({ ...c }, { exported: 25, failed: 0, dropped: 0 });
  for (const r of records) {
    const s = rx.spans.find((x) => x.spanId === r.spanId);
    assert.ok(s, `no span ${r.spanId}`);
    assert.equal(s.traceId, r.traceId);
    assert.equal(s.parentSpanId, r.parentSpanId);
    assert.equal(s.name, 'api.default.svc.cluster.local:8080/*');
    assert.equal(s.attributes['url.full'], `http://api:8080${r.path}`);
  }
  assert.deepEqual(lines, []);
  await p.close();
});

test('a collector that hangs: two exports in flight, the queue bounded, the overflow dropped and logged once; close() keeps its bound', async () => {
  const rx = await receiver();
  rx.mode = 'hang';
  const c = counts();
  const lines: string[] = [];
  const p = createPipeline(settingsFor(rx.port, 1000), { maxQueueSize: 30, maxExportBatchSize: 10, scheduledDelayMs: 10_000 }, c, (l) => lines.push(l));
  for (let i = 0; i < 100; i++) p.add(record(i), undefined);
  // 20 in flight (two batches taken out of the queue at once), 30 waiting, 50 dropped.
  assert.equal(p.queued, 30);
  assert.equal(c.dropped, 50);
  await until(() => rx.requests === 2, 800, () => `${rx.requests} export requests`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(rx.requests, 2, 'no third export while two are in flight');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^tracing: the span queue is full \(30 spans, or 4 Mi characters of request text\)/);
  // Each export times out (1 s); the next batches go as slots free up, and fail the same way.
  await until(() => c.failed >= 20, 4000, () => `failed ${c.failed}`);
  const started = Date.now();
  await p.close();
  assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
  assert.equal(c.exported, 0);
  assert.ok(c.failed + c.dropped + p.queued <= 100);
});

test('the request text waiting spans hold is bounded: long paths fill it before the span count does', async () => {
  const rx = await receiver();
  rx.mode = 'hang';
  const c = counts();
  const lines: string[] = [];
  const p = createPipeline(settingsFor(rx.port, 1000), { maxQueueSize: 2048, maxExportBatchSize: 2048, scheduledDelayMs: 60_000 }, c, (l) => lines.push(l));
  // Each path cut from a head ten times its size, as the listeners cut them.
  const head = `GET /${'p'.repeat(200 * 1024)} HTTP/1.1\r\n${'x-filler: y\r\n'.repeat(20_000)}`;
  const path = head.slice(4, 4 + 1 + 200 * 1024);
  for (let i = 0; i < 40; i++) p.add({ ...record(i), path }, undefined);
  // 4 Mi characters hold 20 paths of 200 Ki.
  assert.equal(p.queued, 20);
  assert.equal(c.dropped, 20);
  assert.equal(lines.length, 1);
  await p.close();
});

test('a waiting span keeps its own copy of the path, not the head it was cut from', async () => {
  const rx = await receiver();
  const p = createPipeline(settingsFor(rx.port), { maxQueueSize: 100, maxExportBatchSize: 100, scheduledDelayMs: 60_000 }, counts(), () => undefined);
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = v8.getHeapStatistics().used_heap_size;
  // In a function of its own: an async function's frame would keep the head alive itself across its awaits.
  ((): void => {
    const head = `GET /items/${'7'.repeat(40)} HTTP/1.1\r\n${'x-filler: '.repeat(4_000_000)}\r\n`;
    // V8 makes a slice of 13 characters or more a view of the string it was cut from.
    p.add({ ...record(0), path: head.slice(4, 4 + 50) }, undefined);
  })();
  gc();
  const kept = v8.getHeapStatistics().used_heap_size - before;
  assert.equal(p.queued, 1);
  assert.ok(kept < 10_000_000, `a waiting span keeps ${kept} bytes alive (the head was 40 MB)`);
  await p.close();
});

test('close() sends what waits for its delay', async () => {
  const rx = await receiver();
  const c = counts();
  const p = createPipeline(settingsFor(rx.port), { maxQueueSize: 100, maxExportBatchSize: 10, scheduledDelayMs: 60_000 }, c, () => undefined);
  for (let i = 0; i < 3; i++) p.add(record(i), undefined);
  assert.equal(rx.requests, 0);
  await p.close();
  assert.deepEqual(rx.batches, [3]);
  assert.equal(c.exported, 3);
});
