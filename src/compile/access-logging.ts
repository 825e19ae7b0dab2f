/**
 * Telemetry `accessLogging` for one workload: which Telemetry decides, where
 * its lines go, in which format, on which side and for which requests.
 *
 * The most specific Telemetry with an `accessLogging` section decides, as
 * Istio orders them: one whose selector matches the workload (in its own
 * namespace, then the root namespace), then its namespace's selector-less
 * one, then the root namespace's. Two at the same level: the first by
 * namespace and name. Within it, each direction (inbound is Istio's SERVER
 * side; outbound and gateway listeners are the CLIENT side) takes the first
 * entry whose `match.mode` covers it; `disabled: true` turns that side off,
 * `filter.expression` keeps the requests it is true for.
 *
 * Providers: `envoy` (Istio's built-in one) is the proxy's own access log:
 * MeshConfig `accessLogFile`, `accessLogEncoding` and `accessLogFormat`,
 * else the proxy's environment, else /dev/stdout. A MeshConfig extension
 * provider with `envoyFileAccessLog` gives its `path` and `logFormat`
 * (`text`: a TEXT template; `labels`: JSON fields). An entry without
 * providers uses MeshConfig `defaultProviders.accessLogging`; without those
 * either it is ignored, as Istio ignores it: that side logs nothing.
 * A proxy writes one access log: the first provider Trellis can write is
 * used, the others are ignored.
 */
import { filterHeaders, parseLogFilter } from '../api/log-filter.js';
import { parseLogFormat } from '../api/access-log-format.js';
import type { ConfigSet } from '../api/config-set.js';
import type { MeshConfigSpec } from '../api/kinds/mesh-config.js';
import type { TelemetrySpec } from '../api/kinds/telemetry.js';
import { labelsMatch } from '../policy/route-match.js';
import type { AccessLogSide, MeshSettings, WorkloadAccessLogging } from '../protocol/snapshot.js';

interface Workload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly kind: 'sidecar' | 'gateway';
}

type Entry = NonNullable<TelemetrySpec['accessLogging']>[number];

export function compileAccessLogging(config: ConfigSet, mesh: MeshSettings, w: Workload): WorkloadAccessLogging | undefined {
  const all = config.ofKind('Telemetry').filter((t) => (t.body.spec.accessLogging?.length ?? 0) > 0);
  if (all.length === 0) return undefined;
  const root = mesh.rootNamespace;
  const selected = (ns: string) => all.filter((t) => {
    const sel = t.body.spec.selector?.matchLabels;
    return t.metadata.namespace === ns && sel !== undefined && Object.keys(sel).length > 0 && labelsMatch(sel, w.labels);
  });
  const plain = (ns: string) => all.filter((t) => t.metadata.namespace === ns && Object.keys(t.body.spec.selector?.matchLabels ?? {}).length === 0);
  const levels = [selected(w.namespace), ...(w.namespace !== root ? [selected(root), plain(w.namespace)] : []), plain(root)];
  const level = levels.find((l) => l.length > 0);
  if (!level) return undefined;
  const chosen = [...level].sort((a, b) => (a.metadata.namespace + '/' + a.metadata.name < b.metadata.namespace + '/' + b.metadata.name ? -1 : 1))[0]!;
  const entries = chosen.body.spec.accessLogging!;
  const meshSpec = (config.ofKind('MeshConfig')[0]?.body.spec ?? {}) as MeshConfigSpec;

  const side = (mode: 'CLIENT' | 'SERVER'): { entry: Entry; side: AccessLogSide } | undefined => {
    const e = entries.find((x) => { const m = x.match?.mode ?? 'CLIENT_AND_SERVER'; return m === 'CLIENT_AND_SERVER' || m === mode; });
    if (!e || e.disabled) return undefined;
    const parsed = e.filter ? parseLogFilter(e.filter.expression) : undefined;
    // Validation refused an expression that does not parse; should one get here, the side logs nothing rather than everything.
    if (parsed && 'error' in parsed) return undefined;
    return { entry: e, side: parsed ? { filter: parsed.expr } : {} };
  };
  const server = side('SERVER');
  const client = side('CLIENT');
  const source = `${chosen.metadata.namespace}/${chosen.metadata.name}`;
  const directions = {
    ...(server && w.kind === 'sidecar' ? { inbound: server.side } : {}),
    ...(client ? (w.kind === 'sidecar' ? { outbound: client.side } : { gateway: client.side }) : {}),
  };
  const used = (w.kind === 'sidecar' ? server ?? client : client)?.entry;
  if (!used) return { source, directions: {}, file: '' };
  const headers = [...new Set(Object.values(directions).flatMap((d) => (d.filter ? filterHeaders(d.filter) : [])))];
  return { source, directions, ...destination(used, meshSpec, mesh), ...(headers.length ? { filterHeaders: headers } : {}) };
}

/** Where an entry's first usable provider writes, and how. */
function destination(e: Entry, meshSpec: MeshConfigSpec, mesh: MeshSettings): Pick<WorkloadAccessLogging, 'file' | 'encoding' | 'format'> {
  // As in Istio: no providers named here and no default in MeshConfig, and the entry is ignored (nothing logged; the analyzers warn).
  const names = e.providers?.map((p) => p.name) ?? meshSpec.defaultProviders?.accessLogging ?? [];
  for (const name of names) {
    if (name === 'envoy') {
      return {
        ...(mesh.accessLogFile !== undefined ? { file: mesh.accessLogFile } : {}),
        ...(mesh.accessLogEncoding !== undefined ? { encoding: mesh.accessLogEncoding } : {}),
        ...(mesh.accessLogFormat !== undefined ? { format: mesh.accessLogFormat } : {}),
      };
    }
    const fileLog = meshSpec.extensionProviders?.find((p) => p.name === name)?.envoyFileAccessLog;
    if (!fileLog) continue;
    const text = fileLog.logFormat?.text;
    const labels = fileLog.logFormat?.labels;
    const parsed = text !== undefined ? parseLogFormat(text, 'TEXT') : labels !== undefined ? parseLogFormat(JSON.stringify(labels), 'JSON') : undefined;
    return {
      file: fileLog.path ?? '/dev/stdout',
      encoding: labels !== undefined ? 'JSON' : text !== undefined ? 'TEXT' : 'JSON',
      ...(parsed && !('error' in parsed) ? { format: parsed.format } : {}),
    };
  }
  // No provider Trellis can write (a name MeshConfig does not define, or of another kind): nothing is logged.
  return { file: '' };
}
