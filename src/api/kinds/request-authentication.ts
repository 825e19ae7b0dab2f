/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const RequestAuthenticationBody = z.object({ spec: z.any().optional() }).passthrough();
export type RequestAuthenticationSpec = DeepReadonly<any>;

export const RequestAuthentication = defineKind({
  kind: 'RequestAuthentication', group: 'security.istio.io', versions: ['v1', 'v1beta1'], namespaced: true,
  body: RequestAuthenticationBody,
  docs: '',
});
