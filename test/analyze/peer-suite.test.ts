/**
 * The peer suite: Istio's own analyzer test table run through the Trellis
 * analyzers (see peer.ts for how a case is run and compared).
 *
 * - The number of agreeing cases may not fall below the floor in
 *   peer-floor.json; raise the floor when more agree (it only goes up).
 * - Each case Trellis deliberately disagrees with is listed, with the reason,
 *   in peer-disagreements.json; a listed case that starts agreeing fails the
 *   test, so the list stays true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../api/kind-table.js';
import { peerCases, runCase } from './peer.js';

const HERE = join(ROOT, 'test', 'analyze');
const floor = (JSON.parse(readFileSync(join(HERE, 'peer-floor.json'), 'utf8')) as { agreeing: number }).agreeing;
const disagreements = JSON.parse(readFileSync(join(HERE, 'peer-disagreements.json'), 'utf8')) as Record<string, string>;

test('Istio analyzer cases: at least the floor agree, and every listed disagreement still disagrees', (t) => {
  const cases = peerCases();
  assert.equal(cases.length, 74, 'cases-config.json holds the 74 config cases');
  let agreeing = 0;
  const unexplained: string[] = [];
  const stale: string[] = [];
  for (const c of cases) {
    const r = runCase(c);
    const listed = disagreements[String(c.id)];
    if (r.agree) {
      agreeing++;
      if (listed !== undefined) stale.push(`#${c.id} ${c.name}`);
    } else if (listed === undefined) {
      unexplained.push(`#${c.id} ${c.name} (${c.analyzerName})${r.covered ? '' : ' [no Trellis analyzer]'}\n    missing: ${r.missing.join('; ') || '-'}\n    extra:   ${r.extra.join('; ') || '-'}`);
    }
  }
  t.diagnostic(`${agreeing} of ${cases.length} cases agree (floor ${floor}); ${Object.keys(disagreements).length} listed as deliberate disagreements`);
  if (unexplained.length) t.diagnostic(`not yet agreeing:\n${unexplained.join('\n')}`);
  assert.deepEqual(stale, [], 'these cases agree now: remove them from peer-disagreements.json');
  assert.ok(agreeing >= floor, `${agreeing} cases agree, below the floor of ${floor}`);
});

test('peer-disagreements.json names real cases, each with a reason', () => {
  const ids = new Set(peerCases().map((c) => String(c.id)));
  for (const [id, why] of Object.entries(disagreements)) {
    assert.ok(ids.has(id), `case ${id} is not in cases-config.json`);
    assert.ok(why.trim().length > 20, `case ${id}: say why Trellis disagrees`);
  }
});
