/** Mesh-wide settings: the MeshConfig resource with Trellis's defaults applied. */
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
  };
  const tracing = tracingSettings(spec as MeshConfigSpec);
  return Object.freeze({
    trustDomain: spec.trustDomain ?? DEFAULTS.trustDomain,
    rootNamespace: spec.rootNamespace ?? DEFAULTS.rootNamespace,
    domainSuffix: DEFAULTS.domainSuffix,
    outboundTrafficPolicy: spec.outboundTrafficPolicy?.mode ?? DEFAULTS.outboundTrafficPolicy,
    pathNormalization: spec.pathNormalization?.normalization ?? DEFAULTS.pathNormalization,
    enableAutoMtls: spec.enableAutoMtls ?? DEFAULTS.enableAutoMtls,
    connectTimeoutMs: (spec.connectTimeout ? parseDuration(spec.connectTimeout) : undefined) ?? DEFAULTS.connectTimeoutMs,
    ...(spec.accessLogFile !== undefined ? { accessLogFile: spec.accessLogFile } : {}),
    ...(spec.accessLogEncoding !== undefined ? { accessLogEncoding: spec.accessLogEncoding } : {}),
    ...(tracing ? { tracing } : {}),
  });
}
