/**
 * crossover.js, the instrument for what the access log, tracing and the
 * service metrics cost in the same sidecars: a short run (one pair of steps)
 * goes through, the switch is seen to take in both meshes (the tool fails
 * otherwise: a log that grew, spans that came or requests counted while a
 * mesh's parts were off), the figures
 * combine as documented, and nothing it started is left running. Needs
 * nginx and h2load (`.ci/run` installs them); skipped here without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';

const TOOL = join(ROOT, 'dist', 'bench', 'data-plane', 'crossover.js');
const haveTools = !spawnSync('nginx', ['-v']).error && !spawnSync('h2load', ['--version']).error;
const needTools = haveTools || process.env.CI ? {} : { skip: 'nginx or h2load is not installed (apt-get install nginx nghttp2-client)' };

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [TOOL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

/** Processes whose command line names one of the tool's directories. */
function leftovers(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { continue; }
    if (cmd.includes('trellis-crossover-')) found.push(`${pid}: ${cmd}`);
  }
  return found;
}

interface Report {
  parts: string[]; sampling_percent: number; duration_s: number;
  pairs: { aOn: number; aOff: number; bOn: number; bOff: number; ratio: number }[];
  median: number; min: number; max: number;
}

test('crossover.js: one pair of steps with the access log, tracing and the service metrics swapped between two meshes; the switches take; on ÷ off from the four figures; nothing left running', needTools, async () => {
  const r = await run(['--pairs', '1', '--duration', '1', '--warmup', '0.5', '--json']);
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out) as Report;
  assert.deepEqual(rep.parts, ['log', 'trace', 'metrics']);
  assert.equal(rep.sampling_percent, 1);
  assert.equal(rep.duration_s, 1);
  assert.equal(rep.pairs.length, 1);
  const p = rep.pairs[0]!;
  for (const v of [p.aOn, p.aOff, p.bOn, p.bOff]) assert.ok(Number.isFinite(v) && v > 0, `CPU per request ${v}`);
  assert.ok(Math.abs(p.ratio - Math.sqrt((p.aOn * p.bOn) / (p.aOff * p.bOff))) < 1e-9);
  assert.deepEqual([rep.median, rep.min, rep.max], [p.ratio, p.ratio, p.ratio]);
  assert.match(r.err, /pair 1\/1: A on, B off[\s\S]*pair 1\/1: A off, B on/);
  assert.deepEqual(leftovers(), []);
});

test('crossover.js: the service metrics alone (the access log and tracing stay off), human-readable', needTools, async () => {
  const r = await run(['--parts', 'metrics', '--pairs', '1', '--duration', '1', '--warmup', '0.5']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^pair 1: A [\d.]+ on \/ [\d.]+ off, B [\d.]+ on \/ [\d.]+ off µs a request \(both sidecars\): on ÷ off [\d.]+$/m);
  assert.match(r.out, /^the service metrics on ÷ off, CPU per request in the same sidecars: [\d.]+× \([\d.]+–[\d.]+ over 1 pair\)$/m);
  assert.deepEqual(leftovers(), []);
});

test('crossover.js: a bad flag exits 2 with the usage', async () => {
  const r = await run(['--parts', 'log,traces']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--parts takes all, or a comma-separated list of log, trace, metrics \(not "log,traces"\)/);
  assert.match(r.err, /--pairs N/);
  const n = await run(['--pairs', '0']);
  assert.equal(n.code, 2);
  assert.match(n.err, /--pairs takes a number of at least 1/);
});
