/**
 * `networking.istio.io` ServiceEntry: adds hosts to the registry — external
 * APIs, or services whose workloads are WorkloadEntries and Pods picked by a
 * selector — with Istio's validation rules (its CRD rules and its webhook).
 */
import { noDuplicates, port, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { exportToIssues, isCidr, isDnsLabel, isIpAddress, labelIssues, selectorIssues, wildcardDomainError } from './names.js';
import { workloadEntrySpec } from './workload-entry.js';

/** Port protocols Istio accepts (case-insensitive); empty means "sniff". */
const PROTOCOLS = ['http', 'http2', 'https', 'grpc', 'grpc-web', 'tls', 'tcp', 'udp', 'mongo', 'mysql', 'redis', 'http_proxy'];
const HTTP_OR_TLS = new Set(['http', 'http2', 'grpc', 'grpc-web', 'http_proxy', 'https', 'tls']);

const sePort = z.strictObject({
  number: port(),
  /** Application protocol: HTTP, HTTPS, HTTP2, GRPC, GRPC-Web, TLS, TCP, MONGO, MYSQL, REDIS. */
  protocol: z.string().optional(),
  name: z.string({ message: 'a port needs a name' }),
  /** Port on the endpoints; the service port when unset. */
  targetPort: port().optional(),
}).superRefine((p, ctx) => {
  if (!isDnsLabel(p.name)) {
    ctx.addIssue({ code: 'custom', path: ['name'], message: `invalid port name "${p.name}": use a DNS label (letters, digits and "-")` });
  }
  if (p.protocol !== undefined && p.protocol !== '' && !PROTOCOLS.includes(p.protocol.toLowerCase())) {
    ctx.addIssue({ code: 'custom', path: ['protocol'], message: `unsupported protocol "${p.protocol}": use one of HTTP, HTTPS, HTTP2, GRPC, GRPC-Web, TLS, TCP, UDP, Mongo, MySQL, Redis` });
  }
});

/** A ServiceEntry's selector: Istio's networking `WorkloadSelector` (`labels`, not `matchLabels`). */
const seSelector = z.strictObject({ labels: z.record(z.string(), z.string()).optional() }).superRefine((s, ctx) => {
  selectorIssues(s.labels, ctx, ['labels']);
});

/** A host of a ServiceEntry: Istio's wildcard domain rule, and not `*` alone. */
function hostError(host: string): string | undefined {
  if (host === '*') return 'hostname cannot be wildcard: a ServiceEntry must name its hosts ("*" would capture every host); use *.example.com for a domain';
  return wildcardDomainError(host);
}

/**
 * YAML 1.2 reads an unquoted IPv6 address ending in `::` inside a flow list
 * (`[1.2.3.4, 2001:db8::]`) as a one-pair mapping `{"2001:db8:": null}`;
 * Go's YAML reader, and so Istio, reads the address. Read it as Istio does.
 */
function flowIpv6(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const entries = Object.entries(v);
  if (entries.length !== 1 || entries[0]![1] !== null) return v;
  const addr = `${entries[0]![0]}:`;
  return isIpAddress(addr) ? addr : v;
}

export const serviceEntrySpec = z.strictObject({
  hosts: z.array(z.string()).min(1, { message: 'a ServiceEntry needs at least one host' }),
  /** Virtual IPs or CIDR blocks of the service. */
  addresses: z.array(z.preprocess(flowIpv6, z.string())).optional(),
  ports: z.array(sePort).optional(),
  location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).optional(),
  /** How endpoints are found; `NONE` (pass through to the address the caller used) by default. */
  resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']).optional(),
  endpoints: z.array(workloadEntrySpec).optional(),
  workloadSelector: seSelector.optional(),
  exportTo: z.array(z.string()).optional(),
  subjectAltNames: z.array(z.string()).optional(),
}).superRefine((se, ctx) => {
  const resolution = se.resolution ?? 'NONE';
  se.hosts.forEach((h, i) => {
    const err = hostError(h);
    if (err) ctx.addIssue({ code: 'custom', path: ['hosts', i], message: err });
  });
  let cidr = false;
  (se.addresses ?? []).forEach((a, i) => {
    if (a.includes('/')) {
      cidr = true;
      if (!isCidr(a)) ctx.addIssue({ code: 'custom', path: ['addresses', i], message: `address "${a}" is not a valid CIDR block` });
    } else if (!isIpAddress(a)) {
      ctx.addIssue({ code: 'custom', path: ['addresses', i], message: `address "${a}" is not an IP address or CIDR block` });
    }
  });
  if (cidr && resolution !== 'NONE' && resolution !== 'STATIC') {
    ctx.addIssue({ code: 'custom', path: ['addresses'], message: `CIDR addresses are allowed only for NONE/STATIC resolution types, not ${resolution}` });
  }
  noDuplicates(se.ports, (p) => p.name, ctx, (i) => ['ports', i, 'name'], 'port name');
  noDuplicates(se.ports, (p) => p.number, ctx, (i) => ['ports', i, 'number'], (n, first) => `port number cannot be duplicated: ${n} is already ports[${first}]`);
  if (se.workloadSelector !== undefined && se.endpoints !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['workloadSelector'], message: 'only one of workloadSelector or endpoints can be set: select workloads by label, or list the endpoints' });
  }
  const endpoints = se.endpoints ?? [];
  if (resolution === 'NONE' && endpoints.length > 0) {
    ctx.addIssue({ code: 'custom', path: ['endpoints'], message: 'NONE mode cannot set endpoints: traffic goes to the address the caller used; set resolution STATIC or DNS to use these endpoints' });
  }
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
    ctx.addIssue({ code: 'custom', path: ['endpoints', 1], message: 'DNS_ROUND_ROBIN mode cannot have multiple endpoints: list one, or use resolution DNS' });
  }
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0) {
    se.hosts.forEach((h, i) => {
      if (h.includes('*')) ctx.addIssue({ code: 'custom', path: ['hosts', i], message: `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution}: "${h}" cannot be resolved` });
    });
  }
  const portNames = new Set((se.ports ?? []).map((p) => p.name));
  endpoints.forEach((ep, i) => {
    const addr = ep.address ?? '';
    const unix = addr.startsWith('unix://');
    if (resolution === 'STATIC' && addr !== '' && !unix && !isIpAddress(addr)) {
      ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'address'], message: `endpoint address "${addr}" is not an IP address; resolution STATIC needs IPs (use DNS for host names)` });
    }
    if (resolution !== 'STATIC' && unix) {
      ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'address'], message: `unix:// endpoints need resolution STATIC, not ${resolution}` });
    }
    if (unix && (se.ports?.length ?? 0) !== 1) {
      ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'address'], message: 'exactly 1 service port required for unix endpoints' });
    }
    for (const name of Object.keys(ep.ports ?? {})) {
      if (!portNames.has(name)) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'ports', name], message: `endpoint port "${name}" is not defined by the service entry; name one of its ports` });
    }
  });
  if (resolution !== 'NONE' && se.hosts.length > 1) {
    const i = (se.ports ?? []).findIndex((p) => !HTTP_OR_TLS.has((p.protocol ?? '').toLowerCase()));
    if (i >= 0) ctx.addIssue({ code: 'custom', path: ['ports', i, 'protocol'], message: 'multiple hosts provided with non-HTTP, non-TLS ports: plain TCP cannot tell the hosts apart; use one host per ServiceEntry or resolution NONE' });
  }
  exportToIssues(se.exportTo, ctx, ['exportTo'], { allowNone: true });
  if (se.workloadSelector) labelIssues(se.workloadSelector.labels, ctx, ['workloadSelector', 'labels']);
});

export type ServiceEntrySpec = DeepReadonly<z.infer<typeof serviceEntrySpec>>;
export type ServiceEntryPort = NonNullable<ServiceEntrySpec['ports']>[number];

export const ServiceEntry = defineKind({
  kind: 'ServiceEntry',
  group: 'networking.istio.io',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  body: z.strictObject({ spec: serviceEntrySpec, status: z.unknown().optional() }),
  notEnforced: ['spec.subjectAltNames', 'spec.endpoints[*].network'],
  docs: 'Adds hosts to the registry: external services, or services whose workloads are WorkloadEntries and Pods picked by a selector, with ports, resolution, addresses and endpoints.',
});
