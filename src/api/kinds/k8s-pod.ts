/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const PodBody = z.object({ spec: z.any().optional() }).passthrough();
export type PodSpec = DeepReadonly<any>;

export const Pod = defineKind({
  kind: 'Pod', group: '', versions: ['v1'], namespaced: true,
  body: PodBody,
  docs: '',
});
