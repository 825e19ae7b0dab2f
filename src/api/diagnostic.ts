import { messages, render, type Level, type MessageName } from './messages.js';

/** Where something is in the user's files. Lines and columns count from 1. */
export interface Position {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/**
 * One message for a person or a tool: a catalogue code, its level, the text,
 * and where it came from (resource, file position, field path).
 */
export interface Diagnostic {
  readonly code: string;
  readonly level: Level;
  readonly message: string;
  /** `Kind namespace/name`, when the message is about one resource. */
  readonly resource?: string;
  readonly position?: Position;
  /** Dotted field path inside the resource, e.g. `spec.http[0].route[1].weight`. */
  readonly field?: string;
}

/** Makes a diagnostic from a catalogue entry. */
export function diagnostic(
  name: MessageName,
  args: Readonly<Record<string, string | number>>,
  where: { resource?: string; position?: Position; field?: string } = {},
): Diagnostic {
  const m = messages[name];
  const d: Diagnostic = { code: m.code, level: m.level, message: render(m.template, args), ...where };
  return Object.freeze(d);
}

/**
 * `spec.http[0].route` from `['spec', 'http', 0, 'route']`. A key that holds
 * a dot, a bracket, a quote or a space (a label key such as
 * `app.kubernetes.io/name`, a claim `@request.auth.claims.group`) is written
 * `["…"]`, so that the path reads back the same (`parsePath`).
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^$|[.[\]"\s]/.test(String(p))) out += `[${JSON.stringify(String(p))}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** The inverse of `formatPath`: `spec.selector.matchLabels["app.kubernetes.io/name"]` → its keys. */
export function parsePath(text: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of text.matchAll(/\[("(?:[^"\\]|\\.)*")\]|\[(\d+)\]|([^.[\]]+)/g)) {
    if (m[1] !== undefined) out.push(JSON.parse(m[1]) as string);
    else if (m[2] !== undefined) out.push(Number(m[2]));
    else out.push(m[3]!);
  }
  return out;
}

/** `file:line:col: error TRL0106 VirtualService default/reviews spec.http[0]: message` */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.position ? `${d.position.file}:${d.position.line}:${d.position.col}: ` : '';
  const what = [d.resource, d.field].filter(Boolean).join(' ');
  // A schema message leads with its field, so that it reads alone (JSON output, hints quoting it); the line names the field already.
  const message = d.field && d.message.startsWith(`${d.field}: `) ? d.message.slice(d.field.length + 2) : d.message;
  return `${where}${d.level} ${d.code}${what ? ` ${what}` : ''}: ${message}`;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.level === 'error');
}

/**
 * The base error of Trellis: data with a stable code, where it came from and
 * whether trying again may help. Wraps its cause rather than replacing it.
 */
export class TrellisError extends Error {
  readonly code: string;
  readonly source: 'downstream' | 'upstream' | 'internal' | 'config';
  readonly retryable: boolean;
  readonly status: number;
  readonly diagnostics: readonly Diagnostic[];

  constructor(
    code: string,
    message: string,
    opts: {
      source?: TrellisError['source'];
      retryable?: boolean;
      status?: number;
      cause?: unknown;
      diagnostics?: readonly Diagnostic[];
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TrellisError';
    this.code = code;
    this.source = opts.source ?? 'internal';
    this.retryable = opts.retryable ?? false;
    this.status = opts.status ?? 500;
    this.diagnostics = opts.diagnostics ?? [];
  }

  /** An error made from one diagnostic (its code, its text with the location). */
  static from(d: Diagnostic): TrellisError {
    return new TrellisError(d.code, formatDiagnostic(d), { source: 'config', status: 400, diagnostics: [d] });
  }
}
