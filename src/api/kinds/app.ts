/** PLACEHOLDER: replaced by the full schema. */
import { z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

export const AppBody = z.object({ spec: z.any().optional() }).passthrough();
export type AppSpec = DeepReadonly<any>;

export const App = defineKind({
  kind: 'App', group: 'trellis.dev', versions: ['v1alpha1'], namespaced: false,
  body: AppBody,
  docs: '',
});
