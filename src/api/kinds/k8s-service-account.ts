/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const ServiceAccountBody = z.object({ spec: z.any().optional() }).passthrough();
export type ServiceAccountSpec = DeepReadonly<any>;

export const ServiceAccount = defineKind({
  kind: 'ServiceAccount', group: '', versions: ['v1'], namespaced: true,
  body: ServiceAccountBody,
  docs: '',
});
