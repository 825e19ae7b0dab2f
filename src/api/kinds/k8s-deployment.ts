/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const DeploymentBody = z.object({ spec: z.any().optional() }).passthrough();
export type DeploymentSpec = DeepReadonly<any>;

export const Deployment = defineKind({
  kind: 'Deployment', group: 'apps', versions: ['v1'], namespaced: true,
  body: DeploymentBody,
  docs: '',
});
