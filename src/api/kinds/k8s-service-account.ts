/** Kubernetes core/v1 ServiceAccount (registry data): the account a workload's identity names. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const serviceAccountBody = z.object({ automountServiceAccountToken: z.boolean().optional() });
export type ServiceAccountSpec = DeepReadonly<z.infer<typeof serviceAccountBody>>;

export const ServiceAccount = defineKind({
  kind: 'ServiceAccount',
  group: '',
  versions: ['v1'],
  namespaced: true,
  registryData: true,
  body: serviceAccountBody,
  docs: 'Kubernetes ServiceAccount (registry data): workloads running as it get the identity spiffe://<trust-domain>/ns/<namespace>/sa/<name>.',
});
