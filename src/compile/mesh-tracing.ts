/**
 * MeshConfig's tracing settings for the snapshot: the OpenTelemetry
 * extension provider that `defaultProviders.tracing` names first (unless
 * `enableTracing: false`), as an OTLP/HTTP endpoint, with the sampling
 * percentage of `defaultConfig.tracing`. Anything else (no default provider,
 * a Zipkin one) means no tracing; validation warns about the provider kinds
 * and transports Trellis does not speak (api/kinds/mesh-config.ts).
 */
import type { MeshConfigSpec } from '../api/kinds/mesh-config.js';
import { parseDuration } from '../api/duration.js';
import type { TracingSettings } from '../protocol/snapshot.js';
import { DEFAULTS } from './defaults.js';

/** Istio's `[<namespace>/]<hostname>` service reference, as a URL host. */
function urlHost(service: string): string {
  const host = service.slice(service.indexOf('/') + 1);
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Istio's proto3 zero means "unset". */
const orDefault = (n: number | undefined, d: number): number => (n === undefined || n === 0 ? d : n);

export function tracingSettings(spec: MeshConfigSpec): TracingSettings | undefined {
  if (spec.enableTracing === false) return undefined;
  const name = spec.defaultProviders?.tracing?.[0];
  const otel = name === undefined ? undefined : spec.extensionProviders?.find((p) => p.name === name)?.opentelemetry;
  if (!otel) return undefined;
  const t = DEFAULTS.tracing;
  const entries = (otel.http?.headers ?? []).map((h): [string, string] => [h.name.toLowerCase(), h.value]);
  const headers = Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Object.freeze({
    provider: name!,
    endpoint: `http://${urlHost(otel.service)}:${otel.port}${otel.http?.path ?? t.path}`,
    headers: Object.freeze(headers),
    timeoutMs: (otel.http?.timeout ? parseDuration(otel.http.timeout) : undefined) ?? t.timeoutMs,
    sampling: spec.defaultConfig?.tracing?.sampling ?? t.sampling,
    maxPathTagLength: orDefault(spec.defaultConfig?.tracing?.maxPathTagLength, t.maxPathTagLength),
    maxTagLength: orDefault(otel.maxTagLength, t.maxTagLength),
  });
}
