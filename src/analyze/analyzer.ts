/**
 * The analyzer contract: a small, named check over the loaded configuration
 * and the registry that reports catalogue messages. Analyzers are pure: they
 * read the context and call `report`; they never print, exit or do I/O, so
 * the same analyzer runs under `trellis analyze`, `--live`, the peer suite and
 * the unit tests.
 */
import type { ConfigSet, ResourceOf } from '../api/config-set.js';
import { diagnostic, formatPath, type Diagnostic } from '../api/diagnostic.js';
import type { KindBodies } from '../api/kinds/index.js';
import type { MessageName } from '../api/messages.js';
import type { Resource } from '../api/resource.js';
import type { MeshSettings } from '../protocol/snapshot.js';
import type { Registry } from '../registry/types.js';

/** Where a message points: the resource, and the field inside it (as a path). */
export interface Target {
  readonly resource: Resource;
  /** `['spec', 'http', 0, 'route', 1]`; the resource's start when absent or not found. */
  readonly field?: readonly (string | number)[];
}

export interface AnalysisContext {
  readonly config: ConfigSet;
  readonly registry: Registry;
  readonly mesh: MeshSettings;
  /** Every resource of one kind, in load order. */
  ofKind<K extends keyof KindBodies>(kind: K): readonly ResourceOf<K>[];
  /** Records one message about a resource, with the file position of its field. */
  report(name: MessageName, args: Readonly<Record<string, string | number>>, at: Target): void;
  /** Records one message about the mesh as a whole, when no resource says it (a default nobody wrote down). */
  reportMesh(name: MessageName, args: Readonly<Record<string, string | number>>): void;
}

export interface Analyzer {
  /** Stable, dotted, lowercase: `virtualservice.destination-hosts`. Used by `--analyzer` and in SARIF. */
  readonly name: string;
  /** One sentence: what it checks. */
  readonly description: string;
  /** The kinds it reads (registry kinds included: Service, Pod, …). */
  readonly reads: readonly string[];
  /** The catalogue messages it may report. */
  readonly messages: readonly MessageName[];
  /** Istio analyzers (Metadata.Name) this one stands for, for the peer suite. */
  readonly istio?: readonly string[];
  run(ctx: AnalysisContext): void;
}

/** The context analyzers run in; `diagnostics` collects what they report. */
export class Context implements AnalysisContext {
  readonly diagnostics: Diagnostic[] = [];
  /** The analyzer running now, for the message's provenance. */
  current = '';

  constructor(
    readonly config: ConfigSet,
    readonly registry: Registry,
    readonly mesh: MeshSettings,
  ) {}

  ofKind<K extends keyof KindBodies>(kind: K): readonly ResourceOf<K>[] {
    return this.config.ofKind(kind);
  }

  report(name: MessageName, args: Readonly<Record<string, string | number>>, at: Target): void {
    const field = at.field && at.field.length ? at.field : undefined;
    const position = field ? at.resource.locator.locate(field) : at.resource.position;
    const d = diagnostic(name, args, {
      resource: at.resource.ref,
      position,
      ...(field ? { field: formatPath(field) } : {}),
    });
    this.diagnostics.push(d);
  }

  reportMesh(name: MessageName, args: Readonly<Record<string, string | number>>): void {
    this.diagnostics.push(diagnostic(name, args));
  }
}
