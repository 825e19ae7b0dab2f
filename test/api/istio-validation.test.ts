/**
 * Istio's own validation test data, run as a peer suite: Trellis should reach
 * Istio's verdict on each document (test/fixtures/istio-validation/).
 *
 * - A document from a `-valid.yaml` file of a supported kind must load with
 *   no error.
 * - A document from an `-invalid.yaml` file (it carries `_err:`, Istio's
 *   expected error, which is removed before loading) must be rejected for
 *   that reason: some error must name the field that `expected-fields.json`
 *   gives for it, or a field below it (`spec.ports` is matched by
 *   `spec.ports.http` and `spec.ports[0]`, never by `spec` or `spec.portsX`);
 *   where the entry also gives a `message`, that error's text must contain it.
 * - A document of a kind Trellis rejects by name must get TRL1003, valid or not.
 *
 * Each case is a subtest. The suite as a whole must pass at least
 * `floor.json`'s `minPassing` cases; the floor only goes up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, parseAllDocuments } from 'yaml';
import type { Diagnostic } from '../../src/api/diagnostic.js';
import { parseYaml } from '../../src/api/load.js';

const ROOT = process.env.TRELLIS_ROOT ?? join(new URL('.', import.meta.url).pathname, '..', '..', '..');
const DIR = join(ROOT, 'test', 'fixtures', 'istio-validation');
const UNSUPPORTED = new Set(['EnvoyFilter', 'WasmPlugin', 'ProxyConfig', 'WorkloadGroup']);

type Expected = string | { readonly field: string; readonly message?: string };
const expectedFields = JSON.parse(readFileSync(join(DIR, 'expected-fields.json'), 'utf8')) as Record<string, Expected>;
const floor = (JSON.parse(readFileSync(join(DIR, 'floor.json'), 'utf8')) as { minPassing: number }).minPassing;

interface Case {
  readonly id: string;
  readonly kind: string;
  readonly istioError: string | undefined;
  readonly diagnostics: readonly Diagnostic[];
  /** Why the case fails, or undefined when Trellis agrees with Istio. */
  readonly failure: string | undefined;
}

/** Whether `field` is `expected` or lies below it. */
function atOrBelow(field: string | undefined, expected: string): boolean {
  if (field === undefined) return false;
  return field === expected || field.startsWith(`${expected}.`) || field.startsWith(`${expected}[`);
}

function verdict(file: string, key: string, kind: string, istioError: string | undefined, ds: readonly Diagnostic[]): string | undefined {
  const errors = ds.filter((d) => d.level === 'error');
  const shown = errors.map((d) => `${d.code} ${d.field ?? ''}: ${d.message}`).join('; ') || 'none';
  if (UNSUPPORTED.has(kind)) return ds.some((d) => d.code === 'TRL1003') ? undefined : `expected TRL1003, got ${shown}`;
  if (file.endsWith('-valid.yaml')) return errors.length === 0 ? undefined : `expected no errors, got ${shown}`;
  const exp = expectedFields[key];
  if (exp === undefined) return `no entry for ${key} in expected-fields.json (Istio says: ${istioError})`;
  const { field, message } = typeof exp === 'string' ? { field: exp, message: undefined } : exp;
  const hit = errors.some((d) => atOrBelow(d.field, field) && (message === undefined || d.message.includes(message)));
  return hit ? undefined : `expected an error at ${field}${message ? ` saying "${message}"` : ''} (Istio: ${istioError}); got ${shown}`;
}

function loadCases(): Case[] {
  const cases: Case[] = [];
  for (const file of readdirSync(DIR).filter((n) => n.endsWith('.yaml')).sort()) {
    const docs = parseAllDocuments(readFileSync(join(DIR, file), 'utf8'));
    const names = docs.map((d) => (isMap(d.contents) ? String(d.getIn(['metadata', 'name'])) : ''));
    docs.forEach((doc, index) => {
      if (!isMap(doc.contents)) return; // an empty document, e.g. after a trailing `---`
      const err = doc.get('_err');
      const istioError = err === undefined ? undefined : String(err);
      doc.delete('_err');
      const name = names[index]!;
      const key = names.filter((n) => n === name).length > 1 ? `${file}#${index}` : `${file}#${name}`;
      const kind = String(doc.get('kind'));
      const { diagnostics } = parseYaml(String(doc), `${file}#${index}`);
      cases.push({ id: key, kind, istioError, diagnostics, failure: verdict(file, key, kind, istioError, diagnostics) });
    });
  }
  return cases;
}

const cases = loadCases();
const passing = cases.filter((c) => c.failure === undefined).length;

test('Istio validation peer suite', async (t) => {
  for (const c of cases) {
    await t.test(`${c.id} (${c.kind})`, () => {
      assert.equal(c.failure, undefined, c.failure);
    });
  }
});

test(`Istio validation peer suite passes at least the floor`, () => {
  console.log(`istio-validation: ${passing}/${cases.length} cases agree with Istio (floor ${floor})`);
  assert.ok(cases.length >= 100, `only ${cases.length} cases were read from ${DIR}`);
  assert.ok(passing >= floor, `${passing} cases pass; floor.json requires ${floor}`);
});

test('every expected-fields.json entry names a case', () => {
  const ids = new Set(cases.map((c) => c.id));
  assert.deepEqual(Object.keys(expectedFields).filter((k) => !ids.has(k)), []);
});
