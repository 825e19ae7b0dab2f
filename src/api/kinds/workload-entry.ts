/**
 * `networking.istio.io` WorkloadEntry: one workload outside Kubernetes (a VM,
 * a process on a host) with its address, labels, ports and identity. The same
 * shape is a ServiceEntry's inline endpoint, so the address and port rules
 * live here once.
 */
import { isIP } from 'node:net';
import { labels, port, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';

/** A DNS-1123 label as Istio checks port names: letters (either case), digits, `-`, at most 63. */
export const ISTIO_DNS_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
/** A lowercase DNS-1123 label (namespaces, Kubernetes names). */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A lowercase DNS-1123 subdomain (service accounts, most Kubernetes names). */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Whether `s` is a DNS name (labels of letters, digits and `-`; a trailing dot allowed). */
export function isFqdn(s: string): boolean {
  const h = s.endsWith('.') ? s.slice(0, -1) : s;
  return h.length > 0 && h.length <= 255 && h.split('.').every((l) => l.length <= 63 && ISTIO_DNS_LABEL.test(l));
}

/** Whether `s` is an IPv4 or IPv6 address. */
export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** Checks a map of Kubernetes labels: keys `[prefix/]name`, values at most 63 characters. */
export function checkLabels(map: Readonly<Record<string, string>> | undefined, ctx: z.RefinementCtx, path: PropertyKey[]): void {
  for (const [k, v] of Object.entries(map ?? {})) {
    const slash = k.lastIndexOf('/');
    const prefix = slash < 0 ? undefined : k.slice(0, slash);
    const name = slash < 0 ? k : k.slice(slash + 1);
    const keyOk = name.length <= 63 && LABEL_NAME.test(name)
      && (prefix === undefined || (prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix)));
    if (!keyOk) ctx.addIssue({ code: 'custom', path: [...path, k], message: `label key "${k}" is invalid: use [prefix/]name, where name is at most 63 letters, digits, "-", "_" or "." and prefix a DNS subdomain` });
    if (v.length > 63 || (v !== '' && !LABEL_NAME.test(v))) {
      ctx.addIssue({ code: 'custom', path: [...path, k], message: `label value "${v}" is invalid: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit` });
    }
  }
}

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
  } else if (addr !== '' && !isIpAddress(addr) && !isFqdn(addr)) {
    ctx.addIssue({ code: 'custom', path: ['address'], message: `address "${addr}" is not an IP address, a DNS name or a unix:// socket path` });
  }
  for (const name of Object.keys(we.ports ?? {})) {
    if (name.length > 63 || !ISTIO_DNS_LABEL.test(name)) {
      ctx.addIssue({ code: 'custom', path: ['ports', name], message: `Invalid value: port name "${name}" must be a DNS label (letters, digits and "-", at most 63 characters)` });
    }
  }
  checkLabels(we.labels, ctx, ['labels']);
  if (we.locality !== undefined && (we.locality.split('/').length > 3 || we.locality.split('/').some((p) => p === ''))) {
    ctx.addIssue({ code: 'custom', path: ['locality'], message: `locality "${we.locality}" must be region, region/zone or region/zone/subzone` });
  }
  if (we.serviceAccount !== undefined && (we.serviceAccount.length > 253 || !DNS1123_SUBDOMAIN.test(we.serviceAccount))) {
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
