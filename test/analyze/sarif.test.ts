/**
 * `trellis analyze -o sarif` validated against the SARIF 2.1.0 JSON schema
 * (test/fixtures/sarif, see PROVENANCE.md) with ajv, and checked for what
 * GitHub code scanning needs to annotate the right lines: rules with the
 * catalogue's metadata, results naming their rule, URIs relative to the
 * source root, regions with line and column.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { diagnostic } from '../../src/api/diagnostic.js';
import { messagesByCode } from '../../src/api/messages.js';
import { analyzerCatalogue, reportableMessages, type AnalysisReport } from '../../src/analyze/analyze.js';
import { toSarif } from '../../src/analyze/output/sarif.js';
import { ROOT } from '../helpers/mesh.js';
import { SHOP_WITH_FINDINGS } from './helpers.js';

// ajv is CommonJS; its draft 2020-12 build is the one this schema needs.
const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020').default as new (o: object) => { compile(schema: unknown): ((d: unknown) => boolean) & { errors?: unknown[] | null } };
const addFormats = require('ajv-formats').default as (ajv: unknown) => void;
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'sarif', 'sarif-schema-2.1.0.json'), 'utf8')));
const valid = (doc: unknown) => {
  const ok = validate(doc);
  return { ok, errors: JSON.stringify(validate.errors?.slice(0, 5)) };
};

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const trellis = (args: string[], cwd = ROOT) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

const tmp = mkdtempSync(join(tmpdir(), 'trellis-sarif-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const repo = join(tmp, 'repo');
mkdirSync(join(repo, 'mesh config'), { recursive: true });
writeFileSync(join(repo, 'mesh config', 'shop.yaml'), SHOP_WITH_FINDINGS);

interface Sarif {
  $schema: string;
  version: string;
  runs: {
    tool: { driver: { name: string; version: string; informationUri?: string; rules: { id: string; name: string; shortDescription: { text: string }; fullDescription: { text: string }; defaultConfiguration: { level: string }; helpUri?: string; help: { text: string; markdown: string } }[] } };
    originalUriBaseIds: Record<string, { uri: string }>;
    results: { ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations?: { physicalLocation: { artifactLocation: { uri: string; uriBaseId?: string }; region: { startLine: number; startColumn: number } }; logicalLocations?: { fullyQualifiedName: string }[] }[]; partialFingerprints: Record<string, string>; properties: { analyzer: string; field?: string } }[];
  }[];
}

test('the SARIF of the bundled example and of a configuration with mistakes validates against the SARIF 2.1.0 schema', () => {
  for (const [args, cwd] of [[['analyze', 'examples/bank', '-o', 'sarif'], ROOT], [['analyze', 'mesh config', '-o', 'sarif'], repo]] as const) {
    const r = trellis([...args], cwd);
    assert.ok(r.code === 0 || r.code === 1, r.err);
    const doc = JSON.parse(r.out) as Sarif;
    const v = valid(doc);
    assert.ok(v.ok, v.errors);
    assert.equal(doc.version, '2.1.0');
    assert.ok(doc.runs[0]!.results.length >= 1);
  }
});

test('the validator is not a rubber stamp: a wrong level, a missing version or a result without a message fail', () => {
  const doc = JSON.parse(trellis(['analyze', 'mesh config', '-o', 'sarif'], repo).out) as Sarif;
  const broken = [
    (d: Sarif) => { d.runs[0]!.results[0]!.level = 'fatal'; },
    (d: Sarif) => { delete (d as Partial<Sarif>).version; },
    (d: Sarif) => { delete (d.runs[0]!.results[0] as Partial<Sarif['runs'][0]['results'][0]>).message; },
    (d: Sarif) => { d.runs[0]!.results[0]!.locations![0]!.physicalLocation.region.startLine = 0; },
  ];
  for (const breakIt of broken) {
    const copy = structuredClone(doc);
    breakIt(copy);
    assert.equal(valid(copy).ok, false, breakIt.toString());
  }
});

test('rules: every code the analyzers that ran can report, with the catalogue\'s name, descriptions and level; results point at them', () => {
  const doc = JSON.parse(trellis(['analyze', 'mesh config', '-o', 'sarif'], repo).out) as Sarif;
  const run = doc.runs[0]!;
  assert.equal(run.tool.driver.name, 'trellis');
  assert.equal(run.tool.driver.version, JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  assert.deepEqual(run.tool.driver.rules.map((r) => r.id), reportableMessages(analyzerCatalogue()).map((m) => m.code));
  for (const rule of run.tool.driver.rules) {
    const m = messagesByCode.get(rule.id)!;
    assert.equal(rule.name, m.name);
    assert.equal(rule.fullDescription.text, m.docs);
    assert.ok(m.docs.startsWith(rule.shortDescription.text), rule.id);
    assert.equal(rule.defaultConfiguration.level, { error: 'error', warning: 'warning', info: 'note' }[m.level]);
    assert.match(rule.help.text, new RegExp(`trellis codes ${rule.id}`));
    assert.equal(rule.helpUri, undefined, 'no helpUri without --docs-url');
  }
  for (const r of run.results) assert.equal(run.tool.driver.rules[r.ruleIndex]!.id, r.ruleId);
  const only = JSON.parse(trellis(['analyze', 'mesh config', '-o', 'sarif', '--analyzer', 'schema.validation'], repo).out) as Sarif;
  assert.equal(only.runs[0]!.tool.driver.rules.length, reportableMessages([analyzerCatalogue()[0]!]).length, 'with --analyzer, the rules of the analyzers that ran');
});

test('results: rule, level, message with resource and field, the file region relative to SRCROOT (the working directory by default)', () => {
  const r = trellis(['analyze', 'mesh config', '-o', 'sarif', '--analyzer', 'schema.validation'], repo);
  assert.equal(r.code, 1);
  const run = (JSON.parse(r.out) as Sarif).runs[0]!;
  assert.deepEqual(run.originalUriBaseIds, { SRCROOT: { uri: pathToFileURL(repo + '/').href } });
  assert.deepEqual(run.results.map((x) => [x.ruleId, x.level, x.locations![0]!.physicalLocation.artifactLocation, x.locations![0]!.physicalLocation.region]), [
    ['TRL1002', 'error', { uri: 'mesh%20config/shop.yaml', uriBaseId: 'SRCROOT' }, { startLine: 8, startColumn: 16 }],
    ['TRL1007', 'note', { uri: 'mesh%20config/shop.yaml', uriBaseId: 'SRCROOT' }, { startLine: 15, startColumn: 24 }],
  ]);
  const first = run.results[0]!;
  assert.equal(first.message.text, 'VirtualService shop/web spec.http[0].retries.attemps: unknown field "spec.http[0].retries.attemps"');
  assert.deepEqual(first.locations![0]!.logicalLocations, [{ fullyQualifiedName: 'VirtualService shop/web', kind: 'resource' }]);
  assert.deepEqual(first.properties, { analyzer: 'schema.validation', resource: 'VirtualService shop/web', field: 'spec.http[0].retries.attemps' });
  assert.match(first.partialFingerprints['trellisFinding/v1']!, /^[0-9a-f]{32}$/);
  // Fingerprints do not depend on the line, so an alert survives an edit above it.
  writeFileSync(join(repo, 'moved.yaml'), '# a comment\n# another\n' + readFileSync(join(repo, 'mesh config', 'shop.yaml'), 'utf8'));
  const moved = (JSON.parse(trellis(['analyze', 'moved.yaml', '-o', 'sarif', '--analyzer', 'schema.validation'], repo).out) as Sarif).runs[0]!.results[0]!;
  assert.equal(moved.locations![0]!.physicalLocation.region.startLine, 10);
  assert.equal(moved.partialFingerprints['trellisFinding/v1'], first.partialFingerprints['trellisFinding/v1']);
  rmSync(join(repo, 'moved.yaml'));
});

test('--srcroot makes URIs relative to the repository root; a file outside it gets an absolute file: URI; --docs-url gives rules a helpUri', () => {
  const inner = join(repo, 'mesh config');
  const up = JSON.parse(trellis(['analyze', '.', '-o', 'sarif', '--srcroot', '..', '--analyzer', 'schema.validation'], inner).out) as Sarif;
  assert.deepEqual(up.runs[0]!.results[0]!.locations![0]!.physicalLocation.artifactLocation, { uri: 'mesh%20config/shop.yaml', uriBaseId: 'SRCROOT' });
  assert.equal(up.runs[0]!.originalUriBaseIds.SRCROOT!.uri, pathToFileURL(repo + '/').href);
  const elsewhere = mkdtempSync(join(tmpdir(), 'trellis-sarif-root-'));
  try {
    const out = JSON.parse(trellis(['analyze', 'mesh config', '-o', 'sarif', '--srcroot', elsewhere, '--analyzer', 'schema.validation'], repo).out) as Sarif;
    const loc = out.runs[0]!.results[0]!.locations![0]!.physicalLocation.artifactLocation;
    assert.deepEqual(loc, { uri: pathToFileURL(join(repo, 'mesh config', 'shop.yaml')).href });
    assert.ok(valid(out).ok);
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
  const docs = JSON.parse(trellis(['analyze', 'mesh config', '-o', 'sarif', '--docs-url', 'https://example.org/trellis/docs/analyze.md'], repo).out) as Sarif;
  assert.equal(docs.runs[0]!.tool.driver.informationUri, 'https://example.org/trellis/docs/analyze.md');
  assert.equal(docs.runs[0]!.tool.driver.rules.find((x) => x.id === 'TRL1002')!.helpUri, 'https://example.org/trellis/docs/analyze.md#trl1002');
  assert.ok(valid(docs).ok);
  assert.ok(basename(repo) === 'repo');
});

test('a finding with no file (an analyzer that failed) is a result without locations, still valid', () => {
  const report: AnalysisReport = {
    analyzers: ['schema.validation'], resources: 0, suppressed: [], unusedSuppressions: [],
    findings: [{ analyzer: 'x.y', diagnostic: diagnostic('AnalyzerFailed', { analyzer: 'x.y', detail: 'TypeError' }) }],
  };
  const doc = toSarif(report, { analyzers: [analyzerCatalogue()[0]!], version: '0.1.0', cwd: tmp });
  assert.ok(valid(doc).ok, valid(doc).errors);
  const result = doc.runs[0]!.results[0]!;
  assert.equal(result.ruleId, 'TRL1401');
  assert.ok(!('locations' in result));
  assert.equal(doc.runs[0]!.tool.driver.rules[result.ruleIndex!]!.id, 'TRL1401');
});
