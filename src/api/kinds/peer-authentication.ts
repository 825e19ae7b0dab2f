/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const PeerAuthenticationBody = z.object({ spec: z.any().optional() }).passthrough();
export type PeerAuthenticationSpec = DeepReadonly<any>;

export const PeerAuthentication = defineKind({
  kind: 'PeerAuthentication', group: 'security.istio.io', versions: ['v1', 'v1beta1'], namespaced: true,
  body: PeerAuthenticationBody,
  docs: '',
});
