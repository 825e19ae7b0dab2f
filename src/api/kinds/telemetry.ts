/**
 * `telemetry.istio.io` Telemetry: per mesh (the root namespace), namespace
 * or workload (`selector`), which access logs a proxy writes and which
 * requests they keep (`accessLogging`: providers, `disabled`, a
 * `filter.expression` in a subset of CEL, `match.mode`), and which of
 * Istio's standard metrics each side reports (`metrics[].overrides[]`
 * `disabled`, src/compile/telemetry-metrics.ts). Metric `tagOverrides`,
 * `reportingInterval` and custom metrics, and the `tracing` section, are
 * read and checked as Istio checks them and not acted on yet (warning
 * TRL1005): tracing is set mesh-wide in MeshConfig.
 */
import { duration, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { parseLogFilter } from '../log-filter.js';
import { policySelector } from './policy-scope.js';

const nonEmpty = (what: string) => z.string().refine((s) => s.length > 0, { message: `${what} must not be empty` });
const provider = z.strictObject({ name: nonEmpty('a provider name') });
const mode = z.enum(['CLIENT_AND_SERVER', 'CLIENT', 'SERVER']);

const tagOverride = z.strictObject({
  operation: z.enum(['UPSERT', 'REMOVE']).optional(),
  value: z.string().optional(),
}).superRefine((t, ctx) => {
  if ((t.operation ?? 'UPSERT') === 'UPSERT' && !t.value) ctx.addIssue({ code: 'custom', path: ['value'], message: 'value must be set when operation is UPSERT' });
  if (t.operation === 'REMOVE' && t.value !== undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: 'value must not be set when operation is REMOVE' });
});

const metrics = z.strictObject({
  providers: z.array(provider).optional(),
  overrides: z.array(z.strictObject({
    match: z.strictObject({
      metric: z.enum(['ALL_METRICS', 'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE', 'TCP_OPENED_CONNECTIONS',
        'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES', 'GRPC_REQUEST_MESSAGES', 'GRPC_RESPONSE_MESSAGES']).optional(),
      customMetric: nonEmpty('customMetric').optional(),
      mode: mode.optional(),
    }).optional(),
    disabled: z.boolean().optional(),
    tagOverrides: z.record(z.string(), tagOverride).optional(),
  })).optional(),
  reportingInterval: duration().optional(),
});

const customTag = z.strictObject({
  literal: z.strictObject({ value: z.string() }).optional(),
  environment: z.strictObject({ name: z.string(), defaultValue: z.string().optional() }).optional(),
  header: z.strictObject({ name: z.string(), defaultValue: z.string().optional() }).optional(),
});

const tracing = z.strictObject({
  providers: z.array(provider).optional(),
  match: z.strictObject({ mode: mode.optional() }).optional(),
  randomSamplingPercentage: z.number().min(0).max(100).optional(),
  disableSpanReporting: z.boolean().optional(),
  useRequestIdForTraceSampling: z.boolean().optional(),
  customTags: z.record(z.string(), customTag).optional(),
});

const accessLogging = z.strictObject({
  providers: z.array(provider).optional(),
  disabled: z.boolean().optional(),
  filter: z.strictObject({ expression: z.string() }).superRefine((f, ctx) => {
    const p = parseLogFilter(f.expression);
    if ('error' in p) ctx.addIssue({ code: 'custom', path: ['expression'], message: `filter expression: ${p.error}` });
  }).optional(),
  match: z.strictObject({ mode: mode.optional() }).optional(),
});

export const telemetrySpec = z.strictObject({
  selector: policySelector.optional(),
  metrics: z.array(metrics).optional(),
  tracing: z.array(tracing).optional(),
  accessLogging: z.array(accessLogging).optional(),
});

export type TelemetrySpec = DeepReadonly<z.infer<typeof telemetrySpec>>;

export const Telemetry = defineKind({
  kind: 'Telemetry',
  group: 'telemetry.istio.io',
  versions: ['v1', 'v1alpha1'],
  namespaced: true,
  body: z.strictObject({ spec: telemetrySpec, status: z.unknown().optional() }),
  notEnforced: [
    'spec.metrics[*].overrides[*].tagOverrides', 'spec.metrics[*].overrides[*].match.customMetric', 'spec.metrics[*].reportingInterval', 'spec.tracing',
  ],
  docs: 'Access logging per mesh, namespace or workload: which providers, on or off, which requests (a CEL filter expression), client or server side; and which standard metrics each side reports (metrics overrides with disabled). Metric tag overrides, custom metrics and the tracing section are checked, not acted on (MeshConfig sets tracing).',
});
