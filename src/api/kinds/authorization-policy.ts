/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const AuthorizationPolicyBody = z.object({ spec: z.any().optional() }).passthrough();
export type AuthorizationPolicySpec = DeepReadonly<any>;

export const AuthorizationPolicy = defineKind({
  kind: 'AuthorizationPolicy', group: 'security.istio.io', versions: ['v1', 'v1beta1'], namespaced: true,
  body: AuthorizationPolicyBody,
  docs: '',
});
