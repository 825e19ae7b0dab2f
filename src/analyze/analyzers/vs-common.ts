/**
 * What the VirtualService analyzers share: the compiler's index of the
 * configuration (hosts resolved, gateways as `namespace/name`, exportTo as
 * visibility), every destination of a VirtualService with its field path,
 * and the namespaces a VirtualService applies in.
 */
import type { ConfigSet, ResourceOf } from '../../api/config-set.js';
import type { Destination } from '../../api/kinds/virtual-service.js';
import { buildIndex, visibility, type ConfigIndex, type IndexedVs } from '../../compile/config-index.js';
import type { Registry } from '../../registry/types.js';
import type { AnalysisContext } from '../analyzer.js';

export type VsResource = ResourceOf<'VirtualService'>;
export type FieldPath = readonly (string | number)[];

const indexes = new WeakMap<ConfigSet, WeakMap<Registry, ConfigIndex>>();

/** The compiler's index of the context's configuration (built once per configuration and registry). */
export function indexOf(ctx: AnalysisContext): ConfigIndex {
  let byRegistry = indexes.get(ctx.config);
  if (!byRegistry) indexes.set(ctx.config, (byRegistry = new WeakMap()));
  let index = byRegistry.get(ctx.registry);
  if (!index) byRegistry.set(ctx.registry, (index = buildIndex(ctx.config, new Set(ctx.registry.namespaces()))));
  return index;
}

/**
 * Every VirtualService as the compiler indexes it (hosts resolved from its
 * namespace, gateways as `mesh` or `namespace/name`, exportTo as
 * visibility), in load order; those without hosts too.
 */
export function indexedVirtualServices(index: ConfigIndex): IndexedVs[] {
  return index.config.ofKind('VirtualService').map((res) => {
    const spec = res.body.spec;
    const ns = res.metadata.namespace;
    return {
      res,
      hosts: (spec.hosts ?? []).map((h) => index.resolve(h, ns)),
      gateways: (spec.gateways?.length ? spec.gateways : ['mesh']).map((g) => gatewayKey(g, ns)),
      visibleTo: visibility(spec.exportTo, ns),
    };
  });
}

/** A gateway reference as the compiler keys it: `mesh`, or `namespace/name` (a bare name is in `namespace`). */
export function gatewayKey(ref: string, namespace: string): string {
  return ref === 'mesh' || ref.includes('/') ? ref : `${namespace}/${ref}`;
}

/** Whether the VirtualService applies to sidecars (no gateways, or `mesh` among them). */
export function boundToMesh(ivs: IndexedVs): boolean {
  return ivs.gateways.includes('mesh');
}

/**
 * The namespaces whose proxies use the VirtualService, for resolving what it
 * names: the namespaces of its exportTo list (`.` is its own), or its own
 * namespace when it is exported everywhere.
 */
export function scopesOf(vs: VsResource): string[] {
  const ns = vs.metadata.namespace;
  const list = vs.body.spec.exportTo;
  if (!list?.length || list.includes('*')) return [ns];
  const out = new Set<string>();
  for (const e of list) if (e !== '~') out.add(e === '.' ? ns : e);
  return out.size ? [...out] : [ns];
}

/** One destination of a VirtualService and where it is written. */
export interface DestinationAt {
  readonly destination: Destination;
  /** Path of the `destination` object (for `mirror`, the mirror itself). */
  readonly path: FieldPath;
  readonly kind: 'route' | 'mirror';
  readonly protocol: 'http' | 'tcp' | 'tls';
  /** Index of the rule in its list. */
  readonly rule: number;
}

/** Every route and mirror destination of a VirtualService, in document order. */
export function destinationsOf(vs: VsResource): DestinationAt[] {
  const spec = vs.body.spec;
  const out: DestinationAt[] = [];
  spec.http?.forEach((r, i) => {
    r.route?.forEach((d, j) => out.push({ destination: d.destination, path: ['spec', 'http', i, 'route', j, 'destination'], kind: 'route', protocol: 'http', rule: i }));
    if (r.mirror) out.push({ destination: r.mirror, path: ['spec', 'http', i, 'mirror'], kind: 'mirror', protocol: 'http', rule: i });
    r.mirrors?.forEach((m, k) => out.push({ destination: m.destination, path: ['spec', 'http', i, 'mirrors', k, 'destination'], kind: 'mirror', protocol: 'http', rule: i }));
  });
  for (const protocol of ['tcp', 'tls'] as const) {
    spec[protocol]?.forEach((r, i) => {
      r.route.forEach((d, j) => out.push({ destination: d.destination, path: ['spec', protocol, i, 'route', j, 'destination'], kind: 'route', protocol, rule: i }));
    });
  }
  return out;
}

/** `"a", "b" and "c"` for messages. */
export function listOf(items: readonly (string | number)[]): string {
  const q = items.map((x) => String(x));
  if (q.length <= 1) return q.join('');
  return `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}`;
}
