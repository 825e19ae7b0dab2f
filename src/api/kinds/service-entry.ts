/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const ServiceEntryBody = z.object({ spec: z.any().optional() }).passthrough();
export type ServiceEntrySpec = DeepReadonly<any>;

export const ServiceEntry = defineKind({
  kind: 'ServiceEntry', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], namespaced: true,
  body: ServiceEntryBody,
  docs: '',
});
