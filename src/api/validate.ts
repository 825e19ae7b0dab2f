/**
 * Turns one raw YAML document into a validated, frozen `Resource`, or into
 * diagnostics that name the resource, the file position and the field.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { diagnostic, formatPath, type Diagnostic } from './diagnostic.js';
import { findKind, findUnsupported, kindsNamed } from './kinds/index.js';
import { isDnsSubdomain, isLowercaseDnsLabel } from './kinds/names.js';
import { matchPaths, parsePattern } from './field-paths.js';
import type { Metadata, Resource } from './resource.js';
import { resourceKey } from './resource.js';
import type { SourceLocator } from './source.js';

const ENVELOPE = new Set(['apiVersion', 'kind', 'metadata']);
const METADATA_READ = new Set(['name', 'namespace', 'labels', 'annotations']);
const METADATA_PASSED = new Set([
  'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'generateName', 'ownerReferences',
  'finalizers', 'managedFields', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink',
]);

export interface ValidateResult {
  readonly resource?: Resource;
  readonly diagnostics: readonly Diagnostic[];
}

/** Validates one document; `defaultNamespace` fills a missing metadata.namespace. */
export function validateDocument(raw: unknown, loc: SourceLocator, defaultNamespace = 'default'): ValidateResult {
  const ds: Diagnostic[] = [];
  const at = (path: PropertyKey[], key = false) => loc.locate(path, { key });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { diagnostics: [diagnostic('InvalidResourceHeader', { detail: 'a document must be a mapping with apiVersion, kind and metadata' }, { position: at([]) })] };
  }
  const doc = raw as Record<string, unknown>;
  const { apiVersion, kind } = doc;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    const missing = typeof apiVersion !== 'string' ? 'apiVersion' : 'kind';
    return { diagnostics: [diagnostic('InvalidResourceHeader', { detail: `the document has no ${missing} (a string is required)` }, { position: at([missing]), field: missing })] };
  }
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const meta = readMetadata(doc.metadata, ds, at);
  const namespace = meta?.namespace ?? defaultNamespace;
  const ref = `${kind} ${namespace}/${meta?.name ?? '?'}`;

  const unsupported = findUnsupported(group, kind);
  if (unsupported) {
    return { diagnostics: [diagnostic('UnsupportedKind', { kind, instead: unsupported.instead }, { resource: ref, position: at(['kind']), field: 'kind' })] };
  }
  const def = findKind(group, version, kind);
  if (!def) {
    const others = kindsNamed(kind);
    const hint = others.length
      ? `; ${kind} is served as ${others.flatMap((d) => d.versions.map((v) => (d.group ? `${d.group}/${v}` : v))).join(', ')}`
      : '';
    return { diagnostics: [diagnostic('UnknownKind', { kind, apiVersion, hint }, { resource: ref, position: at(['apiVersion']), field: 'apiVersion' })] };
  }
  if (!meta) return { diagnostics: ds };

  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!ENVELOPE.has(k)) rest[k] = v;
  // Our wording is the per-parse error map: a schema's own message still wins.
  const parsed = (def.body as z.ZodType).safeParse(rest, { reportInput: true, error: (iss) => describe(iss as z.core.$ZodIssue) });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ds.push(...issueDiagnostics(issue, ref, at, !!def.registryData));
  }
  if (ds.some((d) => d.level === 'error')) return { diagnostics: ds };
  const body = parsed.success ? parsed.data : rest;

  for (const pattern of def.notEnforced ?? []) {
    for (const path of matchPaths(body, parsePattern(pattern))) {
      ds.push(diagnostic('FieldNotEnforced', { field: formatPath(path) }, { resource: ref, position: at(path, true), field: formatPath(path) }));
    }
  }
  for (const w of parsed.success ? def.warnings?.(parsed.data) ?? [] : []) {
    const field = formatPath(w.path);
    const value = JSON.stringify(valueAt(body, w.path)) ?? 'undefined';
    ds.push(diagnostic('ValueNotEnforced', { value, field, detail: w.message }, { resource: ref, position: at([...w.path]), field }));
  }
  for (const pattern of def.extensions ?? []) {
    for (const path of matchPaths(body, parsePattern(pattern))) {
      ds.push(diagnostic('NotPortable', { field: formatPath(path) }, { resource: ref, position: at(path, true), field: formatPath(path) }));
    }
  }
  const metadata: Metadata = Object.freeze({ ...meta, namespace: def.namespaced ? namespace : '' });
  const frozenBody = deepFreeze(body);
  const resource: Resource = Object.freeze({
    apiVersion, kind, metadata, body: frozenBody,
    key: resourceKey(kind, metadata.namespace, metadata.name),
    ref: def.namespaced ? ref : `${kind} ${metadata.name}`,
    hash: contentHash([apiVersion, kind, metadata, frozenBody]),
    position: at([]),
    locator: loc,
  });
  return { resource, diagnostics: ds };
}

function readMetadata(
  raw: unknown,
  ds: Diagnostic[],
  at: (p: PropertyKey[], key?: boolean) => ReturnType<SourceLocator['locate']>,
): (Omit<Metadata, 'namespace'> & { namespace?: string }) | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    ds.push(diagnostic('InvalidResourceHeader', { detail: 'metadata is required and must be a mapping with a name' }, { position: at(['metadata']), field: 'metadata' }));
    return undefined;
  }
  const m = raw as Record<string, unknown>;
  let ok = true;
  const bad = (field: string, detail: string) => {
    ds.push(diagnostic('SchemaValidationError', { detail }, { position: at(['metadata', field]), field: `metadata.${field}` }));
    ok = false;
  };
  for (const k of Object.keys(m)) {
    if (!METADATA_READ.has(k) && !METADATA_PASSED.has(k)) {
      ds.push(diagnostic('UnknownField', { field: k, hint: '' }, { position: at(['metadata', k], true), field: `metadata.${k}` }));
      ok = false;
    }
  }
  if (typeof m.name !== 'string' || m.name === '') {
    ds.push(diagnostic('InvalidResourceHeader', { detail: 'the document has no metadata.name (a non-empty string is required)' }, { position: at(['metadata', 'name']), field: 'metadata.name' }));
    ok = false;
  } else if (!isDnsSubdomain(m.name)) bad('name', `metadata.name "${m.name}" must be a lowercase DNS-1123 name (a-z, 0-9, "-" and ".")`);
  if (m.namespace !== undefined && (typeof m.namespace !== 'string' || !isLowercaseDnsLabel(m.namespace))) {
    bad('namespace', `metadata.namespace must be a lowercase DNS-1123 label, got ${JSON.stringify(m.namespace)}`);
  }
  const strMap = (field: 'labels' | 'annotations'): Record<string, string> => {
    const v = m[field];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
      bad(field, `metadata.${field} must map strings to strings (quote numbers and booleans)`);
      return {};
    }
    return v as Record<string, string>;
  };
  const labels = Object.freeze(strMap('labels'));
  const annotations = Object.freeze(strMap('annotations'));
  if (!ok) return undefined;
  return { name: m.name as string, ...(m.namespace ? { namespace: m.namespace as string } : {}), labels, annotations };
}

/** The value at `path` inside `v`, or undefined where the path leads nowhere. */
function valueAt(v: unknown, path: readonly (string | number)[]): unknown {
  return path.reduce<unknown>((x, k) => (x !== null && typeof x === 'object' ? (x as Record<string | number, unknown>)[k] : undefined), v);
}

function issueDiagnostics(
  issue: z.core.$ZodIssue,
  resource: string,
  at: (p: PropertyKey[], key?: boolean) => ReturnType<SourceLocator['locate']>,
  registryData: boolean,
): Diagnostic[] {
  const path = issue.path;
  const field = formatPath(path);
  switch (issue.code) {
    case 'unrecognized_keys':
      if (registryData) return [];
      return issue.keys.map((k) => {
        const p = [...path, k];
        return diagnostic('UnknownField', { field: formatPath(p), hint: '' }, { resource, position: at(p, true), field: formatPath(p) });
      });
    case 'invalid_union': {
      // Report the branch that got furthest: the one with the fewest issues.
      const best = [...issue.errors].sort((a, b) => a.length - b.length)[0];
      if (best && best.length) return best.flatMap((i) => issueDiagnostics({ ...i, path: [...path, ...i.path] } as z.core.$ZodIssue, resource, at, registryData));
      break;
    }
    default:
      break;
  }
  // A missing field always says so first, whatever its schema's own wording.
  const missing = issue.code === 'invalid_type' && issue.input === undefined && !issue.message.startsWith('Required value');
  const text = missing ? `Required value: ${issue.message}` : issue.message;
  return [diagnostic('SchemaValidationError', { detail: `${field || 'document'}: ${text}` }, { resource, position: at(path), field })];
}

function describe(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'Required value: this field must be set';
      return `must be ${article(issue.expected)}, got ${typeName(issue.input)}`;
    case 'invalid_value':
      return `Unsupported value: ${JSON.stringify(issue.input)}; allowed: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'string') return `must be at least ${issue.minimum} characters long`;
      if (issue.origin === 'array') return `must have at least ${issue.minimum} item${issue.minimum === 1 ? '' : 's'}`;
      return `Invalid value: must be ${issue.inclusive ? 'at least' : 'greater than'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters long`;
      if (issue.origin === 'array') return `must have at most ${issue.maximum} items`;
      return `Invalid value: must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`;
    case 'invalid_format':
      return `Invalid value: must match the format ${issue.format}${issue.pattern ? ` ${issue.pattern}` : ''}`;
    default:
      return issue.message ?? 'invalid value';
  }
}

function article(t: string): string {
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Stable hash of a JSON-like value: keys sorted, 16 hex characters. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16);
}

export function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
