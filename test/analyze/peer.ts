/**
 * Istio's analyzer test table as a peer suite for `trellis analyze`.
 *
 * Each case of test/fixtures/istio-analyzers/cases-config.json names one
 * Istio analyzer, its input files and the messages Istio reports, as a
 * multiset of (code, "Kind namespace/name"). We load the same files (with
 * `_implicit-default-resources.yaml`, as Istio's harness adds an ingress
 * gateway Pod and Service), run the Trellis analyzers that declare that Istio
 * analyzer in their `istio` list, and compare the TRL0nnn messages, mapped to
 * IST0nnn, as a multiset. Trellis-only codes (TRL1nnn) have no Istio
 * counterpart and are left out of the comparison.
 *
 * Istio's harness keeps an empty namespace for documents without one, so its
 * messages read `VirtualService foo`; Trellis puts those documents in
 * `default`, and the comparison names them as Istio does.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigSet } from '../../src/api/config-set.js';
import { loadConfig, parseYaml } from '../../src/api/load.js';
import type { Resource } from '../../src/api/resource.js';
import { runAnalyzers } from '../../src/analyze/run.js';
import { analyzers } from '../../src/analyze/registry.js';
import { meshSettings } from '../../src/compile/mesh.js';
import { createRegistry } from '../../src/registry/registry.js';
import { configSource } from '../../src/registry/sources/config-source.js';
import { ROOT } from '../api/kind-table.js';

export const FIXTURES = join(ROOT, 'test', 'fixtures', 'istio-analyzers');

export interface PeerCase {
  readonly id: number;
  readonly name: string;
  readonly inputFiles: readonly string[];
  readonly analyzerName: string;
  readonly meshConfigFile?: string;
  readonly expected: readonly { readonly code: string; readonly resource: string }[];
}

export function peerCases(): PeerCase[] {
  return JSON.parse(readFileSync(join(FIXTURES, 'cases-config.json'), 'utf8')) as PeerCase[];
}

export interface CaseResult {
  readonly agree: boolean;
  /** What Istio reports and Trellis does not. */
  readonly missing: string[];
  /** What Trellis reports and Istio does not. */
  readonly extra: string[];
  /** Whether any Trellis analyzer stands for the case's Istio analyzer. */
  readonly covered: boolean;
}

/** `IST0101 VirtualService default/reviews` keys, as Istio's table names them. */
function key(code: string, resource: string): string {
  return `${code} ${resource}`;
}

/** Documents of the input files that have no metadata.namespace: `Kind/name`. */
function namespaceless(files: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) {
    for (const doc of parseAllDocuments(readFileSync(f, 'utf8'))) {
      const visit = (v: unknown) => {
        if (!v || typeof v !== 'object') return;
        const o = v as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; items?: unknown };
        if (o.kind === 'List' && Array.isArray(o.items)) { o.items.forEach(visit); return; }
        if (typeof o.kind === 'string' && o.metadata && typeof o.metadata.name === 'string' && o.metadata.namespace === undefined) {
          out.add(`${o.kind}/${o.metadata.name}`);
        }
      };
      try { visit(doc.toJS()); } catch { /* a broken document: the loader reports it */ }
    }
  }
  return out;
}

/** The Istio MeshConfig file of a case, as a Trellis MeshConfig resource. */
function meshConfigResource(file: string): readonly Resource[] {
  const body = readFileSync(file, 'utf8').replace(/^/gm, '  ');
  const text = `apiVersion: trellis.dev/v1alpha1\nkind: MeshConfig\nmetadata:\n  name: mesh\nspec:\n${body}\n`;
  return parseYaml(text, file).resources;
}

export function runCase(c: PeerCase): CaseResult {
  const files = [join(FIXTURES, 'testdata', '_implicit-default-resources.yaml'), ...c.inputFiles.map((f) => join(FIXTURES, f))];
  const loaded = loadConfig(files, { cwd: FIXTURES });
  const extraMesh = c.meshConfigFile ? meshConfigResource(join(FIXTURES, c.meshConfigFile)) : [];
  const config = extraMesh.length ? ConfigSet.of([...loaded.resources, ...extraMesh], loaded.diagnostics) : loaded;
  const mesh = meshSettings(config);
  const { registry } = createRegistry([configSource(config, { trustDomain: mesh.trustDomain })], {
    trustDomain: mesh.trustDomain,
    domainSuffix: mesh.domainSuffix,
  });
  const chosen = analyzers.filter((a) => a.istio?.includes(c.analyzerName));
  const bare = namespaceless(files);
  const got: string[] = [];
  for (const f of runAnalyzers(config, registry, { analyzers: chosen })) {
    const d = f.diagnostic;
    if (!d.code.startsWith('TRL0') || !d.resource) continue;
    const [kind, nsName] = d.resource.split(' ') as [string, string];
    const [ns, name] = nsName.split('/') as [string, string];
    const shown = ns === 'default' && bare.has(`${kind}/${name}`) ? `${kind} ${name}` : d.resource;
    got.push(key(`IST${d.code.slice(3)}`, shown));
  }
  const want = c.expected.map((e) => key(e.code, e.resource));
  const left = [...got];
  const missing: string[] = [];
  for (const w of want) {
    const i = left.indexOf(w);
    if (i >= 0) left.splice(i, 1);
    else missing.push(w);
  }
    // A case no Trellis analyzer stands for does not agree, even when Istio reports nothing.
  return { agree: chosen.length > 0 && missing.length === 0 && left.length === 0, missing, extra: left, covered: chosen.length > 0 };
}
