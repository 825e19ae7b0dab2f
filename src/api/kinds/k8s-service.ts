/**
 * Kubernetes core/v1 Service, read as registry data: its selector, ports and
 * type. Fields Trellis does not read (sessionAffinity, ipFamilies, …) are
 * passed over; the fields it reads are checked as the API server would.
 */
import { labels, noDuplicates, port, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { isLowercaseDnsLabel } from './names.js';

/** Kubernetes IANA_SVC_NAME: a named port, at most 15 lowercase letters, digits and single `-`, with a letter. */
export const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/;

/** A Kubernetes named port (IANA_SVC_NAME); `what` names it in the message. */
export function ianaSvcName(what: string) {
  return z.string().refine((s) => s.length <= 15 && IANA_SVC_NAME.test(s), {
    message: `${what} must be at most 15 lowercase letters, digits and "-", with at least one letter`,
  });
}

/** A Kubernetes transport protocol. */
export const transportProtocol = z.enum(['TCP', 'UDP', 'SCTP']);

const servicePort = z.object({
  /** Required when the Service has several ports; its prefix gives the protocol (`http-api`). */
  name: z.string().refine((s) => s === '' || isLowercaseDnsLabel(s), { message: 'a port name must be a lowercase DNS-1123 label' }).optional(),
  port: port(),
  /** A number, or the name of a container port; the service port by default. */
  targetPort: z.union([port(), ianaSvcName('a named targetPort')]).optional(),
  /**
   * Kubernetes allows TCP, UDP and SCTP; Trellis reads only whether it is UDP.
   * Other values are accepted as Istio's own test data writes them (`HTTP`).
   */
  protocol: z.string().optional(),
  appProtocol: z.string().optional(),
  nodePort: port().optional(),
});

export const serviceSpec = z.object({
  selector: labels.optional(),
  ports: z.array(servicePort).optional(),
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).optional(),
  /** `None` for a headless service. */
  clusterIP: z.string().optional(),
  clusterIPs: z.array(z.string()).optional(),
  externalName: z.string().optional(),
}).superRefine((s, ctx) => {
  // Kubernetes also requires names when there are several ports; Istio's
  // analyzers report unnamed ports instead (TRL0118), so they load here.
  noDuplicates(s.ports, (p) => p.name || undefined, ctx, (i) => ['ports', i, 'name'], (name, first) => `Duplicate value: port name "${name}" is already ports[${first}]`);
  noDuplicates(s.ports, (p) => `${p.port}/${(p.protocol ?? 'TCP').toUpperCase()}`, ctx, (i) => ['ports', i, 'port'], (key, first) => `Duplicate value: port ${key} is already ports[${first}]`);
  if (s.type === 'ExternalName' && !s.externalName) {
    ctx.addIssue({ code: 'custom', path: ['externalName'], message: 'Required value: a Service of type ExternalName needs externalName' });
  }
});

export type ServiceSpec = DeepReadonly<z.infer<typeof serviceSpec>>;
export type ServicePortSpec = NonNullable<ServiceSpec['ports']>[number];

export const Service = defineKind({
  kind: 'Service',
  group: '',
  versions: ['v1'],
  namespaced: true,
  registryData: true,
  body: z.object({ spec: serviceSpec.optional(), status: z.unknown().optional() }),
  docs: 'Kubernetes Service (registry data): a hostname name.namespace.svc.cluster.local, its ports and the selector that picks its workloads.',
});
