/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const GatewayBody = z.object({ spec: z.any().optional() }).passthrough();
export type GatewaySpec = DeepReadonly<any>;

export const Gateway = defineKind({
  kind: 'Gateway', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], namespaced: true,
  body: GatewayBody,
  docs: '',
});
