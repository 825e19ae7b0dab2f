/**
 * The text report of `trellis analyze`: findings grouped by resource (in the
 * order they are first met, which is file order), one line each with
 * `file:line:col`, level, code, field and message, then a summary line.
 * Colour (ANSI) only when asked: the CLI asks when stdout is a terminal and
 * NO_COLOR is not set.
 *
 * ```
 * AuthorizationPolicy bank/debit-credit-callers
 *   examples/bank/security.yaml:27:9  info  TRL1007  spec.rules[0].from[0].source.labels
 *       field "…" is a Trellis extension and is not understood by Istio
 *
 * 12 resources, 1 analyzer: 0 errors, 0 warnings, 1 info
 * ```
 */
import { messages, type Level } from '../../api/messages.js';
import { countByLevel, reportableMessages, type AnalysisReport, type AnalyzerInfo } from '../analyze.js';
import type { Finding } from '../run.js';

export interface TextOptions {
  /** ANSI colours; off by default. */
  readonly color?: boolean;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The report as a person reads it; ends with a newline. */
export function formatText(report: AnalysisReport, opts: TextOptions = {}): string {
  const c = opts.color ? ansi : plain;
  const groups = new Map<string, Finding[]>();
  for (const f of report.findings) {
    const d = f.diagnostic;
    const key = d.resource ?? (d.position ? d.position.file : '(the mesh)');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(f);
  }
  const out: string[] = [];
  for (const [resource, list] of groups) {
    out.push(c.bold(resource));
    for (const f of list) {
      const d = f.diagnostic;
      const where = d.position ? `${d.position.file}:${d.position.line}:${d.position.col}` : '-';
      out.push(`  ${where}  ${c.level(d.level, d.level)}  ${d.code}${d.field ? `  ${d.field}` : ''}  ${c.dim(`[${f.analyzer}]`)}`);
      out.push(`      ${d.message}`);
    }
    out.push('');
  }
  out.push(summaryLine(report, c));
  return out.join('\n') + '\n';
}

/** `12 resources, 8 analyzers: 1 error, 0 warnings, 2 info (3 suppressed)`, or `… no problems found`. */
function summaryLine(report: AnalysisReport, c: Paint): string {
  const n = countByLevel(report.findings);
  const head = `${plural(report.resources, 'resource')}, ${plural(report.analyzers.length, 'analyzer')}: `;
  const suppressed = report.suppressed.length ? ` (${report.suppressed.length} suppressed)` : '';
  if (!report.findings.length) return `${head}no problems found${suppressed}`;
  const parts = [
    c.level('error', plural(n.error, 'error')),
    c.level('warning', plural(n.warning, 'warning')),
    c.level('info', `${n.info} info`),
  ];
  return `${head}${parts.join(', ')}${suppressed}`;
}

interface Paint {
  bold(s: string): string;
  dim(s: string): string;
  level(l: Level, s: string): string;
}

const plain: Paint = { bold: (s) => s, dim: (s) => s, level: (_l, s) => s };

const CODES: Readonly<Record<Level, string>> = { error: '31', warning: '33', info: '36' };

const ansi: Paint = {
  bold: (s) => `\x1b[1m${s}\x1b[22m`,
  dim: (s) => `\x1b[2m${s}\x1b[22m`,
  level: (l, s) => `\x1b[${CODES[l]}m${s}\x1b[39m`,
};

/** Whether to colour a stream: a terminal, and NO_COLOR (https://no-color.org) unset or empty. */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/** `--list-analyzers`: text (name, description, codes), json, or the markdown table of docs/analyze.md. */
export function formatAnalyzerList(list: readonly AnalyzerInfo[], format: 'text' | 'json' | 'markdown'): string {
  const codes = (a: AnalyzerInfo) => a.messages.map((m) => messages[m]);
  if (format === 'json') {
    return JSON.stringify(list.map((a) => ({
      name: a.name, description: a.description, reads: a.reads,
      messages: codes(a).map((m) => ({ code: m.code, name: m.name, level: m.level })),
      istio: a.istio ?? [],
    })), null, 2) + '\n';
  }
  if (format === 'markdown') {
    const cell = (s: string) => s.replace(/\|/g, '\\|');
    const rows = list.map((a) => `| \`${a.name}\` | ${cell(a.description)} | ${codes(a).map((m) => `[${m.code}](#${m.code.toLowerCase()})`).join(', ')} | ${(a.istio ?? []).join(', ')} |`);
    const codeRows = reportableMessages(list).map((m) => `| <a id="${m.code.toLowerCase()}"></a>${m.code} | ${m.level} | ${m.name} | ${cell(m.docs)} |`);
    return [
      '| analyzer | what it checks | codes | Istio analyzers |', '|---|---|---|---|', ...rows,
      '', '| code | level | name | meaning |', '|---|---|---|---|', ...codeRows,
    ].join('\n') + '\n';
  }
  return list.map((a) => `${a.name}\n    ${a.description}\n    reads: ${a.reads.join(', ')}\n    codes: ${codes(a).map((m) => `${m.code} ${m.name}`).join(', ')}\n`).join('');
}
