/** Mesh-wide settings: the MeshConfig resource with Trellis's defaults applied. */
import { logFormatEncoding, parseLogFormat } from '../api/access-log-format.js';
import type { ConfigSet } from '../api/config-set.js';
import { parseDuration } from '../api/duration.js';
import type { MeshConfigSpec } from '../api/kinds/mesh-config.js';
import type { MeshSettings } from '../protocol/snapshot.js';
import { DEFAULTS } from './defaults.js';
import { tracingSettings } from './mesh-tracing.js';

export function meshSettings(config: ConfigSet): MeshSettings {
  const spec = (config.ofKind('MeshConfig')[0]?.body.spec ?? {}) as {
    trustDomain?: string;
    rootNamespace?: string;
    outboundTrafficPolicy?: { mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
    pathNormalization?: { normalization?: MeshSettings['pathNormalization'] };
    enableAutoMtls?: boolean;
    connectTimeout?: string;
    accessLogFile?: string;
    accessLogEncoding?: 'JSON' | 'TEXT';
    accessLogFormat?: string;
  };
  const tracing = tracingSettings(spec as MeshConfigSpec);
  const istioNames = prometheusProvider(spec as MeshConfigSpec);
  return Object.freeze({
    trustDomain: spec.trustDomain ?? DEFAULTS.trustDomain,
    rootNamespace: spec.rootNamespace ?? DEFAULTS.rootNamespace,
    domainSuffix: DEFAULTS.domainSuffix,
    outboundTrafficPolicy: spec.outboundTrafficPolicy?.mode ?? DEFAULTS.outboundTrafficPolicy,
    pathNormalization: spec.pathNormalization?.normalization ?? DEFAULTS.pathNormalization,
    enableAutoMtls: spec.enableAutoMtls ?? DEFAULTS.enableAutoMtls,
    connectTimeoutMs: (spec.connectTimeout ? parseDuration(spec.connectTimeout) : undefined) ?? DEFAULTS.connectTimeoutMs,
    ...(spec.accessLogFile !== undefined ? { accessLogFile: spec.accessLogFile } : {}),
    ...accessLogFormat(spec.accessLogFormat, spec.accessLogEncoding),
    ...(tracing ? { tracing } : {}),
    ...(istioNames ? { metricsPrefix: 'istio_' as const } : {}),
  });
}

/**
 * `accessLogEncoding` and the parsed `accessLogFormat`. A format without an
 * encoding decides it (an object is JSON, anything else TEXT, Istio's
 * default); validation refused a format that does not parse, so one that
 * fails here is left out (the proxies keep their default lines).
 */
function accessLogFormat(format: string | undefined, encoding: 'JSON' | 'TEXT' | undefined): Pick<MeshSettings, 'accessLogEncoding' | 'accessLogFormat'> {
  if (!format) return encoding !== undefined ? { accessLogEncoding: encoding } : {};
  const e = logFormatEncoding(format, encoding);
  const parsed = parseLogFormat(format, e);
  return 'error' in parsed ? { accessLogEncoding: e } : { accessLogEncoding: e, accessLogFormat: parsed.format };
}

/**
 * Whether MeshConfig sends metrics to a Prometheus provider the Istio way
 * (`defaultProviders.metrics` naming, first, an extension provider of kind
 * `prometheus`): that is how Istio's own installations declare its standard
 * metrics, so their names are Istio's (`istio_requests_total`, …), for
 * Istio's dashboards and Kiali as they are.
 */
function prometheusProvider(spec: MeshConfigSpec): boolean {
  const first = spec.defaultProviders?.metrics?.[0];
  return first !== undefined && spec.extensionProviders?.some((p) => p.name === first && p.prometheus !== undefined) === true;
}
