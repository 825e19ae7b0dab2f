/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const SidecarBody = z.object({ spec: z.any().optional() }).passthrough();
export type SidecarSpec = DeepReadonly<any>;

export const Sidecar = defineKind({
  kind: 'Sidecar', group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'], namespaced: true,
  body: SidecarBody,
  docs: '',
});
