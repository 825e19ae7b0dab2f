#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test
// runner, listing the files explicitly (Node 20's --test takes no globs), and
// fails when fewer tests ran than the floor in test/floor.json.
//
// Two phases: the unit and in-process tests two files at a time, then the
// tests that start whole meshes of processes or benchmarks (test/integration,
// test/e2e, test/up, test/bench) one file at a time, so that two of them never fight over the
// machine's 2 cores.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'dist', 'test');
const only = process.argv.slice(2);

function find(d) {
  const out = [];
  for (const name of readdirSync(d).sort()) {
    const full = join(d, name);
    if (statSync(full).isDirectory()) out.push(...find(full));
    else if (name.endsWith('.test.js')) out.push(full);
  }
  return out;
}

let files = find(dir);
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error(`no test files found under ${dir}${only.length ? ` matching ${only.join(' ')}` : ''}`);
  process.exit(1);
}
const heavy = (f) => ['integration', 'e2e', 'up', 'bench', 'hosts'].some((d) => f.includes(`${sep}test${sep}${d}${sep}`));
const phases = [
  { files: files.filter((f) => !heavy(f)), concurrency: 2 },
  { files: files.filter(heavy), concurrency: 1 },
].filter((p) => p.files.length > 0);

function run({ files: list, concurrency }) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...list], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TRELLIS_ROOT: root },
    });
    // The reporter's summary lines (`ℹ tests N`), kept as they pass: a long failure report after them must not push them out.
    const summary = new Map();
    let partial = '';
    child.stdout.on('data', (b) => {
      process.stdout.write(b);
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^ℹ (tests|fail) (\d+)$/.exec(line);
        if (m) summary.set(m[1], Number(m[2]));
      }
    });
    child.on('close', (code) => {
      const count = (label) => summary.get(label) ?? NaN;
      resolve({ code: code ?? 1, tests: count('tests'), failed: count('fail') });
    });
  });
}

let tests = 0;
let failed = 0;
let code = 0;
for (const phase of phases) {
  const r = await run(phase);
  tests += r.tests;
  failed += r.failed;
  if (r.code !== 0) code = r.code;
}
const floor = JSON.parse(readFileSync(join(root, 'test', 'floor.json'), 'utf8')).minTests;
console.log(`${tests - failed} passed, ${failed} failed`);
if (code !== 0) process.exit(code);
if (only.length === 0 && !(tests >= floor)) {
  console.error(`only ${tests} tests ran; the floor in test/floor.json is ${floor}`);
  process.exit(1);
}
