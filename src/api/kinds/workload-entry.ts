/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const WorkloadEntryBody = z.object({ spec: z.any().optional() }).passthrough();
export type WorkloadEntrySpec = DeepReadonly<any>;

export const WorkloadEntry = defineKind({
  kind: 'WorkloadEntry', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], namespaced: true,
  body: WorkloadEntryBody,
  docs: '',
});
