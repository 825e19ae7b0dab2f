import { diagnostic, formatDiagnostic, type Diagnostic } from './diagnostic.js';
import type { KindBodies } from './kinds/index.js';
import type { Resource } from './resource.js';

/** A resource of a known kind, with its body typed. */
export type ResourceOf<K extends keyof KindBodies> = Resource<KindBodies[K]> & { readonly kind: K };

/**
 * An immutable set of validated resources, indexed by kind and key, with the
 * diagnostics met while loading. Duplicates (same kind, namespace and name)
 * keep the first and report the second.
 */
export class ConfigSet {
  readonly resources: readonly Resource[];
  readonly diagnostics: readonly Diagnostic[];
  readonly #byKind = new Map<string, Resource[]>();
  readonly #byKey = new Map<string, Resource>();

  private constructor(resources: readonly Resource[], diagnostics: readonly Diagnostic[]) {
    const kept: Resource[] = [];
    const ds = [...diagnostics];
    for (const r of resources) {
      const first = this.#byKey.get(r.key);
      if (first) {
        ds.push(diagnostic('DuplicateResource', { resource: r.ref, first: `${first.position.file}:${first.position.line}` }, { resource: r.ref, position: r.position }));
        continue;
      }
      this.#byKey.set(r.key, r);
      let list = this.#byKind.get(r.kind);
      if (!list) this.#byKind.set(r.kind, (list = []));
      list.push(r);
      kept.push(r);
    }
    this.resources = Object.freeze(kept);
    this.diagnostics = Object.freeze(ds);
  }

  static of(resources: readonly Resource[], diagnostics: readonly Diagnostic[] = []): ConfigSet {
    return new ConfigSet(resources, diagnostics);
  }

  /** Every resource of one kind, in load order. */
  ofKind<K extends keyof KindBodies>(kind: K): readonly ResourceOf<K>[] {
    return (this.#byKind.get(kind) ?? []) as unknown as ResourceOf<K>[];
  }

  get<K extends keyof KindBodies>(kind: K, namespace: string, name: string): ResourceOf<K> | undefined {
    return this.#byKey.get(`${kind}/${namespace}/${name}`) as ResourceOf<K> | undefined;
  }

  /** A new set with `r` added, or replacing the resource of the same key. */
  with(r: Resource): ConfigSet {
    const has = this.#byKey.has(r.key);
    const next = has ? this.resources.map((x) => (x.key === r.key ? r : x)) : [...this.resources, r];
    return new ConfigSet(next, this.diagnostics);
  }

  /** A new set without the resource of this key. */
  without(key: string): ConfigSet {
    return new ConfigSet(this.resources.filter((x) => x.key !== key), this.diagnostics);
  }

  get errors(): readonly Diagnostic[] {
    return this.diagnostics.filter((d) => d.level === 'error');
  }

  /** Throws-free summary for logs. */
  describeErrors(): string {
    return this.errors.map(formatDiagnostic).join('\n');
  }
}
