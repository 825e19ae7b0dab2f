/**
 * The proxy's limits as configuration: sizes and durations as `trellis
 * proxy` takes them, the defaults (Envoy's), and values that are refused
 * with the field or flag named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DEFAULT_LIMITS, parseSize, resolveLimits } from '../../src/proxy/limits.js';
import { ROOT } from '../helpers/mesh.js';
import { Proc } from '../integration/processes.js';
import { rawExchange } from './limited-mesh.js';

test('limits: sizes in bytes, SI and IEC units', () => {
  assert.equal(parseSize('65536'), 65536);
  assert.equal(parseSize('64KiB'), 65536);
  assert.equal(parseSize('64KB'), 64000);
  assert.equal(parseSize('1MiB'), 1048576);
  assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
  assert.equal(parseSize('0'), 0);
  for (const bad of ['', '-1', '1.5MiB', '64k', 'KiB', '1 TiB']) assert.equal(parseSize(bad), undefined, bad);
});

test('limits: the defaults are Envoy\'s (request headers 60 KiB, stream idle 5 min, idle 1 h, no request timeout, no body limit)', () => {
  assert.deepEqual(resolveLimits(), DEFAULT_LIMITS);
  assert.deepEqual(DEFAULT_LIMITS, {
    headersTimeoutMs: 60_000, idleTimeoutMs: 3_600_000, streamIdleTimeoutMs: 300_000, requestTimeoutMs: 0,
    maxRequestHeadersBytes: 61_440, maxRequestBodyBytes: 0,
  });
  assert.equal(resolveLimits({ maxRequestBodyBytes: 1024 }).maxRequestBodyBytes, 1024);
  assert.equal(resolveLimits({ maxRequestBodyBytes: 1024 }).streamIdleTimeoutMs, 300_000);
});

test('limits: values that cannot be limits are refused, naming the field', () => {
  assert.throws(() => resolveLimits({ streamIdleTimeoutMs: -1 }), /streamIdleTimeoutMs must be a whole number ≥ 0 of milliseconds/);
  assert.throws(() => resolveLimits({ idleTimeoutMs: 2 ** 31 }), /idleTimeoutMs must be .* up to 2147483647/);
  assert.throws(() => resolveLimits({ maxRequestHeadersBytes: 0 }), /maxRequestHeadersBytes must be a whole number ≥ 1/);
  assert.throws(() => resolveLimits({ maxRequestBodyBytes: 1.5 }), /maxRequestBodyBytes/);
  assert.throws(() => resolveLimits({ maxBodyBytes: 1 } as never), /unknown proxy limit "maxBodyBytes"; known: headersTimeoutMs/);
});

test('limits: trellis proxy refuses a malformed limit flag before it starts, naming the flag', () => {
  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'proxy', '--control-plane', '127.0.0.1:1', '--instance', 'x.y', ...args], { encoding: 'utf8', timeout: 10_000 });
  const cases: [string[], RegExp][] = [
    [['--max-request-headers', '0'], /--max-request-headers must be a size like 64KiB, 1MiB or 65536 \(bytes\), at least 1, not "0"/],
    [['--max-request-body', 'lots'], /--max-request-body must be a size like 64KiB/],
    [['--stream-idle-timeout', '5'], /--stream-idle-timeout must be a duration like 10s, 500ms or 1m, not "5"/],
    [['--idle-timeout', '1000h'], /--idle-timeout must be at most 596h/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status} ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('limits: trellis proxy applies its limit flags to its listeners', async () => {
  // No control plane: the listeners are up (and refuse bad input) before any snapshot arrives. The proxy keeps
  // trying to reach the control plane with its (well-formed, never minted) join token meanwhile.
  const token = `trellis-join.v1.${Buffer.from('web-v1.shop').toString('base64url')}.${'0'.repeat(64)}.${Buffer.alloc(32).toString('base64url')}`;
  const proxy = Proc.trellis('proxy', ['proxy', '--control-plane', '127.0.0.1:1', '--instance', 'web-v1.shop', '--join-token', token, '--max-request-headers', '1KiB', '--headers-timeout', '500ms']);
  try {
    const [, , outbound] = await proxy.line(/listening inbound=(\S+) outbound=(\S+)/, 8000);
    const big = await rawExchange(outbound!, [`GET http://api/ HTTP/1.1\r\nHost: api\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`]);
    assert.equal(big.status, 431, big.raw);
    assert.equal(big.body, 'request headers too large: the request head is over the limit of 1024 bytes\n');
    const slow = await rawExchange(outbound!, [...'GET http://api/ HTTP/1.1\r\nHost: api\r\n\r\n'], { gapMs: 100, waitMs: 4000 });
    assert.equal(slow.status, 408, slow.raw);
    assert.equal(slow.body, 'request header timeout: the request head did not arrive within 500 ms\n');
  } finally {
    await proxy.stop();
  }
});
