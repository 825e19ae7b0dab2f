/**
 * Access logs through two real data planes: one JSON line per request on
 * each proxy with the fields operators look for, the `errors` filter, and
 * the TEXT encoding.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import { AccessLog } from '../../src/telemetry/access-log.js';
import { eventually } from '../helpers/proxy.js';
import { startTwoProxies, type TwoProxies } from './two-proxies.js';

const dir = mkdtempSync(join(tmpdir(), 'trellis-access-'));
const callerLog = join(dir, 'logs', 'caller.log');
const calleeLog = join(dir, 'callee.log');
let p: TwoProxies;

const lines = (file: string): Record<string, unknown>[] =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];

before(async () => {
  p = await startTwoProxies({ accessLog: { file: callerLog } }, { accessLog: { file: calleeLog, filter: 'errors' } });
});
after(async () => {
  await p?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('one JSON line per request with times, sizes, upstream, route, principals, workloads and the request id', async () => {
  const t0 = Date.now();
  const r = await p.client.call('http://api/hello?x=1', { method: 'POST', body: 'hello' });
  assert.equal(r.status, 200);
  const [line] = await eventually(() => (lines(callerLog).length >= 1 ? lines(callerLog) : undefined), 3000, () => 'the caller wrote no access log line');
  const l = line!;
  assert.equal(l['type'], 'access');
  assert.ok(Date.parse(l['start_time'] as string) >= t0 - 5);
  assert.deepEqual({ ...l, start_time: 0, duration: 0, upstream_service_time: 0, request_id: '' }, {
    type: 'access', start_time: 0, direction: 'outbound', method: 'POST', authority: 'api', path: '/hello?x=1', protocol: 'HTTP/1.1',
    response_code: 200, response_flags: '-', grpc_status: null, bytes_received: 5, bytes_sent: Buffer.byteLength(r.text),
    duration: 0, upstream_service_time: 0, upstream_host: p.callee.addresses.inbound, upstream_cluster: 'outbound|80||api.shop.svc.cluster.local',
    route_name: 'default', source_principal: 'spiffe://cluster.local/ns/shop/sa/web', destination_principal: 'spiffe://cluster.local/ns/shop/sa/api',
    source_workload: 'web-v1.shop', destination_workload: 'api-v2.shop', request_id: '', attempts: 1, proxy: 'web-v1.shop',
  });
  assert.equal(typeof l['duration'], 'number');
  assert.equal(typeof l['upstream_service_time'], 'number');
  assert.ok((l['upstream_service_time'] as number) <= (l['duration'] as number) + 1);
  assert.equal(l['request_id'], JSON.parse(r.text).headers['x-request-id']);
});

test('the errors filter keeps only failed requests: the callee logs its three 503 attempts and none of the 200s', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await p.client.call('http://api/ok')).status, 200);
  assert.equal((await p.client.call('http://api/fail')).status, 503);
  const got = await eventually(() => (lines(calleeLog).length >= 3 && lines(callerLog).length >= 5 ? lines(calleeLog) : undefined), 3000, () => `callee log: ${lines(calleeLog).length} lines`);
  assert.deepEqual(got.map((l) => [l['direction'], l['path'], l['response_code']]), [['inbound', '/fail', 503], ['inbound', '/fail', 503], ['inbound', '/fail', 503]]);
  assert.deepEqual([got[0]!['source_workload'], got[0]!['destination_workload']], [null, 'api-v2.shop'], 'over plaintext the caller is unknown');
  assert.ok(readFileSync(calleeLog, 'utf8').startsWith('{"type":"access",'), 'the marker `trellis logs --access` looks for');
  const last = lines(callerLog).at(-1)!;
  assert.deepEqual([last['path'], last['response_code'], last['response_flags'], last['attempts']], ['/fail', 503, 'URX', 3]);
  assert.equal(got[0]!['request_id'], last['request_id'], 'the same request id on both proxies');
});

test('TEXT encoding: Envoy\'s default line shape', async () => {
  const file = join(dir, 'text.log');
  const log = new AccessLog({ file, encoding: 'TEXT' });
  const rec: RequestRecord = {
    direction: 'outbound', proxy: 'web-v1.shop', requestId: 'r-1', method: 'GET', authority: 'api', path: '/p', protocol: 'HTTP/1.1',
    status: 503, responseFlags: ['UF', 'URX'], cluster: 'outbound|80||api.shop.svc.cluster.local', route: 'default', upstream: '127.0.0.1:9',
    startTime: Date.UTC(2026, 0, 2, 3, 4, 5, 6), durationMs: 12.4, bytesReceived: 0, bytesSent: 19, sourceIdentity: 'spiffe://cluster.local/ns/shop/sa/web',
  };
  log.log(rec);
  await log.close();
  assert.equal(readFileSync(file, 'utf8'),
    '[2026-01-02T03:04:05.006Z] "GET /p HTTP/1.1" 503 UF,URX 0 19 12 - "r-1" "api" "127.0.0.1:9" outbound|80||api.shop.svc.cluster.local default spiffe://cluster.local/ns/shop/sa/web -\n');
});

test('MeshConfig accessLogFile in the snapshot\'s mesh settings turns the log on, wins over the default, and "" turns it off', async () => {
  const { ProxyTelemetry } = await import('../../src/telemetry/proxy-telemetry.js');
  const { REQUEST_CHANNEL } = await import('../../src/protocol/request-record.js');
  const diagnostics_channel = (await import('node:diagnostics_channel')).default;
  const meshFile = join(dir, 'mesh.log');
  const fallback = join(dir, 'fallback.log');
  const s = p.caller.snapshot!;
  const t = new ProxyTelemetry({ metrics: false, defaultAccessLog: { file: fallback } });
  const publish = (path: string) => diagnostics_channel.channel(REQUEST_CHANNEL).publish({
    direction: 'outbound', proxy: s.node.id, requestId: path, method: 'GET', authority: 'api', path, protocol: 'HTTP/1.1', status: 200,
    responseFlags: [], startTime: Date.now(), durationMs: 1, bytesReceived: 0, bytesSent: 0,
  } satisfies RequestRecord);
  try {
    t.snapshotApplied({ ...s, mesh: { ...s.mesh, accessLogFile: meshFile } as typeof s.mesh });
    publish('/one');
    t.snapshotApplied({ ...s, mesh: { ...s.mesh, accessLogFile: '' } as typeof s.mesh });
    publish('/none');
    t.snapshotApplied(s);
    publish('/fallback');
  } finally {
    await t.close();
  }
  // The caller's own data plane logs these records too (same node id): only the two files of this telemetry are checked.
  assert.deepEqual(lines(meshFile).map((l) => l['path']), ['/one']);
  assert.deepEqual(lines(fallback).map((l) => l['path']), ['/fallback']);
});

test('a record that a part of telemetry fails on is counted in trellis_proxy_telemetry_dropped_total by part, and the records after it are still handled', async () => {
  const { ProxyTelemetry } = await import('../../src/telemetry/proxy-telemetry.js');
  const { REQUEST_CHANNEL } = await import('../../src/protocol/request-record.js');
  const diagnostics_channel = (await import('node:diagnostics_channel')).default;
  const file = join(dir, 'dropped.log');
  const s = p.caller.snapshot!;
  const t = new ProxyTelemetry({ accessLog: { file } });
  const good = (path: string): RequestRecord => ({
    direction: 'outbound', proxy: s.node.id, requestId: path, method: 'GET', authority: 'api', path, protocol: 'HTTP/1.1', status: 200,
    responseFlags: [], startTime: Date.now(), durationMs: 1, bytesReceived: 0, bytesSent: 0,
  });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  let text: string;
  try {
    t.snapshotApplied(s);
    const channel = diagnostics_channel.channel(REQUEST_CHANNEL);
    channel.publish(good('/before'));
    // No response flags at all: what no producer of ours sends, and what both the metrics and the log read.
    channel.publish({ ...good('/broken'), responseFlags: undefined } as unknown as RequestRecord);
    channel.publish(good('/after'));
    text = (await t.render(undefined)).body;
  } finally {
    await t.close();
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
  }
  assert.match(text, /^trellis_proxy_telemetry_dropped_total\{part="metrics"\} 1$/m);
  assert.match(text, /^trellis_proxy_telemetry_dropped_total\{part="access_log"\} 1$/m);
  assert.doesNotMatch(text, /^trellis_proxy_telemetry_dropped_total\{part="tracing"\}/m);
  assert.deepEqual(lines(file).map((l) => l['path']), ['/before', '/after']);
  // One warning per telemetry, for its first failure only (the caller's own data plane, of the same node id, sees these records too).
  const dropped = warnings.filter((w) => /^telemetry \((metrics|access_log)\) dropped a request record/.test(w));
  assert.ok(dropped.length >= 1 && dropped.length <= 2, warnings.join('\n'));
});

test('JSON lines escape what a request or the configuration can put in a string: quotes, backslashes, control characters, non-ASCII', async () => {
  const file = join(dir, 'escape.log');
  const log = new AccessLog({ file });
  const nasty = '/a"b\\c\n\u0001d/é/☃/"},"response_code":999';
  const r: RequestRecord = {
    direction: 'inbound', proxy: 'web."shop"', requestId: 'id\\"x', method: 'GET', authority: 'h"ost:80', path: nasty, protocol: 'HTTP/1.1',
    status: 200, responseFlags: [], route: 'r\u2028oute', startTime: Date.now(), durationMs: 1.5, bytesReceived: 0, bytesSent: 5_000_000_123,
    upstreamMs: 0.4, attempts: 3, traceId: 'tr"ace',
  };
  log.log(r);
  await log.close();
  const [l] = lines(file);
  assert.equal(l!['path'], nasty);
  assert.equal(l!['response_code'], 200);
  assert.equal(l!['authority'], 'h"ost:80');
  assert.equal(l!['proxy'], 'web."shop"');
  assert.equal(l!['request_id'], 'id\\"x');
  assert.equal(l!['route_name'], 'r\u2028oute');
  assert.equal(l!['upstream_host'], null);
  assert.equal(l!['grpc_status'], null);
  // Numbers past 32 bits, rounded times, and an id that is not plain.
  assert.equal(l!['bytes_sent'], 5_000_000_123);
  assert.equal(l!['duration'], 2);
  assert.equal(l!['upstream_service_time'], 0);
  assert.equal(l!['attempts'], 3);
  assert.equal(l!['trace_id'], 'tr"ace');
});

test('many lines across batches, lines longer than a batch, and fields that change between lines: every line whole, in order, with its own values', async () => {
  const file = join(dir, 'batches.log');
  const log = new AccessLog({ file });
  const statuses = [200, 503, 200, 404];
  const t0 = Date.UTC(2026, 11, 31, 23, 59, 58, 5);
  const rec = (i: number): RequestRecord => ({
    // Most ids plain ASCII (written as they are), some that JSON escapes or that are not ASCII (encoded as UTF-8), a few that make a line longer than a batch.
    direction: i % 5 === 0 ? 'inbound' : 'outbound', proxy: 'web-v1.shop', requestId: i % 1499 === 3 ? `\u0001${i}`.repeat(30_000) : i % 9 === 4 ? `r"${i}\u00e9` : i % 9 === 7 ? `r-${i}-\u2603` : `r-${i}`, method: i % 3 === 0 ? 'POST' : 'GET', authority: 'api',
    // A path of 140 000 characters every 997 lines: longer than a batch (256 KiB) once encoded, with a two-byte character.
    path: i % 997 === 0 ? `/long/${'é'.repeat(140_000)}` : `/p/${i % 7}`, protocol: 'HTTP/1.1',
    status: statuses[i % 4]!, responseFlags: i % 4 === 1 ? ['UF', 'URX'] : [], cluster: `outbound|80||api${i % 11}.shop.svc.cluster.local`, route: i % 2 ? 'a' : 'b',
    // Start times back and forth across milliseconds and seconds, as records come in the order requests end.
    upstream: `127.0.0.1:${9000 + (i % 13)}`, startTime: t0 + ((i * 7919) % 5003), durationMs: i % 50, bytesReceived: i, bytesSent: 2 * i,
    ...(i % 3 === 1 ? { traceId: (i + 1).toString(16).padStart(32, '0'), spanId: 'b7ad6b7169203331', sampled: false } : {}),
  });
  const n = 5000;
  for (let i = 0; i < n; i++) log.log(rec(i));
  await log.close();
  const got = lines(file);
  assert.equal(got.length, n);
  for (let i = 0; i < n; i++) {
    const r = rec(i);
    const l = got[i]!;
    assert.deepEqual(
      [l['request_id'], l['trace_id'], l['start_time'], l['direction'], l['method'], l['path'], l['response_code'], l['response_flags'], l['upstream_cluster'], l['route_name'], l['upstream_host'], l['bytes_received'], l['bytes_sent'], l['duration']],
      [r.requestId, r.traceId, new Date(r.startTime).toISOString(), r.direction, r.method, r.path, r.status, r.responseFlags.length ? r.responseFlags.join(',') : '-', r.cluster, r.route, r.upstream, r.bytesReceived, r.bytesSent, r.durationMs],
      `line ${i}`,
    );
  }
});

const reuseRecord = (i: number): RequestRecord => ({
  direction: 'outbound', proxy: 'web-v1.shop', requestId: `req-${i}-${'x'.repeat(i % 200)}`, method: 'GET', authority: 'api', path: `/p/${i}`,
  protocol: 'HTTP/1.1', status: 200, responseFlags: [], startTime: Date.UTC(2026, 0, 1) + i, durationMs: i % 90, bytesReceived: i, bytesSent: 3 * i,
});

/** Rounds of lines, each filling more than one batch, with the destination writing them out between rounds; the number of lines logged. */
async function reuseRounds(log: AccessLog): Promise<number> {
  let n = 0;
  for (let round = 0; round < 12; round++) {
    for (let k = 0; k < 1600; k++) log.log(reuseRecord(n++));
    await new Promise((r) => setTimeout(r, 20));
  }
  await log.close();
  return n;
}

const assertReuseLines = (text: string, n: number): void => {
  const got = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(got.length, n);
  got.forEach((l, i) => assert.deepEqual([l['request_id'], l['path'], l['bytes_sent']], [reuseRecord(i).requestId, `/p/${i}`, 3 * i], `line ${i}`));
};

test('batch buffers are reused once written, to a FIFO being read: rounds of lines, every line whole and in order', async () => {
  const { execFileSync } = await import('node:child_process');
  const { createReadStream } = await import('node:fs');
  const fifo = join(dir, 'reuse.fifo');
  execFileSync('mkfifo', [fifo]);
  const chunks: Buffer[] = [];
  const reader = createReadStream(fifo).on('data', (b: Buffer | string) => chunks.push(Buffer.from(b)));
  const n = await reuseRounds(new AccessLog({ file: fifo }));
  await new Promise<void>((r) => reader.on('close', () => r()));
  assertReuseLines(Buffer.concat(chunks).toString('utf8'), n);
});

test('batch buffers are reused once written, to a regular file: rounds of lines, every line whole and in order', async () => {
  const file = join(dir, 'reuse.log');
  const n = await reuseRounds(new AccessLog({ file }));
  assertReuseLines(readFileSync(file, 'utf8'), n);
});

test('a destination that takes nothing (a FIFO nobody reads yet) holds at most 16 MiB: later lines are dropped with one warning, the proxy goes on', async () => {
  const { execFileSync } = await import('node:child_process');
  const { createReadStream } = await import('node:fs');
  const fifo = join(dir, 'stalled.fifo');
  execFileSync('mkfifo', [fifo]);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  const log = new AccessLog({ file: fifo });
  const rec: RequestRecord = {
    direction: 'outbound', proxy: 'web-v1.shop', requestId: 'r', method: 'GET', authority: 'api', path: `/${'x'.repeat(900)}`, protocol: 'HTTP/1.1',
    status: 200, responseFlags: [], startTime: Date.now(), durationMs: 1, bytesReceived: 0, bytesSent: 0,
  };
  // About 40 MiB of lines (each over 1 KiB) while the FIFO has no reader: sonic-boom cannot even open it.
  for (let i = 0; i < 40_000; i++) log.log(rec);
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  const drops = warnings.filter((w) => /lines are dropped while 16 MiB wait/.test(w));
  assert.equal(drops.length, 1, warnings.join('\n'));
  assert.ok(process.memoryUsage().arrayBuffers < 80 * 1024 * 1024, `${process.memoryUsage().arrayBuffers} bytes of buffers held`);
  // A reader comes: what was kept is written, and the log closes.
  let bytes = 0;
  const reader = createReadStream(fifo).on('data', (b: Buffer | string) => { bytes += b.length; });
  await log.close();
  await new Promise<void>((r) => reader.on('close', () => r()));
  assert.ok(bytes > 8 * 1024 * 1024 && bytes <= 16 * 1024 * 1024 + 256 * 1024, `${bytes} bytes reached the reader`);
});
