import type { z } from 'zod';

/**
 * A value Trellis accepts but does not act on yet (warning TRL1011).
 * `path` leads from the body to the value (`['spec', 'action']`); `message`
 * says what Trellis does instead, and fills the `{detail}` of the message.
 */
export interface ValueWarning {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * What Trellis knows about one kind: where it lives (group, versions), the
 * schema of everything in a document but `apiVersion`, `kind` and `metadata`,
 * and which of its fields, or of their values, Trellis accepts but does not
 * act on yet.
 */
export interface KindDef<Body = unknown> {
  readonly kind: string;
  /** API group; `''` for the Kubernetes core group (`apiVersion: v1`). */
  readonly group: string;
  readonly versions: readonly string[];
  /** Schema of the document without apiVersion, kind and metadata. */
  readonly body: z.ZodType<Body>;
  /** Whether the kind lives in a namespace (MeshConfig and App do not). */
  readonly namespaced: boolean;
  /**
   * Field paths accepted but not yet enforced (warning TRL1005). `[*]` stands
   * for any list index or map key: `spec.http[*].mirror`.
   */
  readonly notEnforced?: readonly string[];
  /**
   * Values accepted but not yet enforced, where the field itself is (warning
   * TRL1011 for each result, at the value's position): a Gateway TLS mode, an
   * AuthorizationPolicy action. Given the parsed body; called only when the
   * document has no error. Pure: it reads the body and nothing else. None by
   * default.
   */
  warnings?(body: Body): readonly ValueWarning[];
  /** Trellis-only extension fields (info TRL1007). Same path syntax. */
  readonly extensions?: readonly string[];
  /**
   * For Kubernetes kinds read as registry data: fields not listed in the
   * schema are passed over (documented), because Trellis reads only the
   * registry-relevant part of a Pod or Deployment.
   */
  readonly registryData?: boolean;
  /** A sentence for docs and `trellis validate --list-kinds`. */
  readonly docs: string;
}

/** A kind Trellis rejects by name, with what to use instead. */
export interface UnsupportedKindDef {
  readonly kind: string;
  readonly group: string;
  readonly instead: string;
}

/** Defines a kind; a helper only for type inference. */
export function defineKind<Body>(def: KindDef<Body>): KindDef<Body> {
  return Object.freeze(def);
}
