/**
 * `networking.istio.io` Sidecar: narrows what a workload's proxy listens on
 * (ingress), which services it can reach (egress), and what happens to
 * traffic for unknown destinations (outboundTrafficPolicy).
 */
import { inPortRange, labels, noDuplicates, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { connectionPoolSettings } from './destination-rule.js';
import { protocolKind, protocolName, serverTlsSettings } from './gateway.js';
import { isDnsLabel, isIpAddress, namespacedHostError, selectorIssues, unixAddressError } from './names.js';
import { destination } from './virtual-service.js';

const sidecarPort = z.strictObject({
  number: z.number().int({ message: 'port must be a whole number' }).optional(),
  protocol: protocolName,
  name: z.string().optional(),
  targetPort: z.number().int().optional(),
});
type SidecarPort = z.infer<typeof sidecarPort>;

const captureMode = z.enum(['DEFAULT', 'IPTABLES', 'NONE']);

/** Issues shared by ingress and egress ports: name, targetPort, number and bind. */
function portIssues(p: SidecarPort, bind: string | undefined, ctx: z.RefinementCtx, allowUnix: boolean): void {
  if (p.name !== undefined && p.name !== '' && !isDnsLabel(p.name)) ctx.addIssue({ code: 'custom', path: ['port', 'name'], message: `port name "${p.name}" must be a DNS label` });
  if ((p.targetPort ?? 0) > 0) ctx.addIssue({ code: 'custom', path: ['port', 'targetPort'], message: 'targetPort has no effect on a Sidecar; remove it' });
  const n = p.number ?? 0;
  if (allowUnix && n === 0) {
    if (!bind?.startsWith('unix://')) ctx.addIssue({ code: 'custom', path: ['bind'], message: 'a listener with port 0 needs a unix:// bind address' });
    else {
      const err = unixAddressError(bind);
      if (err) ctx.addIssue({ code: 'custom', path: ['bind'], message: err });
    }
    return;
  }
  if (!inPortRange(n)) ctx.addIssue({ code: 'custom', path: ['port', 'number'], message: `port ${n} must be between 1 and 65535` });
  if (bind !== undefined && bind !== '' && !isIpAddress(bind)) ctx.addIssue({ code: 'custom', path: ['bind'], message: `bind "${bind}" must be an IP address` });
}

/** `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>`, `:<port>` or `unix://<path>`. */
function defaultEndpointError(e: string): string | undefined {
  if (e.startsWith('unix://')) return unixAddressError(e);
  const m = /^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]|):(\d+)$/.exec(e);
  if (!m) return `defaultEndpoint "${e}" must be 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port> or unix://<path>`;
  const port = Number(m[2]);
  return inPortRange(port) ? undefined : `defaultEndpoint port ${port} must be between 1 and 65535`;
}

const ingressListener = z.strictObject({
  port: sidecarPort,
  bind: z.string().optional(),
  captureMode: captureMode.optional(),
  defaultEndpoint: z.string().optional(),
  tls: serverTlsSettings.optional(),
  connectionPool: connectionPoolSettings.optional(),
}).superRefine((l, ctx) => {
  portIssues(l.port, l.bind, ctx, false);
  const err = l.defaultEndpoint ? defaultEndpointError(l.defaultEndpoint) : undefined;
  if (err) ctx.addIssue({ code: 'custom', path: ['defaultEndpoint'], message: err });
  if (!l.tls) return;
  if (protocolKind(l.port.protocol) !== 'tls') ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls settings need an HTTPS or TLS port' });
  if (l.tls.mode === 'ISTIO_MUTUAL' || l.tls.mode === 'AUTO_PASSTHROUGH') ctx.addIssue({ code: 'custom', path: ['tls', 'mode'], message: `tls mode ${l.tls.mode} is not allowed on a Sidecar ingress listener` });
  for (const k of ['subjectAltNames', 'httpsRedirect', 'credentialName', 'credentialNames', 'tlsCertificates'] as const) {
    if (l.tls[k] !== undefined) ctx.addIssue({ code: 'custom', path: ['tls', k], message: `tls.${k} is not supported on a Sidecar ingress listener; use serverCertificate and privateKey` });
  }
});

const egressListener = z.strictObject({
  port: sidecarPort.optional(),
  bind: z.string().optional(),
  captureMode: captureMode.optional(),
  hosts: z.array(z.string()),
}).superRefine((l, ctx) => {
  if (l.port) {
    portIssues(l.port, l.bind, ctx, true);
    if ((l.port.number ?? 0) === 0 && l.captureMode === 'IPTABLES') ctx.addIssue({ code: 'custom', path: ['captureMode'], message: 'a unix socket listener needs captureMode DEFAULT or NONE' });
  }
  if (l.hosts.length === 0) ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'an egress listener needs at least one host, such as "./*" or "istio-system/*"' });
  l.hosts.forEach((h, i) => {
    const err = namespacedHostError(h, { gateway: false });
    if (err) ctx.addIssue({ code: 'custom', path: ['hosts', i], message: err });
  });
});

const outboundTrafficPolicy = z.strictObject({
  mode: z.enum(['REGISTRY_ONLY', 'ALLOW_ANY']).optional(),
  egressProxy: destination.optional(),
}).superRefine((o, ctx) => {
  if (!o.egressProxy) return;
  if (o.mode !== 'ALLOW_ANY') ctx.addIssue({ code: 'custom', path: ['egressProxy'], message: 'egressProxy needs mode ALLOW_ANY' });
  if (o.egressProxy.port?.number === undefined) ctx.addIssue({ code: 'custom', path: ['egressProxy', 'port'], message: 'egressProxy needs a port number' });
});

export const sidecarSpec = z.strictObject({
  workloadSelector: z.strictObject({ labels: labels.optional() }).optional(),
  ingress: z.array(ingressListener).optional(),
  egress: z.array(egressListener).optional(),
  outboundTrafficPolicy: outboundTrafficPolicy.optional(),
  inboundConnectionPool: connectionPoolSettings.optional(),
}).superRefine((s, ctx) => {
  selectorIssues(s.workloadSelector?.labels, ctx, ['workloadSelector', 'labels']);
  if (!s.ingress?.length && !s.egress?.length && !s.outboundTrafficPolicy && !s.inboundConnectionPool) {
    ctx.addIssue({ code: 'custom', path: [], message: 'a Sidecar needs ingress, egress, outboundTrafficPolicy or inboundConnectionPool' });
  }
  noDuplicates(s.ingress, (l) => l.port.number ?? 0, ctx, (i) => ['ingress', i, 'port', 'number'], (n) => `Duplicate value: ingress port ${n} is listed twice`);
  s.egress?.forEach((l, i) => {
    if (!l.port && i !== s.egress!.length - 1) ctx.addIssue({ code: 'custom', path: ['egress', i], message: 'the egress listener without a port catches everything else and must come last' });
  });
  const egressKey = (l: NonNullable<typeof s.egress>[number]) => !l.port ? undefined : (l.port.number ?? 0) === 0 ? `unix ${l.bind}` : `port ${l.port.number}`;
  noDuplicates(s.egress, egressKey, ctx, (i) => ['egress', i, 'port'], (key) => `Duplicate value: egress ${key} is listed twice`);
});

export type SidecarSpec = DeepReadonly<z.infer<typeof sidecarSpec>>;

export const Sidecar = defineKind({
  kind: 'Sidecar',
  group: 'networking.istio.io',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  body: z.strictObject({ spec: sidecarSpec, status: z.unknown().optional() }),
  notEnforced: [
    'spec.ingress',
    'spec.egress',
    'spec.outboundTrafficPolicy.egressProxy',
  ],
  docs: 'Per-workload proxy scope: inbound listeners, reachable hosts, the policy for unknown destinations, inbound connection limits.',
});
