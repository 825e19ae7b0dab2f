/**
 * `trellis analyze -o sarif`: SARIF 2.1.0 (OASIS), the format GitHub code
 * scanning and other CI viewers read. One run; `tool.driver.rules` holds
 * every catalogue code the analyzers that ran can report (id, name,
 * descriptions from the catalogue's docs, default level, help); each result
 * names its rule, level, message and the file region (`uri` relative to the
 * source root, `uriBaseId: SRCROOT`), so the viewer annotates the very line.
 * Validated against the official schema in test/analyze/sarif.test.ts.
 */
import { createHash } from 'node:crypto';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Level, MessageType } from '../../api/messages.js';
import { messageOf, reportableMessages, type AnalysisReport, type AnalyzerInfo } from '../analyze.js';
import type { Finding } from '../run.js';

export interface SarifOptions {
  /** The analyzers that ran (their messages become the rules). */
  readonly analyzers: readonly AnalyzerInfo[];
  /** Trellis's version, for tool.driver. */
  readonly version: string;
  /** The directory positions' relative file names are relative to (the process's cwd). */
  readonly cwd: string;
  /** The directory result URIs are relative to (SRCROOT): the repository root in CI; `cwd` by default. */
  readonly srcroot?: string;
  /** Where docs/analyze.md is published; rules then carry `helpUri` `<docsUrl>#trl0101`. */
  readonly docsUrl?: string;
}

const LEVEL: Readonly<Record<Level, 'error' | 'warning' | 'note'>> = { error: 'error', warning: 'warning', info: 'note' };

/** The first sentence of a doc text, for shortDescription. */
function firstSentence(text: string): string {
  const m = /^(.+?[.!?])(\s|$)/.exec(text);
  return m ? m[1]! : text;
}

/** A file name as a URI reference: relative to SRCROOT when below it, else an absolute file: URI. */
function artifactLocation(file: string, cwd: string, srcroot: string): { uri: string; uriBaseId?: string } {
  const abs = isAbsolute(file) ? file : resolve(cwd, file);
  const rel = relative(srcroot, abs);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return { uri: pathToFileURL(abs).href };
  return { uri: rel.split(sep).map(encodeURIComponent).join('/'), uriBaseId: 'SRCROOT' };
}

function rule(m: MessageType, analyzers: readonly AnalyzerInfo[], docsUrl: string | undefined) {
  const by = analyzers.filter((a) => a.messages.includes(m.name as never)).map((a) => a.name);
  const istio = m.code.startsWith('TRL0') ? `IST${m.code.slice(3)}` : undefined;
  const see = `Run \`trellis codes ${m.code}\`${docsUrl ? `, or see ${docsUrl}#${m.code.toLowerCase()}` : ''}.`;
  return {
    id: m.code,
    name: m.name,
    shortDescription: { text: firstSentence(m.docs) },
    fullDescription: { text: m.docs },
    defaultConfiguration: { level: LEVEL[m.level] },
    ...(docsUrl ? { helpUri: `${docsUrl}#${m.code.toLowerCase()}` } : {}),
    help: {
      text: `${m.docs}${istio ? ` Istio reports the same problem as ${istio}.` : ''} ${see}`,
      markdown: `**${m.code} ${m.name}** (${m.level})\n\n${m.docs}${istio ? `\n\nIstio reports the same problem as \`${istio}\`.` : ''}\n\n${by.length ? `Reported by: ${by.map((b) => `\`${b}\``).join(', ')}. ` : ''}${see}`,
    },
    properties: { tags: ['trellis', 'configuration', ...(istio ? ['istio'] : [])], analyzers: by, ...(istio ? { istioCode: istio } : {}) },
  };
}

const fingerprint = (f: Finding) =>
  createHash('sha256').update(JSON.stringify([f.diagnostic.code, f.diagnostic.resource ?? '', f.diagnostic.field ?? '', f.diagnostic.message])).digest('hex').slice(0, 32);

/** The SARIF log (a plain object, ready for JSON.stringify). */
export function toSarif(report: AnalysisReport, opts: SarifOptions) {
  const srcroot = resolve(opts.cwd, opts.srcroot ?? '.');
  const messages = reportableMessages(opts.analyzers);
  // A code no analyzer declared (a bug in a declaration) still gets its rule, so every ruleId resolves.
  for (const f of report.findings) {
    if (!messages.some((m) => m.code === f.diagnostic.code)) {
      const m = messageOf(f.diagnostic.code);
      if (m) messages.push(m);
    }
  }
  const rules = messages.map((m) => rule(m, opts.analyzers, opts.docsUrl));
  const index = new Map(rules.map((r, i) => [r.id, i]));
  const results = report.findings.map((f) => {
    const d = f.diagnostic;
    const what = [d.resource, d.field].filter(Boolean).join(' ');
    const ruleIndex = index.get(d.code);
    return {
      ruleId: d.code,
      ...(ruleIndex === undefined ? {} : { ruleIndex }),
      level: LEVEL[d.level],
      message: { text: `${what ? `${what}: ` : ''}${d.message}` },
      ...(d.position
        ? {
            locations: [{
              physicalLocation: {
                artifactLocation: artifactLocation(d.position.file, opts.cwd, srcroot),
                region: { startLine: d.position.line, startColumn: d.position.col },
              },
              ...(d.resource ? { logicalLocations: [{ fullyQualifiedName: d.resource, kind: 'resource' }] } : {}),
            }],
          }
        : {}),
      partialFingerprints: { 'trellisFinding/v1': fingerprint(f) },
      properties: { analyzer: f.analyzer, ...(d.resource ? { resource: d.resource } : {}), ...(d.field ? { field: d.field } : {}) },
    };
  });
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0' as const,
    runs: [{
      tool: {
        driver: {
          name: 'trellis',
          fullName: 'trellis analyze',
          version: opts.version,
          semanticVersion: opts.version,
          ...(opts.docsUrl ? { informationUri: opts.docsUrl } : {}),
          rules,
        },
      },
      originalUriBaseIds: { SRCROOT: { uri: pathToFileURL(srcroot.endsWith(sep) ? srcroot : srcroot + sep).href } },
      columnKind: 'utf16CodeUnits' as const,
      results,
      properties: { analyzers: report.analyzers, resources: report.resources, suppressed: report.suppressed.length },
    }],
  };
}
