import { existsSync, readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigSet } from '../../api/config-set.js';
import type { Diagnostic } from '../../api/diagnostic.js';
import { loadConfig, parseYaml } from '../../api/load.js';
import type { Level } from '../../api/messages.js';
import { analyze, analyzerCatalogue, fails, meshOf, selectAnalyzers, unreadable, type FailOn, type MeshUnderAnalysis } from '../../analyze/analyze.js';
import { toJson } from '../../analyze/output/json.js';
import { toSarif } from '../../analyze/output/sarif.js';
import { formatAnalyzerList, formatText, wantsColor } from '../../analyze/output/text.js';
import { parseSuppressFlag, readSuppressionFile, SuppressionError, Suppressions, type Suppression } from '../../analyze/suppress.js';
import { registryFromDump, type RegistryDump } from '../../registry/dump.js';
import { CliError } from '../cli-error.js';
import { loadMesh } from '../mesh-input.js';
import { topologySource, type TopologySource } from '../topology-client.js';
import { httpGet } from '../up/http-probe.js';

/** The suppression file read from the working directory when it exists. */
export const DEFAULT_SUPPRESSIONS = '.trellis-analyze.yaml';

interface Opts {
  output: 'text' | 'json' | 'sarif' | 'markdown';
  failOn: FailOn;
  analyzer?: string[];
  listAnalyzers?: boolean;
  suppress?: string[];
  suppressions?: string[];
  srcroot?: string;
  docsUrl?: string;
  live?: boolean;
  admin?: string;
  stateDir?: string;
  compliance?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
const repeat = (v: string, prev: string[] = []) => [...prev, v];

/** Usage errors of this command (unknown option, bad choice, missing value) exit 2, as its help says; main.ts passes commander's code on. */
class AnalyzeCommand extends Command {
  override error(message: string, errorOptions?: { code?: string; exitCode?: number }): never {
    return super.error(message, { ...errorOptions, exitCode: 2 });
  }
}

const HELP = `Runs Trellis's configuration analyzers over YAML files (or, with --live, over
the configuration of the running mesh) and reports what is wrong, where, and
what to do, with the stable codes of "trellis codes" (TRL0nnn = Istio's
IST0nnn, TRL1nnn Trellis's own). The load step is the analyzer
schema.validation: YAML syntax, each resource against its kind (unknown fields
are errors), Trellis-only fields (TRL1007: not portable to Istio), the
registry built from the configuration, rate limits on unknown targets.

Output (-o):
  text   grouped by resource: file:line:col, level, code, field, message, and
         a summary line (coloured when stdout is a terminal, NO_COLOR unset)
  json   the schema trellis.dev/analyze/v1 (docs/analyze.md)
  sarif  SARIF 2.1.0 for GitHub code scanning; URIs relative to --srcroot

Suppressions, by code and resource (* is a wildcard; IST0nnn means TRL0nnn):
  --suppress "TRL0101=VirtualService shop/*"   a bare code means everywhere
  --suppressions FILE   YAML: a list of {code, resource, reason}, or
                        {suppressions: [...]}
  ${DEFAULT_SUPPRESSIONS} in the working directory is read when it exists.
  Suppressed findings are counted; rules that match nothing are named on
  stderr.

Exit status:
  0  nothing at or above --fail-on is left after suppressions
  1  findings at or above --fail-on
  2  usage error; unreadable input (a path, a suppression file); with --live,
     no running mesh, or a control plane that does not answer

Examples:
  trellis analyze examples/bank
  trellis analyze config/ --fail-on warning -o sarif > trellis.sarif
  trellis analyze config/ --analyzer 'virtualservice.*' --suppress TRL1007
  trellis analyze --live                 the mesh "trellis up" runs
  trellis analyze --live change.yaml     a pending change laid over it
  trellis analyze --compliance config/   redundancy, zones, tenants, mTLS and
                                         timeouts (docs/compliance.md)`;

export function analyzeCommand(): Command {
  return new AnalyzeCommand('analyze')
    .summary('find configuration mistakes, with stable codes, for people and CI')
    .description(HELP)
    .argument('[paths...]', 'YAML files or directories (with --live: files laid over the live configuration)')
    .addOption(new Option('-o, --output <format>', 'output format (markdown: only with --list-analyzers)').choices(['text', 'json', 'sarif', 'markdown']).default('text'))
    .addOption(new Option('--fail-on <level>', 'the lowest level that makes the exit status 1').choices(['error', 'warning', 'info', 'none']).default('error'))
    .option('--analyzer <names>', 'run only these analyzers (comma-separated or repeated; * wildcards: "virtualservice.*")', collect)
    .option('--list-analyzers', 'list the analyzers (name, what they check, the codes they report) and exit')
    .option('--suppress <CODE=RESOURCE>', 'suppress a code for a resource, "TRL0101=VirtualService shop/reviews" (repeatable)', repeat)
    .option('--suppressions <file>', `read suppression rules from a YAML file (repeatable; ${DEFAULT_SUPPRESSIONS} is read when present)`, repeat)
    .option('--srcroot <dir>', 'SARIF: the directory result URIs are relative to, normally the repository root (default: the working directory)')
    .option('--docs-url <url>', 'SARIF: where docs/analyze.md is published; rules get helpUri <url>#trl0101')
    .option('--compliance', 'run the compliance checks (docs/compliance.md: redundancy, zones, regions, tenants, mTLS and authorization coverage, timeouts) instead of the configuration analyzers')
    .option('--live', 'analyse the configuration of the running mesh (its control plane\'s admin API)')
    .option('--admin <url>', 'with --live: the control plane\'s admin API, host:port or http://host:port (default: the mesh trellis up runs)')
    .option('--state-dir <dir>', 'with --live: the state dir of the mesh trellis up runs (default: as trellis status finds it)')
    .action(async (paths: string[], opts: Opts) => {
      process.exitCode = await run(paths, opts);
    });
}

async function run(paths: string[], opts: Opts): Promise<number> {
  if (opts.listAnalyzers) {
    if (opts.output === 'sarif') throw new CliError('--list-analyzers prints text, json or markdown, not sarif', 2);
    process.stdout.write(formatAnalyzerList(analyzerCatalogue(opts.compliance), opts.output));
    return 0;
  }
  if (opts.output === 'markdown') throw new CliError('-o markdown is for --list-analyzers; analysis results are text, json or sarif', 2);
  if (!opts.live && (opts.admin || opts.stateDir)) throw new CliError('--admin and --state-dir go with --live', 2);
  if (!opts.live && !paths.length) throw new CliError('name the YAML files or directories to analyse (trellis analyze <paths...>), or analyse the running mesh with --live', 2);
  const picked = selectAnalyzers(opts.analyzer ?? [], opts.compliance);
  if (picked.unknown.length) {
    const other = selectAnalyzers(picked.unknown, !opts.compliance).unknown.length === 0;
    const hint = other ? (opts.compliance ? '; it is a configuration analyzer: run it without --compliance' : '; it is a compliance analyzer: add --compliance') : '';
    throw new CliError(`no analyzer ${picked.unknown.map((n) => `"${n}"`).join(', ')}${opts.compliance ? ' among the compliance analyzers' : ''}${hint}; run "trellis analyze --list-analyzers${opts.compliance ? ' --compliance' : ''}" for the list`, 2);
  }
  const rules = readRules(opts);

  let mesh: MeshUnderAnalysis;
  let input: { paths: string[]; live?: string };
  if (opts.live) {
    const src = liveSource(opts);
    mesh = await liveMesh(src, paths);
    input = { paths, live: src.admin };
  } else {
    mesh = loadMesh(paths);
    input = { paths };
  }
  const notRead = unreadable(mesh);
  if (notRead.length) throw new CliError(notRead.map((d) => d.message).join('\n'), 2);

  const report = analyze(mesh, { analyzers: opts.analyzer ?? [], suppressions: rules, ...(opts.compliance ? { compliance: true } : {}) });
  for (const r of report.unusedSuppressions) process.stderr.write(`trellis: note: suppression ${r.code}=${r.resource} (${r.source}) matched no finding\n`);
  if (opts.output === 'json') {
    process.stdout.write(JSON.stringify(toJson(report, { input, failOn: opts.failOn }), null, 2) + '\n');
  } else if (opts.output === 'sarif') {
    const ran = analyzerCatalogue(opts.compliance).filter((a) => report.analyzers.includes(a.name));
    const sarif = toSarif(report, { analyzers: ran, version: trellisVersion(), cwd: process.cwd(), ...(opts.srcroot ? { srcroot: opts.srcroot } : {}), ...(opts.docsUrl ? { docsUrl: opts.docsUrl } : {}) });
    process.stdout.write(JSON.stringify(sarif, null, 2) + '\n');
  } else {
    process.stdout.write(formatText(report, { color: wantsColor(process.stdout) }));
  }
  return fails(report, opts.failOn) ? 1 : 0;
}

/** The rules of --suppress, --suppressions and the default file; a rule that cannot be read is a usage error. */
function readRules(opts: Opts): Suppressions {
  const rules: Suppression[] = [];
  try {
    for (const s of opts.suppress ?? []) rules.push(parseSuppressFlag(s));
    const files = [...(opts.suppressions ?? [])];
    if (existsSync(DEFAULT_SUPPRESSIONS) && !files.includes(DEFAULT_SUPPRESSIONS)) files.push(DEFAULT_SUPPRESSIONS);
    for (const f of files) rules.push(...readSuppressionFile(f));
  } catch (e) {
    if (e instanceof SuppressionError) throw new CliError(e.message, 2);
    throw e;
  }
  return new Suppressions(rules);
}

/** Trellis's version, for SARIF's tool.driver. */
function trellisVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

// --- --live -----------------------------------------------------------------

/**
 * GET /config/files on the control plane's admin API (docs/running-mesh.md):
 * the configuration files in force, in load order, with the names its
 * messages use and the text of the version in force (the last good one when
 * an edit was rejected).
 */
export interface ConfigFilesDoc {
  readonly files: readonly { readonly file: string; readonly text: string }[];
}

/** A /config/errors row (src/controlplane/admin.ts). */
interface ConfigErrorRow {
  readonly code: string;
  readonly level: Level;
  readonly message: string;
  readonly resource: string | null;
  readonly position: { file: string; line: number; col: number } | null;
  readonly field: string | null;
}

function liveSource(opts: Opts): TopologySource {
  const admin = opts.admin?.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  try {
    return topologySource({ ...(admin ? { admin } : {}), ...(opts.stateDir ? { stateDir: opts.stateDir } : {}) });
  } catch (e) {
    if (e instanceof CliError) throw new CliError(e.message, 2);
    throw e;
  }
}

/** GET a JSON page of the admin API; 404 means a control plane older than --live. */
async function getJson(src: TopologySource, path: string): Promise<unknown> {
  const url = `http://${src.admin}${path}`;
  let status: number;
  let text: string;
  try {
    ({ status, body: text } = await httpGet(url, 5000));
  } catch (e) {
    throw new CliError(`the control plane of ${src.from} does not answer on ${url}: ${(e as Error).message}; is the mesh running? (start it with \`trellis up <dir>\`, or analyse the files: trellis analyze <dir>)`, 2);
  }
  if (status === 404) {
    throw new CliError(
      `the control plane of ${src.from} cannot serve its configuration: GET ${path} answered 404 (it is older than trellis analyze --live). ` +
      'Analyse the configuration directory it was started with instead: trellis analyze <dir>', 2);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${url} answered HTTP ${status} with something that is not JSON: ${text.slice(0, 120)}`, 2);
  }
  if (status !== 200) throw new CliError(`${url}: ${(body as { error?: string } | null)?.error ?? `HTTP ${status}`}`, 2);
  return body;
}

const rowDiagnostic = (e: ConfigErrorRow): Diagnostic => ({
  code: e.code, level: e.level, message: e.message,
  ...(e.resource ? { resource: e.resource } : {}),
  ...(e.position ? { position: e.position } : {}),
  ...(e.field ? { field: e.field } : {}),
});

/**
 * The running mesh as the analyzers see it: the files in force parsed again
 * (positions as the control plane names them), the registry exactly as the
 * control plane holds it (GET /registry: registered instances included), and
 * its diagnostics (GET /config/errors: the registry's, and the edits it
 * rejected). With `overlay` files, a local resource replaces the live one of
 * the same kind, namespace and name, and the registry is rebuilt from the
 * merged configuration (the overlay may change services and workloads).
 */
async function liveMesh(src: TopologySource, overlay: readonly string[]): Promise<MeshUnderAnalysis> {
  const doc = (await getJson(src, '/config/files')) as Partial<ConfigFilesDoc> | null;
  if (!doc || !Array.isArray(doc.files) || doc.files.some((f) => typeof f?.file !== 'string' || typeof f?.text !== 'string')) {
    throw new CliError(`GET http://${src.admin}/config/files did not answer a {files: [{file, text}]} list: ${JSON.stringify(doc).slice(0, 160)}`, 2);
  }
  const resources = [];
  const diagnostics: Diagnostic[] = [];
  for (const f of doc.files) {
    const r = parseYaml(f.text, f.file);
    resources.push(...r.resources);
    diagnostics.push(...r.diagnostics);
  }
  const errors = await getJson(src, '/config/errors');
  const rows = (Array.isArray(errors) ? errors : []) as ConfigErrorRow[];
  const live = ConfigSet.of(resources, diagnostics);
  if (!overlay.length) {
    let registry;
    try {
      registry = registryFromDump((await getJson(src, '/registry')) as RegistryDump);
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`GET http://${src.admin}/registry: ${(e as Error).message}`, 2);
    }
    // The rows repeat the diagnostics of the files in force (dropped as duplicates) and add the registry's and the rejected edits'.
    return { config: live, registry, diagnostics: [...live.diagnostics, ...rows.map(rowDiagnostic)] };
  }
  const local = loadConfig(overlay);
  let config = live;
  for (const r of local.resources) config = config.with(r);
  const replaced = new Set(local.resources.map((r) => r.ref));
  config = ConfigSet.of(config.resources, [...live.diagnostics.filter((d) => !d.resource || !replaced.has(d.resource)), ...local.diagnostics]);
  // The files in force have no errors (the control plane keeps the last good version of a
  // file), so the errors among the rows are the edits it rejected; the rest is recomputed.
  return meshOf(config, rows.filter((e) => e.level === 'error').map(rowDiagnostic));
}
