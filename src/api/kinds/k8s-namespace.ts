/** Kubernetes core/v1 Namespace (registry data, cluster-scoped): its name and labels. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const namespaceBody = z.object({ spec: z.unknown().optional(), status: z.unknown().optional() });
export type NamespaceSpec = DeepReadonly<z.infer<typeof namespaceBody>>;

export const Namespace = defineKind({
  kind: 'Namespace',
  group: '',
  versions: ['v1'],
  namespaced: false,
  registryData: true,
  body: namespaceBody,
  docs: 'Kubernetes Namespace (registry data): declares a namespace and its labels; a two-label host such as reviews.prod resolves against the declared namespaces.',
});
