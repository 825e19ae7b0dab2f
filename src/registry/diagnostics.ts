/**
 * The registry's messages. They use the `Diagnostic` shape of the api
 * catalogue; the codes `TRL11nn` are reserved for the registry and belong in
 * `src/api/messages.ts` (kept here until the catalogue takes them).
 */
import type { Diagnostic, Position } from '../api/diagnostic.js';
import { render, type Level } from '../api/messages.js';

const table = {
  DuplicateServiceHost: {
    code: 'TRL1101', level: 'warning',
    template: 'service host {host} is defined by {first} and again by {resource}; the registry keeps the first and ignores this one',
    docs: 'Two resources (or two sources) declare the same hostname. Nothing is merged: the first wins. Rename one, or merge them into one resource.',
  },
  UnresolvedTargetPort: {
    code: 'TRL1102', level: 'warning',
    template: 'port {port} of {service} targets the named port "{targetPort}", which workload {workload} does not declare; the workload gets no endpoint on this port',
    docs: 'A Service targetPort names a container port the selected workload does not have. Name the container port, or use a number.',
  },
  DuplicateWorkload: {
    code: 'TRL1103', level: 'warning',
    template: 'workload {workload} is declared by {first} and again by {resource}; the registry keeps the first',
    docs: 'Two resources declare a workload of the same name in the same namespace (a Pod and a Deployment, an App workload and a WorkloadEntry). Rename one.',
  },
} as const satisfies Record<string, { code: string; level: Level; template: string; docs: string }>;

export type RegistryMessage = keyof typeof table;

/** The registry's message types, for the catalogue and docs. */
export const registryMessages: typeof table = table;

/** A registry diagnostic about `resource` (a `source` string such as `Service default/reviews`). */
export function registryDiagnostic(
  name: RegistryMessage,
  args: Readonly<Record<string, string | number>>,
  resource: string,
  position?: Position,
): Diagnostic {
  const m = table[name];
  return Object.freeze({ code: m.code, level: m.level, message: render(m.template, args), resource, ...(position ? { position } : {}) });
}
