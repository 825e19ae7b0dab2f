/**
 * The house rules of ../shared/DESIGN.md §2, checked on the source: which
 * folder may import which, and that the compiler and the decision functions
 * stay pure (no I/O, no clock, no randomness).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './helpers/mesh.js';

const SRC = join(ROOT, 'src');
const ALLOWED: Record<string, readonly string[]> = {
  api: [],
  registry: ['api'],
  policy: ['api', 'protocol'],
  protocol: ['api'],
  compile: ['api', 'registry', 'policy', 'protocol'],
  ca: ['api'],
  telemetry: ['protocol'],
  controlplane: ['api', 'registry', 'policy', 'protocol', 'compile', 'ca', 'telemetry'],
  proxy: ['protocol', 'policy', 'telemetry', 'ca'],
};
const PURE = ['compile', 'policy', 'protocol'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.ts') ? [p] : [];
  });
}

const sources = files(SRC).map((f) => ({ file: relative(SRC, f), text: readFileSync(f, 'utf8') }));
const importsOf = (text: string) => [...text.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);

test('each folder imports only the folders DESIGN.md §2 allows', () => {
  const bad: string[] = [];
  for (const { file, text } of sources) {
    const folder = file.split('/')[0]!;
    const allowed = ALLOWED[folder];
    if (!allowed) continue; // tools (cli, analyze, meshtest, dashboard) may import anything below them
    for (const spec of importsOf(text)) {
      if (!spec.startsWith('.')) continue;
      const target = relative(SRC, join(SRC, file, '..', spec)).split('/')[0]!;
      if (target !== folder && !allowed.includes(target)) bad.push(`${file} imports ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
  assert.ok(sources.length > 30, 'the source tree was read');
});

test('the compiler, the decision functions and the protocol do no I/O and read no clock or randomness', () => {
  const bad: string[] = [];
  for (const { file, text } of sources) {
    if (!PURE.includes(file.split('/')[0]!)) continue;
    for (const spec of importsOf(text)) {
      if (/^node:(fs|net|http|https|http2|child_process|dgram|dns|tls|worker_threads)/.test(spec)) bad.push(`${file} imports ${spec}`);
    }
    for (const what of ['Date.now(', 'new Date(', 'Math.random(', 'performance.now(', 'process.env']) {
      if (text.includes(what)) bad.push(`${file} uses ${what}`);
    }
  }
  assert.deepEqual(bad, []);
});
