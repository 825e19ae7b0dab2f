/**
 * `networking.istio.io` WorkloadEntry: one workload outside Kubernetes (a VM,
 * a process on a host) with its address, labels, ports and identity. The same
 * shape is a ServiceEntry's inline endpoint, so the address and port rules
 * live here once.
 */
import { labels, port, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { fqdnError, isDnsLabel, isDnsSubdomain, isIpAddress, labelIssues } from './names.js';

const UNIX = 'unix://';

/**
 * The fields of a WorkloadEntry (and of a ServiceEntry endpoint), with the
 * rules that need no context: an address (or a network) is required; a
 * `unix://` address names an absolute socket path or an abstract socket
 * (`unix://@name`), not a directory, and takes no ports; any other address is
 * an IP or a DNS name; port names are DNS labels and port numbers 1–65535.
 */
export const workloadEntrySpec = z.strictObject({
  /** IP, DNS name, or `unix:///path` / `unix://@abstract`. */
  address: z.string().max(256, { message: 'address must be at most 256 characters' }).optional(),
  /** Service port name → this workload's port number. */
  ports: z.record(z.string(), port()).optional(),
  labels: labels.optional(),
  network: z.string().optional(),
  /** `region/zone/subzone`. */
  locality: z.string().optional(),
  /** Load-balancing weight; 0 or unset means 1. */
  weight: z.number().int({ message: 'weight must be a whole number' }).min(0, { message: 'weight must not be negative' }).max(4294967295).optional(),
  serviceAccount: z.string().optional(),
}).superRefine((we, ctx) => {
  const addr = we.address ?? '';
  if (addr === '' && !we.network) {
    ctx.addIssue({ code: 'custom', path: ['address'], message: 'Address is required: set an IP address, a DNS name or a unix:// socket path (or a network)' });
  }
  if (addr.startsWith(UNIX)) {
    const path = addr.slice(UNIX.length);
    if (!path.startsWith('/') && !path.startsWith('@')) {
      ctx.addIssue({ code: 'custom', path: ['address'], message: `UDS must be an absolute path or abstract socket: write unix:///path/to/socket or unix://@name, not "${addr}"` });
    } else if (path.endsWith('/')) {
      ctx.addIssue({ code: 'custom', path: ['address'], message: `UDS may not be a dir: "${addr}" ends with "/"; name the socket file` });
    }
    if (we.ports !== undefined) ctx.addIssue({ code: 'custom', path: ['ports'], message: `UDS may not include ports: the unix socket "${addr}" has no port numbers; remove ports` });
  } else if (addr !== '' && !isIpAddress(addr) && fqdnError(addr) !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['address'], message: `address "${addr}" is not an IP address, a DNS name or a unix:// socket path` });
  }
  for (const name of Object.keys(we.ports ?? {})) {
    if (!isDnsLabel(name)) {
      ctx.addIssue({ code: 'custom', path: ['ports', name], message: `Invalid value: port name "${name}" must be a DNS label (letters, digits and "-", at most 63 characters)` });
    }
  }
  labelIssues(we.labels, ctx, ['labels']);
  if (we.locality !== undefined && (we.locality.split('/').length > 3 || we.locality.split('/').some((p) => p === ''))) {
    ctx.addIssue({ code: 'custom', path: ['locality'], message: `locality "${we.locality}" must be region, region/zone or region/zone/subzone` });
  }
  if (we.serviceAccount !== undefined && !isDnsSubdomain(we.serviceAccount)) {
    ctx.addIssue({ code: 'custom', path: ['serviceAccount'], message: `serviceAccount "${we.serviceAccount}" must be a lowercase DNS-1123 name, as Kubernetes service accounts are` });
  }
});

export type WorkloadEntrySpec = DeepReadonly<z.infer<typeof workloadEntrySpec>>;

export const WorkloadEntry = defineKind({
  kind: 'WorkloadEntry',
  group: 'networking.istio.io',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  body: z.strictObject({ spec: workloadEntrySpec, status: z.unknown().optional() }),
  notEnforced: ['spec.network'],
  docs: 'A workload outside Kubernetes (VM, host process): address, labels, ports, locality, weight and service account; selected by Services and ServiceEntries by its labels.',
});
