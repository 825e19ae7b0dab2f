/**
 * The whole analysis `trellis analyze` runs, files or live: the load step's
 * diagnostics become findings of the pseudo-analyzer `schema.validation`,
 * then the analyzers of registry.ts run over the configuration and the
 * registry; exact duplicates are dropped, findings without a position get
 * their resource's, suppressions are applied (and counted), and everything is
 * sorted by file, line, column and code. Pure: no I/O, no printing, no exit.
 *
 * ```ts
 * const mesh = loadMesh(['examples/bank']);          // src/cli/mesh-input.ts
 * const report = analyze(mesh, { suppressions: new Suppressions([]) });
 * report.findings.length; exitCode(report, 'error');
 * ```
 */
import type { ConfigSet } from '../api/config-set.js';
import type { Diagnostic } from '../api/diagnostic.js';
import { messages, messagesByCode, type Level, type MessageName, type MessageType } from '../api/messages.js';
import { meshSettings } from '../compile/mesh.js';
import { rateLimitIssues } from '../compile/rate-limits.js';
import { createRegistry } from '../registry/registry.js';
import { configSource } from '../registry/sources/config-source.js';
import type { Registry } from '../registry/types.js';
import type { Analyzer } from './analyzer.js';
import { complianceAnalyzers } from './compliance/index.js';
import { analyzers as registered } from './registry.js';
import { runAnalyzers, type Finding } from './run.js';
import { Suppressions, type Suppression } from './suppress.js';

/** What an analysis reads: the loaded configuration, its registry and the load step's diagnostics (src/cli/mesh-input.ts `MeshInput`). */
export interface MeshUnderAnalysis {
  readonly config: ConfigSet;
  readonly registry: Registry;
  readonly diagnostics: readonly Diagnostic[];
}

/** An analyzer as `--list-analyzers` and the SARIF rules see it: the Analyzer contract without `run`. */
export type AnalyzerInfo = Pick<Analyzer, 'name' | 'description' | 'reads' | 'messages' | 'istio'>;

/** The name under which the load step's diagnostics are reported. */
export const SCHEMA_VALIDATION = 'schema.validation';

/**
 * The load step as a pseudo-analyzer: YAML, schema and field checks of every
 * kind (src/api), the registry built from the configuration (src/registry)
 * and rate-limit targets (src/compile/rate-limits.ts). Its `messages` list
 * every code those can report; test/analyze/output.test.ts checks it against
 * the sources.
 */
export const schemaValidation: AnalyzerInfo = Object.freeze({
  name: SCHEMA_VALIDATION,
  description: 'Loads every file: YAML syntax, each resource against its kind\'s schema (unknown fields, values, Trellis-only fields that Istio would not accept), duplicate resources, the registry built from the configuration, rate limits naming unknown targets.',
  reads: ['*'],
  messages: [
    'YamlSyntaxError', 'InvalidResourceHeader', 'UnknownKind', 'UnsupportedKind', 'SchemaValidationError', 'UnknownField',
    'FieldNotEnforced', 'ValueNotEnforced', 'NotPortable', 'DuplicateResource', 'FileNotReadable',
    'DuplicateServiceHost', 'UnresolvedTargetPort', 'DuplicateWorkload',
  ] satisfies MessageName[],
});

/**
 * Every analyzer `--analyzer` can name: schema.validation first, then
 * registry.ts's, in their order; with `compliance` (`--compliance`), the
 * compliance analyzers of src/analyze/compliance/ instead of registry.ts's.
 */
export function analyzerCatalogue(compliance = false): readonly AnalyzerInfo[] {
  return [schemaValidation, ...(compliance ? complianceAnalyzers : registered)];
}

/**
 * The analyzers that names pick (`*` wildcards allowed: `virtualservice.*`);
 * every analyzer when `names` is empty. Names that pick nothing are returned
 * in `unknown`.
 */
export function selectAnalyzers(names: readonly string[], compliance = false): { schema: boolean; analyzers: Analyzer[]; unknown: string[] } {
  const pool = compliance ? complianceAnalyzers : registered;
  if (!names.length) return { schema: true, analyzers: [...pool], unknown: [] };
  const res = names.map((n) => ({ n, re: new RegExp(`^${n.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`) }));
  const unknown = res.filter(({ re }) => !analyzerCatalogue(compliance).some((a) => re.test(a.name))).map(({ n }) => n);
  const picked = (name: string) => res.some(({ re }) => re.test(name));
  return { schema: picked(SCHEMA_VALIDATION), analyzers: pool.filter((a) => picked(a.name)), unknown };
}

/** The catalogue entries of every code the given analyzers (schema.validation included) can report, plus TRL1401 AnalyzerFailed; by code. */
export function reportableMessages(list: readonly AnalyzerInfo[] = analyzerCatalogue()): MessageType[] {
  const names = new Set<MessageName>(['AnalyzerFailed']);
  for (const a of list) for (const m of a.messages) names.add(m);
  return [...names].map((n) => messages[n]).sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
}

/** A finding that a suppression rule hid. */
export interface SuppressedFinding extends Finding {
  readonly by: Suppression;
}

export interface AnalysisReport {
  /** The analyzers that ran, by name. */
  readonly analyzers: readonly string[];
  /** How many resources were analysed. */
  readonly resources: number;
  /** What was found and not suppressed, sorted. */
  readonly findings: readonly Finding[];
  readonly suppressed: readonly SuppressedFinding[];
  /** Suppression rules that matched nothing. */
  readonly unusedSuppressions: readonly Suppression[];
}

export interface AnalysisOptions {
  /** `--analyzer` names (wildcards allowed); all when absent or empty. Unknown names are ignored here; the CLI refuses them first. */
  readonly analyzers?: readonly string[];
  readonly suppressions?: Suppressions;
  /** `--compliance`: the compliance analyzers (docs/compliance.md) run instead of the configuration analyzers; schema.validation still does. */
  readonly compliance?: boolean;
}

/** Runs the analysis. */
export function analyze(mesh: MeshUnderAnalysis, opts: AnalysisOptions = {}): AnalysisReport {
  const pick = selectAnalyzers(opts.analyzers ?? [], opts.compliance);
  const raw: Finding[] = [
    ...(pick.schema ? mesh.diagnostics.map((diagnostic) => ({ diagnostic, analyzer: SCHEMA_VALIDATION })) : []),
    ...runAnalyzers(mesh.config, mesh.registry, { analyzers: pick.analyzers }),
  ];
  const positions = new Map(mesh.config.resources.map((r) => [r.ref, r.position]));
  const seen = new Set<string>();
  const all: Finding[] = [];
  for (const f of raw) {
    const d = f.diagnostic;
    const position = d.position ?? (d.resource ? positions.get(d.resource) : undefined);
    const diagnostic = position && !d.position ? Object.freeze({ ...d, position }) : d;
    const key = JSON.stringify([diagnostic.code, diagnostic.resource, diagnostic.field, diagnostic.message, position?.file, position?.line, position?.col]);
    if (seen.has(key)) continue;
    seen.add(key);
    all.push(diagnostic === d ? f : { ...f, diagnostic });
  }
  all.sort(byPlace);
  const rules = opts.suppressions ?? new Suppressions([]);
  const findings: Finding[] = [];
  const suppressed: SuppressedFinding[] = [];
  for (const f of all) {
    const by = rules.match(f);
    if (by) suppressed.push({ ...f, by });
    else findings.push(f);
  }
  return {
    analyzers: [...(pick.schema ? [SCHEMA_VALIDATION] : []), ...pick.analyzers.map((a) => a.name)],
    resources: mesh.config.resources.length,
    findings,
    suppressed,
    unusedSuppressions: rules.unused(),
  };
}

/** File, line, column, code, resource, message; findings without a position last. */
function byPlace(a: Finding, b: Finding): number {
  const x = a.diagnostic;
  const y = b.diagnostic;
  if (!x.position !== !y.position) return x.position ? -1 : 1;
  const keys: [string | number, string | number][] = [
    [x.position?.file ?? '', y.position?.file ?? ''],
    [x.position?.line ?? 0, y.position?.line ?? 0],
    [x.position?.col ?? 0, y.position?.col ?? 0],
    [x.code, y.code],
    [x.resource ?? '', y.resource ?? ''],
    [x.message, y.message],
  ];
  for (const [p, q] of keys) if (p !== q) return p < q ? -1 : 1;
  return 0;
}

const RANK: Readonly<Record<Level, number>> = { info: 1, warning: 2, error: 3 };

/** `--fail-on`: the lowest level that fails the run; `none` never fails. */
export type FailOn = Level | 'none';

/** How many findings of each level. */
export function countByLevel(findings: readonly Finding[]): Record<Level, number> {
  const n: Record<Level, number> = { error: 0, warning: 0, info: 0 };
  for (const f of findings) n[f.diagnostic.level]++;
  return n;
}

/** Whether a finding at or above `failOn` remains after suppressions. */
export function fails(report: AnalysisReport, failOn: FailOn): boolean {
  if (failOn === 'none') return false;
  return report.findings.some((f) => RANK[f.diagnostic.level] >= RANK[failOn]);
}

/** Findings that mean the input could not be read at all (TRL1008): the CLI exits 2 for them, whatever `--fail-on` says. */
export function unreadable(mesh: MeshUnderAnalysis): Diagnostic[] {
  const code = messages.FileNotReadable.code;
  return mesh.diagnostics.filter((d) => d.code === code);
}

/**
 * The mesh of a configuration that did not come from paths (`--live`): the
 * registry built from it and the load diagnostics, as loadMesh builds them.
 * `extra` diagnostics (the control plane's rejected edits) are added.
 */
export function meshOf(config: ConfigSet, extra: readonly Diagnostic[] = []): MeshUnderAnalysis {
  const mesh = meshSettings(config);
  const { registry, diagnostics } = createRegistry([configSource(config, { trustDomain: mesh.trustDomain })], {
    trustDomain: mesh.trustDomain,
    domainSuffix: mesh.domainSuffix,
  });
  return { config, registry, diagnostics: [...config.diagnostics, ...diagnostics, ...rateLimitIssues(config.ofKind('RateLimitPolicy'), registry), ...extra] };
}

/** A catalogue entry by code, for outputs. */
export function messageOf(code: string): MessageType | undefined {
  return messagesByCode.get(code);
}
