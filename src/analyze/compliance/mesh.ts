/**
 * What the compliance checks read of the mesh, from the registry and the
 * compiler: a service's instances and their localities, the snapshot of
 * every proxy (so a check sees the cluster, route and policy a caller really
 * gets, as src/compile decides them), and where a message about a service or
 * a workload points (its resource, and in an App manifest its entry).
 */
import type { Resource } from '../../api/resource.js';
import { createCompiler } from '../../compile/index.js';
import type { Cluster, Snapshot, SnapshotEndpoint } from '../../protocol/snapshot.js';
import type { Endpoint, Locality, Registry, Service, Workload } from '../../registry/types.js';
import type { AnalysisContext, Target } from '../analyzer.js';

/** Services whose instances the mesh runs: MESH_INTERNAL ones with a concrete host. */
export function meshServices(ctx: AnalysisContext): Service[] {
  return ctx.registry.services().filter((s) => s.location === 'MESH_INTERNAL' && !s.hostname.includes('*'));
}

/** The instances of a service (one endpoint per instance, whatever its ports), by instance name. */
export function instancesOf(registry: Registry, s: Service): Endpoint[] {
  const byInstance = new Map<string, Endpoint>();
  for (const p of s.ports) for (const e of registry.endpoints(s.hostname, p.port)) if (!byInstance.has(e.instance)) byInstance.set(e.instance, e);
  return [...byInstance.values()];
}

/** `region/zone`, or undefined when the zone is not known. */
export const zoneOf = (l: Locality): string | undefined => (l.zone !== '' ? `${l.region}/${l.zone}` : undefined);
export const regionOf = (l: Locality): string | undefined => (l.region !== '' ? l.region : undefined);

/** Instances counted by a key (zone, region); the ones without a key under `unknown`. */
export function countBy(instances: readonly Pick<Endpoint, 'locality'>[], key: (l: Locality) => string | undefined): { counts: Map<string, number>; unknown: number } {
  const counts = new Map<string, number>();
  let unknown = 0;
  for (const e of instances) {
    const k = key(e.locality);
    if (k === undefined) unknown++;
    else counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return { counts, unknown };
}

/** `eu-west/a: 2, eu-west/b: 1, 1 unknown` for messages. */
export function describeCounts(c: { counts: Map<string, number>; unknown: number }, what: string): string {
  const parts = [...c.counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${k}: ${n}`);
  if (c.unknown) parts.push(`${c.unknown} with no ${what} known`);
  return parts.length ? parts.join(', ') : 'no instances';
}

const resourcesByRef = new WeakMap<object, Map<string, Resource>>();

/** A resource of the configuration by its ref (`Service bank/accounts`). */
export function resourceByRef(ctx: AnalysisContext, ref: string): Resource | undefined {
  let m = resourcesByRef.get(ctx.config);
  if (!m) resourcesByRef.set(ctx.config, (m = new Map(ctx.config.resources.map((r) => [r.ref, r]))));
  return m.get(ref);
}

interface AppEntry { readonly name: string; readonly namespace?: string; readonly workloads?: readonly { readonly name: string }[] }

/** The index of an App service entry (and of its workload entry) that declares `name` in `namespace`. */
function appPath(r: Resource, service: string | undefined, workload: string | undefined, namespace: string): (string | number)[] {
  const spec = (r.body as { spec?: { namespace?: string; services?: readonly AppEntry[] } }).spec;
  const services = spec?.services ?? [];
  for (let i = 0; i < services.length; i++) {
    const s = services[i]!;
    if ((s.namespace ?? spec?.namespace ?? 'default') !== namespace) continue;
    if (service !== undefined && s.name === service) return ['spec', 'services', i];
    if (workload !== undefined) {
      const j = s.workloads?.findIndex((w) => w.name === workload) ?? -1;
      if (j >= 0) return ['spec', 'services', i, 'workloads', j];
      if (!s.workloads && s.name === workload) return ['spec', 'services', i];
    }
  }
  return [];
}

/** Where a message about a service points. */
export function serviceTarget(ctx: AnalysisContext, s: Service): Target | undefined {
  const r = resourceByRef(ctx, s.source);
  if (!r) return undefined;
  return r.kind === 'App' ? { resource: r, field: appPath(r, s.name, undefined, s.namespace) } : { resource: r };
}

/** Where a message about a workload points; `field` is appended (`['replicas']`). */
export function workloadTarget(ctx: AnalysisContext, w: Workload, field: readonly (string | number)[] = []): Target | undefined {
  const r = resourceByRef(ctx, w.source);
  if (!r) return undefined;
  if (r.kind === 'App') {
    const base = appPath(r, undefined, w.name, w.namespace);
    return { resource: r, field: base.length ? [...base, ...field] : [] };
  }
  return { resource: r, field: field.length && (r.kind === 'Deployment' || r.kind === 'WorkloadEntry' || r.kind === 'Pod') ? ['spec', ...field] : [] };
}

/** One proxy's snapshot, with the workload it serves. */
export interface ProxyView {
  readonly workload: Workload;
  readonly snapshot: Snapshot;
}

const views = new WeakMap<object, WeakMap<object, ProxyView[]>>();

/** The snapshot of every workload's proxy (sidecars and gateways), compiled once per configuration and registry. */
export function proxyViews(ctx: AnalysisContext): readonly ProxyView[] {
  let byRegistry = views.get(ctx.config);
  if (!byRegistry) views.set(ctx.config, (byRegistry = new WeakMap()));
  let list = byRegistry.get(ctx.registry);
  if (list) return list;
  const compiler = createCompiler();
  list = [];
  for (const workload of ctx.registry.workloads()) {
    try {
      list.push({ workload, snapshot: compiler.compile(ctx.config, ctx.registry, { workload: workload.name, namespace: workload.namespace }) });
    } catch {
      // A workload the compiler cannot resolve (a duplicate name, reported by schema.validation) has no proxy to check.
    }
  }
  byRegistry.set(ctx.registry, list);
  return list;
}

const routed = new WeakMap<Snapshot, ReadonlySet<string>>();

/** The clusters some route of the snapshot sends traffic to (HTTP, TCP and TLS routes). */
export function routedClusters(snapshot: Snapshot): ReadonlySet<string> {
  let set = routed.get(snapshot);
  if (set) return set;
  const names = new Set<string>();
  for (const t of snapshot.outbound.http) {
    for (const vh of t.virtualHosts) for (const r of vh.routes) if (r.action.kind === 'forward') for (const c of r.action.clusters) names.add(c.cluster);
  }
  for (const r of [...snapshot.outbound.tcp, ...(snapshot.outbound.tls ?? [])]) for (const c of r.clusters) names.add(c.cluster);
  routed.set(snapshot, (set = names));
  return set;
}

/** The clusters of a service in one snapshot that its routes use, each with its endpoints. */
export function clustersOf(snapshot: Snapshot, hostname: string): { cluster: Cluster; endpoints: readonly SnapshotEndpoint[] }[] {
  const out: { cluster: Cluster; endpoints: readonly SnapshotEndpoint[] }[] = [];
  const used = routedClusters(snapshot);
  snapshot.clusters.forEach((cluster, i) => {
    if (cluster.service !== hostname || !used.has(cluster.name)) return;
    const eps = snapshot.endpoints[i]?.cluster === cluster.name ? snapshot.endpoints[i]!.endpoints : snapshot.endpoints.find((e) => e.cluster === cluster.name)?.endpoints ?? [];
    out.push({ cluster, endpoints: eps });
  });
  return out;
}

/** `a, b and 3 more` */
export function listSome(items: readonly string[], max = 4): string {
  const sorted = [...new Set(items)].sort();
  if (sorted.length <= max) return sorted.join(', ');
  return `${sorted.slice(0, max).join(', ')} and ${sorted.length - max} more`;
}

/** Reports at `at`, or at the fallback when `at` is undefined; nothing when both are. */
export function reportAt(ctx: AnalysisContext, name: Parameters<AnalysisContext['report']>[0], args: Parameters<AnalysisContext['report']>[1], ...targets: (Target | undefined)[]): void {
  const t = targets.find((x) => x !== undefined);
  if (t) ctx.report(name, args, t);
}
