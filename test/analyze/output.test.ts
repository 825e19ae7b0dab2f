/**
 * The analysis pipeline in-process (src/analyze/analyze.ts): load findings as
 * schema.validation, de-duplication, positions, order, suppressions; the text
 * and JSON outputs; suppression parsing; and that docs/analyze.md lists every
 * analyzer and code there is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigSet } from '../../src/api/config-set.js';
import { diagnostic } from '../../src/api/diagnostic.js';
import { parseYaml } from '../../src/api/load.js';
import { messages } from '../../src/api/messages.js';
import { analyze, analyzerCatalogue, fails, meshOf, reportableMessages, schemaValidation, selectAnalyzers, SCHEMA_VALIDATION } from '../../src/analyze/analyze.js';
import { toJson } from '../../src/analyze/output/json.js';
import { formatAnalyzerList, formatText, wantsColor } from '../../src/analyze/output/text.js';
import { analyzers } from '../../src/analyze/registry.js';
import { parseSuppressFlag, parseSuppressions, SuppressionError, Suppressions } from '../../src/analyze/suppress.js';
import { ROOT } from '../helpers/mesh.js';
import { SHOP_WITH_FINDINGS } from './helpers.js';

const YAML = SHOP_WITH_FINDINGS;

function mesh(extra = [] as ReturnType<typeof diagnostic>[]) {
  const r = parseYaml(YAML, 'shop.yaml');
  return meshOf(ConfigSet.of(r.resources, r.diagnostics), extra);
}

test('load diagnostics are findings of schema.validation; exact duplicates are dropped; a finding without a position gets its resource\'s; order is file, line, column', () => {
  const m = mesh();
  const dup = m.diagnostics.find((d) => d.code === 'TRL1002')!;
  const noPosition = diagnostic('DuplicateWorkload', { workload: 'x', first: 'a', resource: 'b' }, { resource: 'AuthorizationPolicy shop/callers' });
  const orphan = diagnostic('AnalyzerFailed', { analyzer: 'x', detail: 'boom' });
  const report = analyze(mesh([dup, noPosition, orphan]), { analyzers: [SCHEMA_VALIDATION] });
  assert.deepEqual(report.analyzers, ['schema.validation']);
  assert.equal(report.resources, 1, 'the VirtualService has an error: it is not loaded');
  assert.deepEqual(report.findings.map((f) => [f.analyzer, f.diagnostic.code, f.diagnostic.position?.line ?? null]), [
    ['schema.validation', 'TRL1002', 8],
    ['schema.validation', 'TRL1103', 10],
    ['schema.validation', 'TRL1007', 15],
    ['schema.validation', 'TRL1401', null],
  ]);
  assert.equal(report.findings[1]!.diagnostic.position?.file, 'shop.yaml');
});

test('--analyzer selection: wildcards, unknown names, schema.validation only when named', () => {
  assert.deepEqual(selectAnalyzers([]), { schema: true, analyzers: [...analyzers], unknown: [] });
  const s = selectAnalyzers(['schema.*', 'no.such']);
  assert.equal(s.schema, true);
  assert.deepEqual(s.analyzers, []);
  assert.deepEqual(s.unknown, ['no.such']);
  if (analyzers.length) {
    const one = selectAnalyzers([analyzers[0]!.name]);
    assert.equal(one.schema, false);
    assert.deepEqual(one.analyzers.map((a) => a.name), [analyzers[0]!.name]);
    const report = analyze(mesh(), { analyzers: [analyzers[0]!.name] });
    assert.ok(!report.findings.some((f) => f.analyzer === SCHEMA_VALIDATION));
  }
  assert.equal(selectAnalyzers(['schema.validatio']).unknown.length, 1, 'no prefix matching without a *');
});

test('suppressions: code and resource globs, IST aliases, findings without a resource, unused rules; --fail-on counts what remains', () => {
  const rules = new Suppressions([parseSuppressFlag('TRL10*=VirtualService shop/w*'), parseSuppressFlag('IST0106=Gateway a.b/*'), parseSuppressFlag('trl1401')]);
  const report = analyze(mesh([diagnostic('AnalyzerFailed', { analyzer: 'x', detail: 'boom' })]), { analyzers: [SCHEMA_VALIDATION], suppressions: rules });
  assert.deepEqual(report.findings.map((f) => f.diagnostic.code), ['TRL1007']);
  assert.deepEqual(report.suppressed.map((f) => [f.diagnostic.code, f.by.source]), [['TRL1002', '--suppress TRL10*=VirtualService shop/w*'], ['TRL1401', '--suppress trl1401']]);
  assert.deepEqual(report.unusedSuppressions.map((r) => r.code), ['TRL0106']);
  assert.equal(fails(report, 'error'), false);
  assert.equal(fails(report, 'warning'), false);
  assert.equal(fails(report, 'info'), true);
  assert.equal(fails(report, 'none'), false);
  // Glob characters other than * are literal: "." does not match any character.
  const dot = new Suppressions([parseSuppressFlag('TRL1002=VirtualService shop.web')]);
  assert.equal(analyze(mesh(), { analyzers: [SCHEMA_VALIDATION], suppressions: dot }).suppressed.length, 0);
  // A finding about no resource is suppressed only by resource *.
  const named = new Suppressions([parseSuppressFlag('TRL1401=VirtualService *')]);
  assert.equal(analyze(mesh([diagnostic('AnalyzerFailed', { analyzer: 'x', detail: 'y' })]), { analyzers: [SCHEMA_VALIDATION], suppressions: named }).suppressed.length, 0);
});

test('suppression flags and files are checked: unknown codes, bad patterns, empty resources, unknown keys, wrong types', () => {
  assert.deepEqual(parseSuppressFlag('TRL1007'), { code: 'TRL1007', resource: '*', source: '--suppress TRL1007' });
  assert.deepEqual(parseSuppressFlag('ist0101= VirtualService  a/b '), { code: 'TRL0101', resource: 'VirtualService a/b', source: '--suppress ist0101= VirtualService  a/b ' });
  assert.throws(() => parseSuppressFlag('TRL9999'), /no message code TRL9999/);
  assert.throws(() => parseSuppressFlag('TRL-1=*'), /not a message code or a code pattern/);
  assert.throws(() => parseSuppressFlag('TRL1007='), /the resource is empty/);
  assert.deepEqual(parseSuppressions('', 'f.yaml'), []);
  assert.deepEqual(parseSuppressions('suppressions:\n', 'f.yaml'), []);
  assert.deepEqual(parseSuppressions('suppressions:\n  - code: TRL1007\n    resource: "*"\n    reason: fine\n', 'f.yaml'), [{ code: 'TRL1007', resource: '*', reason: 'fine', source: 'f.yaml:2' }]);
  assert.throws(() => parseSuppressions('suppressions: {code: TRL1007}\n', 'f.yaml'), /f\.yaml:1:15: expected a list/);
  assert.throws(() => parseSuppressions('- TRL1007\n', 'f.yaml'), /f\.yaml:1:3: each suppression is a mapping/);
  assert.throws(() => parseSuppressions('- {resource: "*"}\n', 'f.yaml'), (e: unknown) => e instanceof SuppressionError && /needs a code/.test(e.message));
  assert.throws(() => parseSuppressions('- {code: TRL1007, resource: "*", why: x}\n', 'f.yaml'), /unknown key "why"/);
});

test('text: grouped by resource, a summary line, colour only when asked', () => {
  const report = analyze(mesh([diagnostic('AnalyzerFailed', { analyzer: 'x', detail: 'boom' })]), { analyzers: [SCHEMA_VALIDATION] });
  const text = formatText(report);
  assert.equal(text, [
    'VirtualService shop/web',
    '  shop.yaml:8:16  error  TRL1002  spec.http[0].retries.attemps  [schema.validation]',
    '      unknown field "spec.http[0].retries.attemps"',
    '',
    'AuthorizationPolicy shop/callers',
    '  shop.yaml:15:24  info  TRL1007  spec.rules[0].from[0].source.labels  [schema.validation]',
    '      field "spec.rules[0].from[0].source.labels" is a Trellis extension and is not understood by Istio',
    '',
    '(the mesh)',
    '  -  error  TRL1401  [schema.validation]',
    '      analyzer x failed: boom; this is a Trellis bug, please report it with the configuration',
    '',
    '1 resource, 1 analyzer: 2 errors, 0 warnings, 1 info',
    '',
  ].join('\n'));
  assert.ok(!text.includes('\x1b['));
  const coloured = formatText(report, { color: true });
  assert.match(coloured, /\x1b\[31merror\x1b\[39m/);
  assert.match(coloured, /\x1b\[36minfo\x1b\[39m/);
  assert.equal(coloured.replace(/\x1b\[\d+m/g, ''), text, 'colour changes nothing but the escapes');
  const clean = analyze(meshOf(ConfigSet.of([])), { analyzers: [SCHEMA_VALIDATION], suppressions: new Suppressions([parseSuppressFlag('TRL1007')]) });
  assert.equal(formatText(clean), '0 resources, 1 analyzer: no problems found\n');
  assert.equal(wantsColor({ isTTY: true }, {}), true);
  assert.equal(wantsColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(wantsColor({ isTTY: true }, { NO_COLOR: '' }), true, 'no-color.org: an empty NO_COLOR does not count');
  assert.equal(wantsColor({}, {}), false);
});

test('json: suppressed findings carry their rule; failed follows --fail-on', () => {
  const rules = new Suppressions(parseSuppressions('- {code: TRL1007, resource: "AuthorizationPolicy shop/*", reason: Trellis only}\n', 's.yaml'));
  const report = analyze(mesh(), { analyzers: [SCHEMA_VALIDATION], suppressions: rules });
  const j = toJson(report, { input: { paths: ['shop.yaml'] }, failOn: 'warning' });
  assert.equal(j.failed, true);
  assert.deepEqual(j.summary, { errors: 1, warnings: 0, info: 0, suppressed: 1 });
  assert.deepEqual(j.suppressed[0]!.suppressedBy, { code: 'TRL1007', resource: 'AuthorizationPolicy shop/*', reason: 'Trellis only', source: 's.yaml:1' });
  assert.equal(j.suppressed[0]!.line, 15);
  assert.deepEqual(j.unusedSuppressions, []);
  assert.equal(toJson(report, { input: { paths: [] }, failOn: 'none' }).failed, false);
});

test('schema.validation declares every code the load step can report (src/api, src/registry, rate limits)', () => {
  const files = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? files(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
  const sources = [...files(join(ROOT, 'src', 'api')), ...files(join(ROOT, 'src', 'registry')), join(ROOT, 'src', 'compile', 'rate-limits.ts')];
  const used = new Set<string>();
  for (const f of sources) for (const m of readFileSync(f, 'utf8').matchAll(/\b(?:diagnostic|registryDiagnostic)\(\s*'(\w+)'/g)) used.add(m[1]!);
  assert.ok(used.has('UnknownField') && used.has('DuplicateServiceHost') && used.has('SchemaValidationError'), 'the sources were read');
  const declared = new Set<string>(schemaValidation.messages);
  assert.deepEqual([...used].filter((n) => !declared.has(n)), []);
  for (const n of declared) assert.ok(n in messages, n);
});

test('reportableMessages: every code of the analyzers given, AnalyzerFailed included, by code', () => {
  const all = reportableMessages();
  const codes = all.map((m) => m.code);
  assert.deepEqual(codes, [...codes].sort());
  assert.equal(new Set(codes).size, codes.length);
  for (const a of analyzerCatalogue()) for (const m of a.messages) assert.ok(codes.includes(messages[m].code), `${a.name} ${m}`);
  assert.ok(codes.includes('TRL1401'));
  assert.deepEqual(reportableMessages([schemaValidation]).length, schemaValidation.messages.length + 1);
});

test('docs/analyze.md lists every analyzer and every code they report (the block trellis analyze --list-analyzers -o markdown prints)', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'analyze.md'), 'utf8');
  const m = /<!-- analyzers:begin[^>]*-->\n([\s\S]*?)<!-- analyzers:end -->/.exec(doc);
  assert.ok(m, 'docs/analyze.md has the analyzers block');
  const expected = formatAnalyzerList(analyzerCatalogue(), 'markdown');
  assert.equal(m[1], expected, 'regenerate the block between the markers with: node dist/src/cli/main.js analyze --list-analyzers -o markdown');
});
