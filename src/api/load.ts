/**
 * Loading configuration: YAML files and directories, multi-document files,
 * `kind: List`, comments, anchors and merge keys. Every resource keeps where
 * it came from. A bad document is reported and skipped; the rest still load.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import { diagnostic, type Diagnostic } from './diagnostic.js';
import { ConfigSet } from './config-set.js';
import type { Resource } from './resource.js';
import { SourceLocator } from './source.js';
import { validateDocument } from './validate.js';

export interface LoadResult {
  readonly resources: readonly Resource[];
  readonly diagnostics: readonly Diagnostic[];
}

const YAML_FILE = /\.ya?ml$/i;

/**
 * The YAML files a path names: the file itself, or every `.yaml`/`.yml` below
 * a directory (sorted, hidden entries and node_modules skipped). Throws when
 * `path` itself cannot be read. An entry below it that cannot be examined (a
 * dangling link) is listed when its name is a YAML file's, so that reading it
 * reports it, and passed over otherwise.
 */
export function yamlFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (name.startsWith('.') || name === 'node_modules') continue;
    const full = join(path, name);
    if (isDirectory(full)) out.push(...yamlFiles(full));
    else if (YAML_FILE.test(name)) out.push(full);
  }
  return out;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Parses YAML text that came from `file` (used in messages) into validated resources. */
export function parseYaml(text: string, file: string, opts: { defaultNamespace?: string } = {}): LoadResult {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, merge: true, prettyErrors: false, uniqueKeys: true });
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  if (!Array.isArray(docs)) return { resources, diagnostics }; // an empty stream
  for (const doc of docs) {
    const loc = new SourceLocator(file, doc, lines);
    if (doc.errors.length) {
      for (const e of doc.errors) {
        diagnostics.push(diagnostic('YamlSyntaxError', { detail: e.message.split('\n')[0]! }, { position: loc.at(e.pos[0]) }));
      }
      continue;
    }
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      diagnostics.push(diagnostic('YamlSyntaxError', { detail: (e as Error).message }, { position: loc.at(0) }));
      continue;
    }
    if (raw === null || raw === undefined) continue; // an empty document (`---` with nothing after it)
    const items = isList(raw) ? (raw as { items: unknown[] }).items.map((it, i) => [it, loc.child(['items', i])] as const) : [[raw, loc] as const];
    for (const [item, itemLoc] of items) {
      const r = validateDocument(item, itemLoc, opts.defaultNamespace);
      diagnostics.push(...r.diagnostics);
      if (r.resource) resources.push(r.resource);
    }
  }
  return { resources, diagnostics };
}

function isList(raw: unknown): boolean {
  if (raw === null || typeof raw !== 'object') return false;
  const r = raw as Record<string, unknown>;
  return r.kind === 'List' && Array.isArray(r.items) && (r.apiVersion === 'v1' || r.apiVersion === undefined);
}

/**
 * Loads every YAML file under the given paths into one configuration set.
 * File names in messages are relative to `cwd` (the process's by default)
 * when they are below it. A path or file that cannot be read is reported
 * (TRL1008) and the others still load.
 */
export function loadConfig(paths: readonly string[], opts: { cwd?: string; defaultNamespace?: string } = {}): ConfigSet {
  const cwd = opts.cwd ?? process.cwd();
  const shown = (f: string) => {
    const rel = relative(cwd, f);
    return rel.startsWith('..') ? f : rel;
  };
  const notReadable = (f: string, e: unknown) =>
    diagnostic('FileNotReadable', { path: shown(f), detail: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const p of paths) {
    let files: string[];
    try {
      files = yamlFiles(p);
    } catch (e) {
      diagnostics.push(notReadable(p, e));
      continue;
    }
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (e) {
        diagnostics.push(notReadable(f, e));
        continue;
      }
      const r = parseYaml(text, shown(f), opts);
      resources.push(...r.resources);
      diagnostics.push(...r.diagnostics);
    }
  }
  return ConfigSet.of(resources, diagnostics);
}
