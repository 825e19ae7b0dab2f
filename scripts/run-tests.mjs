#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test
// runner, listing the files explicitly (Node 20's --test takes no globs), and
// fails when fewer tests ran than the floor in test/floor.json.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

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

const child = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=2', ...files], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, TRELLIS_ROOT: root },
});
let tail = '';
child.stdout.on('data', (b) => {
  process.stdout.write(b);
  tail = (tail + b.toString()).slice(-4000);
});
child.on('close', (code) => {
  const count = (label) => Number(new RegExp(`ℹ ${label} (\\d+)`).exec(tail)?.[1] ?? NaN);
  const tests = count('tests');
  const failed = count('fail');
  const floor = JSON.parse(readFileSync(join(root, 'test', 'floor.json'), 'utf8')).minTests;
  if (code !== 0) process.exit(code ?? 1);
  if (only.length === 0 && !(tests >= floor)) {
    console.error(`only ${tests} tests ran; the floor in test/floor.json is ${floor}`);
    process.exit(1);
  }
  console.log(`${tests - failed} passed, ${failed} failed`);
});
