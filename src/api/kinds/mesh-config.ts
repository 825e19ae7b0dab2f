/**
 * `trellis.dev` MeshConfig: mesh-wide settings, with the field names of
 * Istio's MeshConfig (a strict subset). Istio keeps these in a ConfigMap;
 * Trellis reads them as one cluster-scoped document. Every field is optional
 * here: defaults live in the compiler's defaults table, not in the schema.
 */
import { atMostOne, duration, exactlyOne, labels, noDuplicates, percentage, port, z, type DeepReadonly } from '../schema.js';
import { defineKind, type ValueWarning } from '../kind.js';
import { parseDuration } from '../duration.js';
import { logFormatEncoding, parseLogFormat } from '../access-log-format.js';
import { localityLbSetting } from './locality-lb.js';
import { isDnsLabel, isDnsLabels } from './names.js';

/** A trust domain: dot-separated DNS labels (`cluster.local`, `example.org`). */
const trustDomain = z.string().superRefine((d, ctx) => {
  if (!isDnsLabels(d)) ctx.addIssue({ code: 'custom', message: `"${d}" is not a trust domain; use dot-separated DNS labels, such as cluster.local` });
});

/** A duration in whole seconds, at least 1s (Istio's drain durations). */
const seconds = duration({ min: 1000 }).superRefine((s, ctx) => {
  const ms = parseDuration(s);
  if (ms !== undefined && ms % 1000 !== 0) ctx.addIssue({ code: 'custom', message: `"${s}" must be whole seconds, such as 5s or 45s` });
});

/** The proxy defaults (`defaultConfig`), a small subset of Istio's ProxyConfig. */
const proxyConfig = z.strictObject({
  holdApplicationUntilProxyStarts: z.boolean().optional(),
  drainDuration: seconds.optional(),
  terminationDrainDuration: seconds.optional(),
  /** Worker threads per proxy; 0 means one per CPU core. */
  concurrency: z.number().int().min(0, { message: 'concurrency must not be negative' }).optional(),
  proxyMetadata: labels.optional(),
  tracing: z.strictObject({
    sampling: percentage().optional(),
    maxPathTagLength: z.number().int().min(0).optional(),
    zipkin: z.strictObject({ address: z.string() }).optional(),
  }).optional(),
});

const service = { service: z.string().min(1), port: port() };

const extAuthzHttp = z.strictObject({
  ...service,
  timeout: duration({ min: 1 }).optional(),
  pathPrefix: z.string().optional(),
  failOpen: z.boolean().optional(),
  statusOnError: z.string().optional(),
  includeRequestHeadersInCheck: z.array(z.string()).optional(),
  includeAdditionalHeadersInCheck: z.record(z.string(), z.string()).optional(),
  headersToUpstreamOnAllow: z.array(z.string()).optional(),
  headersToDownstreamOnAllow: z.array(z.string()).optional(),
  headersToDownstreamOnDeny: z.array(z.string()).optional(),
});

const extAuthzGrpc = z.strictObject({
  ...service,
  timeout: duration({ min: 1 }).optional(),
  failOpen: z.boolean().optional(),
  statusOnError: z.string().optional(),
});

const tracer = z.strictObject({ ...service, maxTagLength: z.number().int().min(0).optional() });

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Istio's HttpService of a tracing provider: OTLP/HTTP to `path` (default /v1/traces), with a timeout and extra headers. */
const httpService = z.strictObject({
  path: z.string().refine((p) => p.startsWith('/'), { message: 'path must start with "/", such as /v1/traces' }).optional(),
  timeout: duration({ min: 1 }).optional(),
  headers: z.array(z.strictObject({
    name: z.string().refine((n) => HEADER_NAME.test(n), { message: 'a header name must be an HTTP token, such as x-api-key' }),
    value: z.string().refine((v) => !/[\r\n\0]/.test(v), { message: 'a header value must not contain CR, LF or NUL' }),
  })).optional(),
});

/** Istio's OpenTelemetryTracingProvider; Trellis exports OTLP/HTTP (JSON) only. */
const openTelemetryTracer = tracer.extend({ http: httpService.optional() });

const fileAccessLog = z.strictObject({
  path: z.string().optional(),
  logFormat: z.strictObject({ text: z.string().optional(), labels: labels.optional() })
    .superRefine((f, ctx) => atMostOne(f, ['text', 'labels'], ctx, 'a log format'))
    .optional(),
});

const PROVIDER_KINDS = ['envoyExtAuthzHttp', 'envoyExtAuthzGrpc', 'zipkin', 'opentelemetry', 'envoyFileAccessLog', 'prometheus'] as const;

/** A named provider of external authorization, tracing, access logging or metrics. */
const extensionProvider = z.strictObject({
  name: z.string().refine((n) => n !== '', { message: 'an extension provider needs a name' }),
  envoyExtAuthzHttp: extAuthzHttp.optional(),
  envoyExtAuthzGrpc: extAuthzGrpc.optional(),
  zipkin: tracer.optional(),
  opentelemetry: openTelemetryTracer.optional(),
  envoyFileAccessLog: fileAccessLog.optional(),
  prometheus: z.strictObject({}).optional(),
}).superRefine((p, ctx) => exactlyOne(p, PROVIDER_KINDS, ctx, `extension provider "${p.name}"`));

export const meshConfigSpec = z.strictObject({
  rootNamespace: z.string().refine(isDnsLabel, { message: 'rootNamespace must be a namespace name (a DNS label)' }).optional(),
  trustDomain: trustDomain.optional(),
  trustDomainAliases: z.array(trustDomain).optional(),
  outboundTrafficPolicy: z.strictObject({ mode: z.enum(['ALLOW_ANY', 'REGISTRY_ONLY']).optional() }).optional(),
  pathNormalization: z.strictObject({
    normalization: z.enum(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']).optional(),
  }).optional(),
  defaultConfig: proxyConfig.optional(),
  enableTracing: z.boolean().optional(),
  defaultProviders: z.strictObject({
    tracing: z.array(z.string()).optional(),
    metrics: z.array(z.string()).optional(),
    accessLogging: z.array(z.string()).optional(),
  }).optional(),
  extensionProviders: z.array(extensionProvider).optional(),
  accessLogFile: z.string().optional(),
  accessLogEncoding: z.enum(['TEXT', 'JSON']).optional(),
  accessLogFormat: z.string().optional(),
  enableAutoMtls: z.boolean().optional(),
  localityLbSetting: localityLbSetting.optional(),
  /** Upstream connect timeout, 1ms to 1h. */
  connectTimeout: duration({ min: 1 }).superRefine((s, ctx) => {
    if ((parseDuration(s) ?? 0) > 3_600_000) ctx.addIssue({ code: 'custom', message: `connectTimeout "${s}" must be at most 1h` });
  }).optional(),
  /** How long to wait for a client to speak first before treating a connection as TCP; `0s` turns detection off. */
  protocolDetectionTimeout: duration().optional(),
}).superRefine((m, ctx) => {
  if (m.accessLogFormat) {
    const f = parseLogFormat(m.accessLogFormat, logFormatEncoding(m.accessLogFormat, m.accessLogEncoding));
    if ('error' in f) ctx.addIssue({ code: 'custom', path: ['accessLogFormat'], message: f.error });
  }
  noDuplicates(m.extensionProviders, (p) => p.name, ctx, (i) => ['extensionProviders', i, 'name'], (name) => `Duplicate value: extension provider "${name}" is defined twice`);
  m.defaultProviders?.tracing?.forEach((name, i) => {
    if (!m.extensionProviders?.some((p) => p.name === name)) {
      const known = m.extensionProviders?.map((p) => p.name).join(', ') || 'none';
      ctx.addIssue({ code: 'custom', path: ['defaultProviders', 'tracing', i], message: `defaultProviders.tracing names "${name}", which no extension provider defines (defined: ${known})` });
    }
  });
  m.defaultProviders?.metrics?.forEach((name, i) => {
    if (!m.extensionProviders?.some((p) => p.name === name)) {
      const known = m.extensionProviders?.map((p) => p.name).join(', ') || 'none';
      ctx.addIssue({ code: 'custom', path: ['defaultProviders', 'metrics', i], message: `defaultProviders.metrics names "${name}", which no extension provider defines (defined: ${known})` });
    }
  });
});

/**
 * Tracing choices Trellis accepts but acts on differently: only the first
 * default tracing provider is used, only an OpenTelemetry one turns tracing
 * on, and export is OTLP/HTTP (Istio's default for a provider without
 * `http` is OTLP/gRPC).
 */
function tracingWarnings(spec: z.infer<typeof meshConfigSpec>): ValueWarning[] {
  const out: ValueWarning[] = [];
  spec.defaultProviders?.tracing?.forEach((name, i) => {
    const p = spec.extensionProviders?.find((x) => x.name === name);
    if (i > 0) out.push({ path: ['spec', 'defaultProviders', 'tracing', i], message: 'a proxy uses one tracing provider, the first one listed; this one is ignored' });
    else if (p && !p.opentelemetry) out.push({ path: ['spec', 'defaultProviders', 'tracing', i], message: 'Trellis exports traces with OpenTelemetry (OTLP/HTTP) only: tracing stays off; define an opentelemetry extension provider' });
  });
  spec.extensionProviders?.forEach((p, i) => {
    if (p.opentelemetry && !p.opentelemetry.http) {
      out.push({
        path: ['spec', 'extensionProviders', i, 'opentelemetry', 'port'],
        message: `Trellis has no OTLP/gRPC exporter: spans go as OTLP/HTTP to http://${p.opentelemetry.service}:${p.opentelemetry.port}/v1/traces; use the collector's OTLP/HTTP port (usually 4318), or set http.path`,
      });
    }
  });
  return out;
}

export type MeshConfigSpec = DeepReadonly<z.infer<typeof meshConfigSpec>>;
export type ExtensionProvider = NonNullable<MeshConfigSpec['extensionProviders']>[number];

export const MeshConfig = defineKind({
  kind: 'MeshConfig',
  group: 'trellis.dev',
  versions: ['v1alpha1'],
  namespaced: false,
  body: z.strictObject({ spec: meshConfigSpec, status: z.unknown().optional() }),
  notEnforced: [
    // Istio's agent reads these (DNS capture, address auto-allocation); Trellis has no such agent.
    'spec.defaultConfig.proxyMetadata',
    'spec.extensionProviders[*].envoyExtAuthzHttp',
    'spec.extensionProviders[*].envoyExtAuthzGrpc',
    'spec.extensionProviders[*].zipkin',
    'spec.defaultConfig.tracing.zipkin',
  ],
  warnings: (body) => tracingWarnings(body.spec),
  docs: 'Mesh-wide settings with Istio MeshConfig field names: root namespace, trust domain, outbound policy, path normalization, proxy defaults, tracing and access logs, extension providers.',
});
