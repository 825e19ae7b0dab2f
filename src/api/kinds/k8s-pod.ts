/**
 * Kubernetes core/v1 Pod, read as registry data: labels (from metadata),
 * service account, node, container ports and pod IP. Everything else in a
 * Pod is passed over; the fields Trellis reads are checked. A Pod may omit
 * spec (Istio's analyzer test data declares pods by their labels alone).
 */
import { port, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { ianaSvcName, transportProtocol } from './k8s-service.js';
import { isDnsSubdomain } from './names.js';

const serviceAccountName = z.string().refine(isDnsSubdomain, { message: 'a service account name must be a lowercase DNS-1123 name' });

const containerPort = z.object({
  /** Referred to by a Service's named targetPort. */
  name: ianaSvcName('a container port name').optional(),
  containerPort: port(),
  protocol: transportProtocol.optional(),
});

const container = z.object({
  name: z.string().optional(),
  ports: z.array(containerPort).optional(),
});

/** The part of a PodSpec Trellis reads; shared with the Deployment's pod template. */
export const podSpec = z.object({
  serviceAccountName: serviceAccountName.optional(),
  /** Deprecated alias of serviceAccountName. */
  serviceAccount: serviceAccountName.optional(),
  nodeName: z.string().optional(),
  containers: z.array(container).optional(),
}).superRefine((s, ctx) => {
  const seen = new Map<string, string>();
  s.containers?.forEach((c, i) => c.ports?.forEach((p, j) => {
    if (!p.name) return;
    const at = `containers[${i}].ports[${j}]`;
    if (seen.has(p.name)) ctx.addIssue({ code: 'custom', path: ['containers', i, 'ports', j, 'name'], message: `Duplicate value: container port name "${p.name}" is already ${seen.get(p.name)}` });
    else seen.set(p.name, at);
  }));
});

export const podStatus = z.object({
  podIP: z.string().optional(),
  phase: z.string().optional(),
  conditions: z.array(z.object({ type: z.string(), status: z.string() })).optional(),
});

export type PodSpec = DeepReadonly<z.infer<typeof podSpec>>;
export type PodStatus = DeepReadonly<z.infer<typeof podStatus>>;

export const Pod = defineKind({
  kind: 'Pod',
  group: '',
  versions: ['v1'],
  namespaced: true,
  registryData: true,
  body: z.object({ spec: podSpec.optional(), status: podStatus.optional() }),
  docs: 'Kubernetes Pod (registry data): one workload instance with its labels, service account, container ports, pod IP and locality labels.',
});
