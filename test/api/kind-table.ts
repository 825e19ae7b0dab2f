/**
 * Table-driven schema tests: each row is one document; a good row must load
 * with no error, a bad row must be rejected with the given code at the given
 * field path. Rows are written as plain objects and turned into YAML, so the
 * real loader (positions, diagnostics) is what is tested.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseYaml, type LoadResult } from '../../src/api/load.js';

export const ROOT = process.env.TRELLIS_ROOT ?? join(new URL('.', import.meta.url).pathname, '..', '..', '..');
export const SAMPLES = join(ROOT, 'test', 'fixtures', 'istio-samples');

export interface Row {
  readonly name: string;
  readonly spec: unknown;
  /** Absent for a good row. */
  readonly code?: string;
  readonly field?: string;
}

/** Loads one document of `apiVersion`/`kind` with the given spec (namespace `ns`, name `x`). */
export function loadSpec(apiVersion: string, kind: string, spec: unknown): LoadResult {
  const metadata = kind === 'MeshConfig' ? { name: 'mesh' } : { name: 'x', namespace: 'ns' };
  return parseYaml(stringify({ apiVersion, kind, metadata, spec }), `${kind}.yaml`);
}

export function errorsOf(r: LoadResult): string[] {
  return r.diagnostics.filter((d) => d.level === 'error').map((d) => `${d.code} ${d.field}: ${d.message}`);
}

/** One test per row. */
export function runTable(apiVersion: string, kind: string, rows: readonly Row[]): void {
  for (const row of rows) {
    const label = row.code ? `${kind} rejects ${row.name} (${row.code} at ${row.field})` : `${kind} accepts ${row.name}`;
    test(label, () => {
      const r = loadSpec(apiVersion, kind, row.spec);
      if (!row.code) {
        assert.deepEqual(errorsOf(r), []);
        assert.equal(r.resources.length, 1);
        return;
      }
      assert.equal(r.resources.length, 0, 'a rejected document yields no resource');
      const hit = r.diagnostics.find((d) => d.code === row.code && d.field === row.field);
      assert.ok(hit, `no ${row.code} at ${row.field}; got ${JSON.stringify(errorsOf(r))}`);
      assert.ok(hit.position && hit.position.line > 0, 'the diagnostic has a position');
    });
  }
}

/** Every `.yaml` file below `dir`, relative to it. */
export function yamlBelow(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir).sort()) {
    const full = join(dir, n);
    if (statSync(full).isDirectory()) out.push(...yamlBelow(full).map((f) => join(n, f)));
    else if (n.endsWith('.yaml')) out.push(n);
  }
  return out;
}

/** Loads a file of the Istio samples. */
export function loadSample(rel: string): LoadResult {
  return parseYaml(readFileSync(join(SAMPLES, rel), 'utf8'), rel);
}
