/**
 * Telemetry `metrics` for one workload: which of Istio's standard metrics
 * each side of its proxy does not report.
 *
 * Unlike access logging, where the most specific Telemetry decides, metric
 * overrides add up as Istio merges them: the root namespace's selector-less
 * Telemetry first, then the workload's namespace's, then one whose selector
 * matches the workload (in the root namespace, then in its own); within
 * each, entries and overrides in order. Each override with `disabled` set
 * turns its metrics (`match.metric`, default ALL_METRICS) off or on again
 * for its sides (`match.mode`, default CLIENT_AND_SERVER; CLIENT is the
 * outbound and gateway listeners, reporter=source; SERVER the inbound,
 * reporter=destination); the last word on a metric and side stands. Two
 * Telemetry resources at one level: the first by namespace and name, as for
 * access logs (the analyzers warn about both).
 *
 * An entry applies when its providers (else MeshConfig
 * `defaultProviders.metrics`, else Istio's default, `prometheus`) include
 * `prometheus` or a MeshConfig extension provider of kind `prometheus`: the
 * proxy's own /metrics. The gRPC message counts and custom
 * metrics are not reported by Trellis; overrides of them change nothing, and
 * `tagOverrides` / `reportingInterval` are accepted, not acted on (TRL1005).
 */
import type { ConfigSet, ResourceOf } from '../api/config-set.js';
import type { MeshConfigSpec } from '../api/kinds/mesh-config.js';
import type { TelemetrySpec } from '../api/kinds/telemetry.js';
import { labelsMatch } from '../policy/route-match.js';
import type { IstioMetric, MeshSettings, WorkloadMetrics } from '../protocol/snapshot.js';

/** The metrics a Trellis proxy reports, as Telemetry names them (ALL_METRICS means these). */
export const REPORTED_METRICS: readonly IstioMetric[] = Object.freeze([
  'REQUEST_COUNT', 'REQUEST_DURATION', 'REQUEST_SIZE', 'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS', 'TCP_CLOSED_CONNECTIONS', 'TCP_SENT_BYTES', 'TCP_RECEIVED_BYTES',
]);

const PROMETHEUS = 'prometheus';

interface Workload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

type Side = 'client' | 'server';
type Tel = ResourceOf<'Telemetry'>;
type Entry = NonNullable<TelemetrySpec['metrics']>[number];

export function compileMetricsTelemetry(config: ConfigSet, mesh: Pick<MeshSettings, 'rootNamespace'>, w: Workload): WorkloadMetrics | undefined {
  const all = config.ofKind('Telemetry').filter((t) => (t.body.spec.metrics?.length ?? 0) > 0);
  if (all.length === 0) return undefined;
  const root = mesh.rootNamespace;
  const hasSelector = (t: Tel) => Object.keys(t.body.spec.selector?.matchLabels ?? {}).length > 0;
  const first = (ts: Tel[]) => [...ts].sort((a, b) => (a.metadata.namespace + '/' + a.metadata.name < b.metadata.namespace + '/' + b.metadata.name ? -1 : 1))[0];
  const plain = (ns: string) => first(all.filter((t) => t.metadata.namespace === ns && !hasSelector(t)));
  const selected = (ns: string) => first(all.filter((t) => t.metadata.namespace === ns && hasSelector(t) && labelsMatch(t.body.spec.selector!.matchLabels!, w.labels)));
  const levels = w.namespace === root ? [plain(root), selected(root)] : [plain(root), plain(w.namespace), selected(root), selected(w.namespace)];
  const chosen = levels.filter((t): t is Tel => t !== undefined);
  if (chosen.length === 0) return undefined;

  const meshSpec = (config.ofKind('MeshConfig')[0]?.body.spec ?? {}) as MeshConfigSpec;
  const defaults = meshSpec.defaultProviders?.metrics ?? [PROMETHEUS];
  const prometheus = new Set([PROMETHEUS, ...(meshSpec.extensionProviders ?? []).filter((p) => p.prometheus !== undefined).map((p) => p.name)]);
  const ours = (e: Entry) => (e.providers?.map((p) => p.name) ?? defaults).some((n) => prometheus.has(n));
  const off: Record<Side, Set<IstioMetric>> = { client: new Set(), server: new Set() };
  for (const t of chosen) {
    for (const e of t.body.spec.metrics!) {
      if (!ours(e)) continue;
      for (const o of e.overrides ?? []) {
        if (o.disabled === undefined || o.match?.customMetric !== undefined) continue;
        const which = o.match?.metric ?? 'ALL_METRICS';
        const metrics = which === 'ALL_METRICS' ? REPORTED_METRICS : REPORTED_METRICS.filter((m) => m === which);
        const mode = o.match?.mode ?? 'CLIENT_AND_SERVER';
        const sides: Side[] = mode === 'CLIENT' ? ['client'] : mode === 'SERVER' ? ['server'] : ['client', 'server'];
        for (const side of sides) for (const m of metrics) o.disabled ? off[side].add(m) : off[side].delete(m);
      }
    }
  }
  if (off.client.size === 0 && off.server.size === 0) return undefined;
  const inOrder = (s: Set<IstioMetric>) => REPORTED_METRICS.filter((m) => s.has(m));
  return {
    sources: chosen.map((t) => `${t.metadata.namespace}/${t.metadata.name}`),
    disabled: { client: inOrder(off.client), server: inOrder(off.server) },
  };
}
