import type { Position } from './diagnostic.js';
import type { SourceLocator } from './source.js';

/** The metadata Trellis reads. Namespace is filled (`default`) for namespaced kinds. */
export interface Metadata {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * One validated, frozen configuration document. `body` is the document
 * without apiVersion, kind and metadata, typed per kind (see `KindBodies`).
 */
export interface Resource<Body = unknown> {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: Metadata;
  readonly body: Body;
  /** `Kind/namespace/name`: unique within a configuration set. */
  readonly key: string;
  /** `Kind namespace/name`, as messages name a resource. */
  readonly ref: string;
  /** Content hash of apiVersion, kind, metadata and body (hex, 16 chars). */
  readonly hash: string;
  readonly position: Position;
  /** Finds the position of a field path inside this resource. */
  readonly locator: SourceLocator;
}

export function resourceKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}
