/** The start-up progress display: plain lines off a terminal, one redrawn line per step on one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress } from '../../src/cli/up/progress.js';
import { capture } from './mesh-fixture.js';

/** What a terminal shows after `text`: applies CPL (ESC[nF), EL (ESC[2K), ED (ESC[J) and drops colours. */
function screen(text: string): string[] {
  const lines = [''];
  let row = 0;
  for (let i = 0; i < text.length;) {
    const m = /^\x1b\[(\d*)([A-Za-z])/.exec(text.slice(i, i + 12));
    if (m) {
      const n = Number(m[1] || 1);
      if (m[2] === 'F') row = Math.max(0, row - n);
      else if (m[2] === 'K') lines[row] = '';
      else if (m[2] === 'J') { lines.length = row + 1; lines[row] = ''; }
      i += m[0].length;
      continue;
    }
    if (text[i] === '\n') { row++; if (row >= lines.length) lines.push(''); } else lines[row] = (lines[row] ?? '') + text[i];
    i++;
  }
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

test('plain progress prints one line per step when it ends, and notes at once', () => {
  const out = capture();
  const p = createProgress(out, false);
  const a = p.step('control plane');
  const b = p.step('accounts.bank');
  b.update('starting sidecar');
  p.note('  accounts.bank.app exited (code 1)');
  b.fail('not ready');
  a.done('ready in 0.1s');
  a.done('twice');
  p.close();
  assert.equal(out.text(), '  accounts.bank.app exited (code 1)\n✗ accounts.bank  not ready\n✓ control plane  ready in 0.1s\n');
});

test('on a terminal each step keeps one line, redrawn in place until it ends', () => {
  const out = Object.assign(capture(), { isTTY: true, rows: 40 });
  const p = createProgress(out);
  const steps = ['a', 'b', 'c'].map((n) => p.step(n));
  steps[1]!.update('half way');
  assert.deepEqual(screen(out.text()).map((l) => l.slice(2)), ['a', 'b  half way', 'c']);
  steps[1]!.done('ok');
  steps[0]!.done();
  p.note('a note');
  steps[2]!.fail('broken');
  p.close();
  assert.deepEqual(screen(out.text()), ['✓ a', '✓ b  ok', '✗ c  broken', 'a note']);
});

test('a block taller than the terminal turns into plain lines, losing no step', () => {
  const out = Object.assign(capture(), { isTTY: true, rows: 4 });
  const p = createProgress(out);
  const steps = ['s1', 's2', 's3', 's4', 's5', 's6'].map((n) => p.step(n));
  steps[1]!.done();
  for (const [i, s] of steps.entries()) if (i !== 1) s.done(`#${i}`);
  p.close();
  const shown = screen(out.text());
  for (const n of ['s1', 's2', 's3', 's4', 's5', 's6']) assert.equal(shown.filter((l) => l.startsWith(`✓ ${n}`)).length, 1, `${n} once in ${JSON.stringify(shown)}`);
});
