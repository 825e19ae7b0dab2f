/** The registry's messages (codes TRL11nn), from the one catalogue in src/api/messages.ts. */
import { diagnostic, type Diagnostic, type Position } from '../api/diagnostic.js';

export type RegistryMessage = 'DuplicateServiceHost' | 'UnresolvedTargetPort' | 'DuplicateWorkload';

/** A registry diagnostic about `resource` (a `source` string such as `Service default/reviews`). */
export function registryDiagnostic(
  name: RegistryMessage,
  args: Readonly<Record<string, string | number>>,
  resource: string,
  position?: Position,
): Diagnostic {
  return diagnostic(name, { ...args, resource }, { resource, ...(position ? { position } : {}) });
}
