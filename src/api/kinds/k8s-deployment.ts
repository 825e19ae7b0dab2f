/**
 * Kubernetes apps/v1 Deployment, read as registry data: replicas, selector
 * and the pod template's labels, annotations, service account and container
 * ports. Each Deployment is one workload of `replicas` instances.
 */
import { labels, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { podSpec } from './k8s-pod.js';

export const deploymentSpec = z.object({
  /** Number of instances; 1 by default. */
  replicas: z.number().int({ message: 'replicas must be a whole number' }).min(0, { message: 'replicas must not be negative' }).optional(),
  selector: z.object({ matchLabels: labels.optional(), matchExpressions: z.array(z.unknown()).optional() }),
  template: z.object({
    metadata: z.object({ labels: labels.nullish(), annotations: labels.nullish() }).optional(),
    spec: podSpec,
  }),
}).superRefine((d, ctx) => {
  const tl = d.template.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(d.selector.matchLabels ?? {})) {
    if (tl[k] !== v) ctx.addIssue({ code: 'custom', path: ['selector', 'matchLabels', k], message: `Invalid value: selector ${k}=${v} does not match the template's labels; the Deployment would own no pods` });
  }
});

export type DeploymentSpec = DeepReadonly<z.infer<typeof deploymentSpec>>;

export const Deployment = defineKind({
  kind: 'Deployment',
  group: 'apps',
  versions: ['v1'],
  namespaced: true,
  registryData: true,
  body: z.object({ spec: deploymentSpec, status: z.unknown().optional() }),
  docs: 'Kubernetes Deployment (registry data): a workload of `replicas` pods with the template\'s labels, service account and container ports.',
});
