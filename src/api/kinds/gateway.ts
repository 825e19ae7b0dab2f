/**
 * `networking.istio.io` Gateway: the ports, hosts and TLS settings of a
 * load balancer at the edge of the mesh (ingress or egress), chosen by
 * workload labels. VirtualServices bind to it by name.
 */
import { inPortRange, labels, noDuplicates, z, type DeepReadonly } from '../schema.js';
import { defineKind, type ValueWarning } from '../kind.js';
import { isIpAddress, namespacedHostError, unixAddressError } from './names.js';

const PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY', 'TCP', 'TLS', 'MONGO', 'REDIS', 'MYSQL', 'UDP'];
/** Whether `p` names a protocol Istio knows (case-insensitive), and what kind it is. */
export function protocolKind(p: string): 'http' | 'tls' | 'other' | undefined {
  const u = p.toUpperCase();
  if (!PROTOCOLS.includes(u)) return undefined;
  if (u === 'HTTPS' || u === 'TLS') return 'tls';
  return ['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY'].includes(u) ? 'http' : 'other';
}

/** A port's `protocol`, checked against the names Istio knows. */
export const protocolName = z.string().superRefine((p, ctx) => {
  if (!protocolKind(p)) ctx.addIssue({ code: 'custom', message: `Unsupported value: "${p}"; use one of ${PROTOCOLS.join(', ')}` });
});

const tlsVersion = z.enum(['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3']);
const CERT_FIELDS = ['serverCertificate', 'privateKey', 'caCertificates', 'tlsCertificates', 'credentialName', 'credentialNames'] as const;

/**
 * TLS on a server port. `mode` defaults to PASSTHROUGH. SIMPLE and MUTUAL
 * need a certificate: `credentialName`, or `serverCertificate` with `privateKey`.
 */
export const serverTlsSettings = z.strictObject({
  httpsRedirect: z.boolean().optional(),
  mode: z.enum(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']).optional(),
  serverCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  caCrl: z.string().optional(),
  credentialName: z.string().optional(),
  credentialNames: z.array(z.string()).max(2, { message: 'at most 2 credential names (one RSA, one ECDSA)' }).optional(),
  tlsCertificates: z.array(z.strictObject({
    serverCertificate: z.string().optional(),
    privateKey: z.string().optional(),
    caCertificates: z.string().optional(),
  })).max(2, { message: 'at most 2 certificates (one RSA, one ECDSA)' }).optional(),
  subjectAltNames: z.array(z.string()).optional(),
  verifyCertificateSpki: z.array(z.string()).optional(),
  verifyCertificateHash: z.array(z.string()).optional(),
  minProtocolVersion: tlsVersion.optional(),
  maxProtocolVersion: tlsVersion.optional(),
  cipherSuites: z.array(z.string()).optional(),
}).superRefine((t, ctx) => {
  const mode = t.mode ?? 'PASSTHROUGH';
  if (mode === 'ISTIO_MUTUAL') {
    for (const k of CERT_FIELDS) {
      if (t[k] !== undefined && t[k] !== '') ctx.addIssue({ code: 'custom', path: [k], message: `ISTIO_MUTUAL uses the mesh's own certificates; remove ${k}` });
    }
    return;
  }
  const sources = [t.serverCertificate && t.privateKey, t.credentialName, t.credentialNames?.length, t.tlsCertificates?.length].filter(Boolean).length;
  if (sources > 1) ctx.addIssue({ code: 'custom', path: [], message: 'give the certificate one way only: credentialName, credentialNames, serverCertificate with privateKey, or tlsCertificates' });
  if (t.caCrl && t.credentialName) ctx.addIssue({ code: 'custom', path: ['caCrl'], message: 'caCrl cannot be used with credentialName; put the CRL in the credential' });
  if (t.caCrl && mode === 'SIMPLE') ctx.addIssue({ code: 'custom', path: ['caCrl'], message: 'caCrl checks client certificates and has no use with SIMPLE TLS' });
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return;
  if (t.credentialName || t.credentialNames?.length) return;
  const mutual = mode !== 'SIMPLE';
  if (mutual && !t.caCertificates) ctx.addIssue({ code: 'custom', path: ['caCertificates'], message: `${mode} TLS needs caCertificates to verify clients (or a credentialName)` });
  const certs = t.tlsCertificates?.length ? t.tlsCertificates.map((c, i) => [c, ['tlsCertificates', i]] as const) : [[t, []] as const];
  for (const [c, at] of certs) {
    if (!c.serverCertificate) ctx.addIssue({ code: 'custom', path: [...at, 'serverCertificate'], message: `${mode} TLS needs serverCertificate and privateKey, or a credentialName` });
    if (!c.privateKey) ctx.addIssue({ code: 'custom', path: [...at, 'privateKey'], message: `${mode} TLS needs serverCertificate and privateKey, or a credentialName` });
  }
});

const gatewayPort = z.strictObject({
  number: z.number().int({ message: 'port must be a whole number' }),
  protocol: protocolName,
  name: z.string(),
  targetPort: z.number().int().optional(),
});

const server = z.strictObject({
  port: gatewayPort,
  bind: z.string().optional(),
  hosts: z.array(z.string()),
  tls: serverTlsSettings.optional(),
  defaultEndpoint: z.string().optional(),
  name: z.string().optional(),
}).superRefine((s, ctx) => {
  if (s.hosts.length === 0) ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'a server needs at least one host, such as "*" or "./*.example.com"' });
  s.hosts.forEach((h, i) => {
    const err = namespacedHostError(h, { gateway: true });
    if (err) ctx.addIssue({ code: 'custom', path: ['hosts', i], message: err });
  });
  const unix = s.bind?.startsWith('unix://') ?? false;
  const n = s.port.number;
  if (unix ? n !== 0 : !inPortRange(n)) {
    ctx.addIssue({ code: 'custom', path: ['port', 'number'], message: unix ? 'port number must be 0 for a unix socket bind' : `port ${n} must be between 1 and 65535` });
  }
  if ((s.port.targetPort ?? 0) > 0) ctx.addIssue({ code: 'custom', path: ['port', 'targetPort'], message: 'targetPort has no effect on a Gateway; remove it' });
  if (s.port.name === '') ctx.addIssue({ code: 'custom', path: ['port', 'name'], message: 'a server port needs a name' });
  if (s.bind !== undefined && s.bind !== '') {
    const err = unix ? unixAddressError(s.bind) : isIpAddress(s.bind) ? undefined : `bind "${s.bind}" must be an IP address or unix:// socket`;
    if (err) ctx.addIssue({ code: 'custom', path: ['bind'], message: err });
  }
  const kind = protocolKind(s.port.protocol);
  if (kind === 'tls' && !s.tls) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: `a ${s.port.protocol.toUpperCase()} server needs tls settings, such as {mode: SIMPLE, credentialName: <secret>}` });
  } else if (kind && kind !== 'tls' && s.tls) {
    const passthrough = s.tls.mode === undefined || s.tls.mode === 'PASSTHROUGH' || s.tls.mode === 'AUTO_PASSTHROUGH';
    const certs = s.tls.caCertificates || s.tls.privateKey || s.tls.serverCertificate;
    if (kind !== 'http' || !passthrough || certs) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `a plain-text ${s.port.protocol.toUpperCase()} server cannot terminate TLS; use protocol HTTPS or TLS, or keep only tls.httpsRedirect` });
    }
  }
});

export const gatewaySpec = z.strictObject({
  servers: z.array(server),
  /** Labels of the gateway workloads this configuration applies to. */
  selector: labels.optional(),
}).superRefine((g, ctx) => {
  if (g.servers.length === 0) ctx.addIssue({ code: 'custom', path: ['servers'], message: 'a Gateway needs at least one server' });
  noDuplicates(g.servers, (s) => s.port.name, ctx, (i) => ['servers', i, 'port', 'name'], (name) => `Duplicate value: port name "${name}" is used by two servers; port names must be unique in a Gateway`);
  noDuplicates(g.servers, (s) => s.name, ctx, (i) => ['servers', i, 'name'], (name) => `Duplicate value: server name "${name}" is used twice in this Gateway`);
});

/** TLS modes a server accepts that Trellis does not act on yet, with what is missing. */
/**
 * Trellis gateways do not terminate or pass through TLS yet (DESIGN §9: ingress
 * TLS termination comes later). Rather than serve an HTTPS or TLS server's
 * port in plaintext, the gateway leaves such servers out: their port is not
 * opened. Each mode says so at its value.
 */
const TLS_NOT_SERVED = 'Trellis gateways do not terminate or pass through TLS yet, so this server is not served: its port is not opened (a plaintext HTTP server on the port would defeat the TLS you asked for)';
const TLS_MODE_DETAIL: Readonly<Record<string, string>> = {
  SIMPLE: TLS_NOT_SERVED,
  MUTUAL: TLS_NOT_SERVED,
  PASSTHROUGH: `${TLS_NOT_SERVED}; passing TLS through to the backend by SNI is not supported at gateways either`,
  AUTO_PASSTHROUGH: `${TLS_NOT_SERVED}; routing TLS by SNI to mesh services without terminating it is not supported either`,
  ISTIO_MUTUAL: `${TLS_NOT_SERVED}; accepting the mesh's own mTLS certificates on a gateway server is not supported either`,
  OPTIONAL_MUTUAL: `${TLS_NOT_SERVED}; an optional client certificate is not supported either`,
};

/** The TLS mode of each HTTPS or TLS server whose mode Trellis does not enforce yet. */
function tlsModeWarnings(spec: z.infer<typeof gatewaySpec>): ValueWarning[] {
  return spec.servers.flatMap((s, i) => {
    const why = s.tls?.mode === undefined || protocolKind(s.port.protocol) !== 'tls' ? undefined : TLS_MODE_DETAIL[s.tls.mode];
    return why ? [{ path: ['spec', 'servers', i, 'tls', 'mode'], message: why }] : [];
  });
}

export type GatewaySpec = DeepReadonly<z.infer<typeof gatewaySpec>>;
export type Server = GatewaySpec['servers'][number];
export type ServerTLSSettings = DeepReadonly<z.infer<typeof serverTlsSettings>>;

export const Gateway = defineKind({
  kind: 'Gateway',
  group: 'networking.istio.io',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  body: z.strictObject({ spec: gatewaySpec, status: z.unknown().optional() }),
  notEnforced: [
    'spec.servers[*].defaultEndpoint',
    'spec.servers[*].tls.caCrl',
    'spec.servers[*].tls.verifyCertificateSpki',
    'spec.servers[*].tls.verifyCertificateHash',
  ],
  warnings: (body) => tlsModeWarnings(body.spec),
  docs: 'Ports, hosts and TLS of an ingress or egress gateway, chosen by workload labels; VirtualServices bind to it by name.',
});
