/**
 * `trellis analyze -o json`: the schema `trellis.dev/analyze/v1`
 * (docs/analyze.md). Fields are only ever added; a field a finding lacks is
 * `null`, never missing, so that `jq` filters stay simple.
 */
import type { Level } from '../../api/messages.js';
import { countByLevel, fails, messageOf, type AnalysisReport, type FailOn } from '../analyze.js';
import type { Finding } from '../run.js';
import type { Suppression } from '../suppress.js';

export const JSON_SCHEMA = 'trellis.dev/analyze/v1';

export interface JsonFinding {
  readonly code: string;
  /** The catalogue name: `ReferencedResourceNotFound`. */
  readonly name: string | null;
  readonly level: Level;
  readonly message: string;
  readonly analyzer: string;
  /** `Kind namespace/name`. */
  readonly resource: string | null;
  readonly file: string | null;
  readonly line: number | null;
  readonly column: number | null;
  /** `spec.http[0].route[0].destination.host`. */
  readonly field: string | null;
}

export interface JsonSuppression {
  readonly code: string;
  readonly resource: string;
  readonly reason: string | null;
  /** `--suppress …`, or `file:line`. */
  readonly source: string;
}

export interface JsonReport {
  readonly schema: typeof JSON_SCHEMA;
  /** What was analysed: `{ "paths": [...] }`, or `{ "live": "host:port", "paths": [...] }` with the files laid over it. */
  readonly input: { readonly paths: readonly string[]; readonly live?: string };
  readonly analyzers: readonly string[];
  readonly resources: number;
  readonly failOn: FailOn;
  /** Whether findings at or above failOn remain: the exit status is 1 exactly when true. */
  readonly failed: boolean;
  readonly summary: { readonly errors: number; readonly warnings: number; readonly info: number; readonly suppressed: number };
  readonly findings: readonly JsonFinding[];
  readonly suppressed: readonly (JsonFinding & { readonly suppressedBy: JsonSuppression })[];
  readonly unusedSuppressions: readonly JsonSuppression[];
}

export function jsonFinding(f: Finding): JsonFinding {
  const d = f.diagnostic;
  return {
    code: d.code,
    name: messageOf(d.code)?.name ?? null,
    level: d.level,
    message: d.message,
    analyzer: f.analyzer,
    resource: d.resource ?? null,
    file: d.position?.file ?? null,
    line: d.position?.line ?? null,
    column: d.position?.col ?? null,
    field: d.field ?? null,
  };
}

const jsonSuppression = (s: Suppression): JsonSuppression => ({ code: s.code, resource: s.resource, reason: s.reason ?? null, source: s.source });

export function toJson(report: AnalysisReport, meta: { input: JsonReport['input']; failOn: FailOn }): JsonReport {
  const n = countByLevel(report.findings);
  return {
    schema: JSON_SCHEMA,
    input: meta.input,
    analyzers: report.analyzers,
    resources: report.resources,
    failOn: meta.failOn,
    failed: fails(report, meta.failOn),
    summary: { errors: n.error, warnings: n.warning, info: n.info, suppressed: report.suppressed.length },
    findings: report.findings.map(jsonFinding),
    suppressed: report.suppressed.map((s) => ({ ...jsonFinding(s), suppressedBy: jsonSuppression(s.by) })),
    unusedSuppressions: report.unusedSuppressions.map(jsonSuppression),
  };
}
