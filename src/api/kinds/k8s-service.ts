/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const ServiceBody = z.object({ spec: z.any().optional() }).passthrough();
export type ServiceSpec = DeepReadonly<any>;

export const Service = defineKind({
  kind: 'Service', group: '', versions: ['v1'], namespaced: true,
  body: ServiceBody,
  docs: '',
});
