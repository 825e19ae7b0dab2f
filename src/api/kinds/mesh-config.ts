/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const MeshConfigBody = z.object({ spec: z.any().optional() }).passthrough();
export type MeshConfigSpec = DeepReadonly<any>;

export const MeshConfig = defineKind({
  kind: 'MeshConfig', group: 'trellis.dev', versions: ['v1alpha1'], namespaced: false,
  body: MeshConfigBody,
  docs: '',
});
