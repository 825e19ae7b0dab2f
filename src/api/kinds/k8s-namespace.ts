/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const NamespaceBody = z.object({ spec: z.any().optional() }).passthrough();
export type NamespaceSpec = DeepReadonly<any>;

export const Namespace = defineKind({
  kind: 'Namespace', group: '', versions: ['v1'], namespaced: false,
  body: NamespaceBody,
  docs: '',
});
