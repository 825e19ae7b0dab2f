/**
 * Suppressions: findings a team has decided to live with, named by message
 * code and resource, like `istioctl analyze --suppress`. They come from
 * `--suppress CODE=RESOURCE` flags and from suppression files (YAML, see
 * docs/analyze.md). Both parts take `*` wildcards; `IST0nnn` is accepted for
 * the `TRL0nnn` that mirrors it, so an istioctl suppression list carries over.
 *
 * ```yaml
 * # .trellis-analyze.yaml
 * suppressions:
 * - code: TRL1007
 *   resource: AuthorizationPolicy bank/*
 *   reason: we run Trellis only; source.labels is intended
 * ```
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { messagesByCode } from '../api/messages.js';
import type { Finding } from './run.js';

/** One suppression rule. */
export interface Suppression {
  /** A code or a pattern: `TRL0101`, `TRL01*`, `*`. */
  readonly code: string;
  /** `Kind namespace/name` (`Kind name` for cluster-wide kinds), with `*` wildcards; `*` is every resource. */
  readonly resource: string;
  /** Why the finding is accepted (files only; shown in JSON output). */
  readonly reason?: string;
  /** Where the rule came from: `--suppress`, or `file:line`. */
  readonly source: string;
}

/** A suppression rule that could not be read; the CLI turns it into a usage error (exit 2). */
export class SuppressionError extends Error {}

/** `*` matches any run of characters (spaces and slashes included); everything else is literal. */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** `IST0101` → `TRL0101`; other codes upper-cased. */
function normalCode(code: string): string {
  const c = code.trim().toUpperCase();
  return /^IST0/.test(c) ? `TRL${c.slice(3)}` : c;
}

function checked(code: string, resource: string, source: string, reason?: string): Suppression {
  const c = normalCode(code);
  if (!/^[A-Z0-9*]+$/.test(c)) throw new SuppressionError(`${source}: "${code}" is not a message code or a code pattern (such as TRL0101, TRL01*, *)`);
  if (!c.includes('*') && !messagesByCode.has(c)) throw new SuppressionError(`${source}: there is no message code ${c}; run "trellis codes" for the list`);
  const r = resource.trim().replace(/\s+/g, ' ');
  if (r === '') throw new SuppressionError(`${source}: the resource is empty; write "Kind namespace/name" (wildcards allowed) or *`);
  return { code: c, resource: r, ...(reason ? { reason } : {}), source };
}

/** Parses a `--suppress` value: `CODE=Kind namespace/name`; a bare `CODE` suppresses it everywhere. */
export function parseSuppressFlag(value: string): Suppression {
  const eq = value.indexOf('=');
  const code = eq < 0 ? value : value.slice(0, eq);
  const resource = eq < 0 ? '*' : value.slice(eq + 1);
  return checked(code, resource, `--suppress ${value}`);
}

/**
 * Reads a suppression file: a YAML list of `{code, resource, reason}`, or a
 * mapping whose `suppressions` key holds that list. Unknown keys are errors,
 * as everywhere in Trellis, so that a misspelt `resource` does not silently
 * suppress a code everywhere.
 */
export function readSuppressionFile(file: string, shown = file): Suppression[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SuppressionError(`cannot read suppression file ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseSuppressions(text, shown);
}

/** As readSuppressionFile, from text (`file` names it in messages). */
export function parseSuppressions(text: string, file: string): Suppression[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (node: unknown) => {
    const off = (node as Node | undefined)?.range?.[0];
    if (off === undefined) return file;
    const p = lines.linePos(off);
    return `${file}:${p.line}:${p.col}`;
  };
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const p = lines.linePos(e.pos[0]);
    throw new SuppressionError(`${file}:${p.line}:${p.col}: YAML syntax error: ${e.message.split('\n')[0]}`);
  }
  let list: unknown = doc.contents;
  if (list === null) return [];
  if (isMap(list)) {
    for (const pair of list.items) {
      const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
      if (key !== 'suppressions') throw new SuppressionError(`${at(pair.key)}: unknown key "${key}"; a suppression file has one key, suppressions (a list of {code, resource, reason})`);
    }
    list = list.get('suppressions', true);
    if (list === undefined || list === null || (isScalar(list) && list.value === null)) return [];
  }
  if (!isSeq(list)) throw new SuppressionError(`${at(list)}: expected a list of {code, resource, reason}`);
  const out: Suppression[] = [];
  for (const item of list.items) {
    const where = at(item);
    if (!isMap(item)) throw new SuppressionError(`${where}: each suppression is a mapping {code, resource, reason}`);
    const fields: Record<string, unknown> = {};
    for (const pair of item.items) {
      const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
      if (!['code', 'resource', 'reason'].includes(key)) throw new SuppressionError(`${at(pair.key)}: unknown key "${key}"; a suppression has code, resource and reason`);
      const v = (pair.value as { value?: unknown } | null)?.value;
      if (typeof v !== 'string') throw new SuppressionError(`${at(pair.value ?? pair.key)}: ${key} must be a string`);
      fields[key] = String(v);
    }
    if (fields.code === undefined) throw new SuppressionError(`${where}: a suppression needs a code (such as TRL0101, or a pattern such as TRL01*)`);
    if (fields.resource === undefined) throw new SuppressionError(`${where}: a suppression needs a resource ("Kind namespace/name", wildcards allowed, or * for every resource)`);
    const line = where.split(':').slice(0, -1).join(':');
    out.push(checked(fields.code as string, fields.resource as string, line || file, fields.reason as string | undefined));
  }
  return out;
}

/** A compiled rule set: which rule, if any, suppresses a finding. */
export class Suppressions {
  readonly rules: readonly Suppression[];
  readonly #compiled: readonly { rule: Suppression; code: RegExp; resource: RegExp }[];
  readonly #used = new Set<Suppression>();

  constructor(rules: readonly Suppression[]) {
    this.rules = rules;
    this.#compiled = rules.map((rule) => ({ rule, code: glob(rule.code), resource: glob(rule.resource) }));
  }

  /** The first rule that covers the finding; a finding about no resource is covered only by resource `*`. */
  match(f: Finding): Suppression | undefined {
    const d = f.diagnostic;
    for (const c of this.#compiled) {
      if (!c.code.test(d.code)) continue;
      if (d.resource === undefined ? c.rule.resource !== '*' : !c.resource.test(d.resource)) continue;
      this.#used.add(c.rule);
      return c.rule;
    }
    return undefined;
  }

  /** Rules that have suppressed nothing so far (a typo, or a finding that was fixed). */
  unused(): Suppression[] {
    return this.rules.filter((r) => !this.#used.has(r));
  }
}
