/** What the analyzer unit tests share: run one analyzer over YAML, find a line, list findings for exact comparison. */
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import type { Diagnostic } from '../../src/api/diagnostic.js';
import { parseYaml } from '../../src/api/load.js';
import type { Analyzer } from '../../src/analyze/analyzer.js';
import { meshOf } from '../../src/analyze/analyze.js';
import { runAnalyzers } from '../../src/analyze/run.js';

/** The analyzer of this name among `list`; fails the test when there is none. */
export function analyzerIn(list: readonly Analyzer[], name: string): Analyzer {
  const a = list.find((x) => x.name === name);
  assert.ok(a, `analyzer ${name} exists`);
  return a;
}

/**
 * Loads `yaml` as `file` (it must load without errors), plus `rejected` as it
 * loads (errors allowed: what the loader refuses), builds the registry and
 * runs one analyzer; its findings.
 */
export function runOne(a: Analyzer, yaml: string, opts: { file?: string; rejected?: string } = {}): Diagnostic[] {
  const { resources, diagnostics } = parseYaml(yaml, opts.file ?? 'mesh.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.level === 'error'), [], 'the test YAML loads');
  const more = opts.rejected ? parseYaml(opts.rejected, 'rejected.yaml') : { resources: [], diagnostics: [] };
  const { config, registry } = meshOf(ConfigSet.of([...resources, ...more.resources], [...diagnostics, ...more.diagnostics]));
  return runAnalyzers(config, registry, { analyzers: [a] }).map((f) => f.diagnostic);
}

/** The 1-based line of the first line containing `text`, at or after line `from`. */
export function lineOf(yaml: string, text: string, from = 1): number {
  const lines = yaml.split('\n');
  for (let i = from - 1; i < lines.length; i++) if (lines[i]!.includes(text)) return i + 1;
  throw new Error(`"${text}" is not in the YAML`);
}

/** Code, resource, field and line of each diagnostic, for exact comparison. */
export function where(ds: readonly Diagnostic[]): string[] {
  return ds.map((d) => `${d.code} ${d.resource} ${d.field ?? '-'} ${d.position?.file}:${d.position?.line}`);
}

/**
 * A small configuration with one finding of each level the output tests need:
 * an unknown field (error, TRL1002 at spec.http[0].retries.attemps, line 8) and
 * a Trellis-only field (info, TRL1007 at source.labels).
 */
export const SHOP_WITH_FINDINGS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web]
  http:
  - route: [{ destination: { host: web } }]
    retries: { attemps: 3 }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: callers, namespace: shop }
spec:
  rules:
  - from: [{ source: { labels: { app: web } } }]
`;
