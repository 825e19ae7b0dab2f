/**
 * The configuration in force, with last-good semantics **per file**: a file
 * is in force in its latest version that has no error; a version with errors
 * (YAML syntax, schema, a resource that another file already defines) is
 * reported with file:line and its last good version stays in force — or
 * nothing of it, if it never had one. Files that are deleted leave the
 * configuration. Edits of other files still apply, so one broken file does
 * not freeze the whole directory.
 */
import { createHash } from 'node:crypto';
import { ConfigSet } from '../api/config-set.js';
import { diagnostic, type Diagnostic } from '../api/diagnostic.js';
import { parseYaml } from '../api/load.js';
import type { Resource } from '../api/resource.js';

/** One version of one file, parsed. */
interface FileVersion {
  readonly file: string;
  readonly hash: string;
  readonly text: string;
  readonly resources: readonly Resource[];
  readonly diagnostics: readonly Diagnostic[];
}

/** What a file read gave: its text, or the error that kept it from being read. */
export type FileRead = { readonly text: string } | { readonly error: NodeJS.ErrnoException | Error };

export interface ConfigUpdate {
  /** The configuration in force after the update (its diagnostics are those of the files in force). */
  readonly config: ConfigSet;
  /** Whether `config` differs from the one before. */
  readonly changed: boolean;
  /** Errors of file versions that were rejected; their last good versions (if any) stay in force. */
  readonly rejected: readonly Diagnostic[];
  /** Files whose current version was rejected. */
  readonly rejectedFiles: readonly string[];
}

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex');

export class ConfigStore {
  #good = new Map<string, FileVersion>();
  #parsed = new Map<string, FileVersion>();
  #config = ConfigSet.of([]);
  #inForce: readonly FileVersion[] = [];

  /** The configuration in force. */
  get config(): ConfigSet {
    return this.#config;
  }

  /** The text of every file version in force, in load order: what `trellis analyze --live` reads. */
  sources(): readonly { readonly file: string; readonly text: string }[] {
    return this.#inForce.map((v) => ({ file: v.file, text: v.text }));
  }

  /**
   * Takes the current contents of every file (in load order; names as they
   * appear in messages) and recomputes the configuration in force.
   */
  update(files: ReadonlyMap<string, FileRead>): ConfigUpdate {
    const rejected: Diagnostic[] = [];
    const rejectedFiles: string[] = [];
    const chosen = new Map<string, FileVersion | undefined>();
    const changedFiles: string[] = [];
    for (const [file, read] of files) {
      const good = this.#good.get(file);
      if ('error' in read) {
        rejected.push(diagnostic('FileNotReadable', { path: file, detail: (read.error as NodeJS.ErrnoException).code ?? read.error.message }));
        rejectedFiles.push(file);
        chosen.set(file, good);
        continue;
      }
      const version = this.#parse(file, read.text);
      const errors = version.diagnostics.filter((d) => d.level === 'error');
      if (errors.length) {
        rejected.push(...errors);
        rejectedFiles.push(file);
        chosen.set(file, good);
      } else {
        chosen.set(file, version);
        if (version !== good) changedFiles.push(file);
      }
    }

    // A changed file may not take a resource another file defines: that edit is rejected too.
    const owner = new Map<string, Resource>();
    for (const [file, v] of chosen) if (v && !changedFiles.includes(file)) for (const r of v.resources) if (!owner.has(r.key)) owner.set(r.key, r);
    for (const file of changedFiles) {
      const v = chosen.get(file)!;
      const clash = v.resources.find((r) => owner.has(r.key));
      if (clash) {
        const first = owner.get(clash.key)!;
        rejected.push(diagnostic('DuplicateResource', { resource: clash.ref, first: `${first.position.file}:${first.position.line}` }, { resource: clash.ref, position: clash.position }));
        rejectedFiles.push(file);
        chosen.set(file, this.#good.get(file));
        const back = this.#good.get(file);
        if (back) for (const r of back.resources) if (!owner.has(r.key)) owner.set(r.key, r);
        continue;
      }
      for (const r of v.resources) owner.set(r.key, r);
      this.#good.set(file, v);
    }
    for (const file of [...this.#good.keys()]) if (!files.has(file)) this.#good.delete(file);
    for (const file of [...this.#parsed.keys()]) if (!files.has(file)) this.#parsed.delete(file);

    const inForce = [...chosen.values()].filter((v): v is FileVersion => v !== undefined);
    const changed = inForce.length !== this.#inForce.length || inForce.some((v, i) => v !== this.#inForce[i]);
    if (changed) {
      this.#inForce = inForce;
      this.#config = ConfigSet.of(inForce.flatMap((v) => v.resources), inForce.flatMap((v) => v.diagnostics));
    }
    return { config: this.#config, changed, rejected, rejectedFiles };
  }

  /** Parses a file, reusing the last parse when its text did not change. */
  #parse(file: string, text: string): FileVersion {
    const hash = hashOf(text);
    const last = this.#parsed.get(file);
    if (last && last.hash === hash) return last;
    const good = this.#good.get(file);
    if (good && good.hash === hash) return good;
    const r = parseYaml(text, file);
    const own = ConfigSet.of(r.resources);
    const v: FileVersion = Object.freeze({ file, hash, text, resources: own.resources, diagnostics: [...r.diagnostics, ...own.diagnostics] });
    this.#parsed.set(file, v);
    return v;
  }
}
