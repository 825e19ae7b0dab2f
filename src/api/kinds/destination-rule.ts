/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const DestinationRuleBody = z.object({ spec: z.any().optional() }).passthrough();
export type DestinationRuleSpec = DeepReadonly<any>;

export const DestinationRule = defineKind({
  kind: 'DestinationRule', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], namespaced: true,
  body: DestinationRuleBody,
  docs: '',
});
