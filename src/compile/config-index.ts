/**
 * Indexes a configuration set for compiling: VirtualServices by host and by
 * gateway, DestinationRules by host, with hosts resolved to FQDNs. Built once
 * per ConfigSet (memoized by the compiler) in one pass over the resources.
 */
import type { ConfigSet, ResourceOf } from '../api/config-set.js';
import type { MeshSettings } from '../protocol/snapshot.js';
import { hostMatches, resolveHost, type NamespaceSet } from '../registry/host.js';
import { meshSettings } from './mesh.js';
import { hashText } from './hash.js';
import { stableJson } from '../api/validate.js';

export type VsResource = ResourceOf<'VirtualService'>;
export type DrResource = ResourceOf<'DestinationRule'>;
export type GatewayResource = ResourceOf<'Gateway'>;

export interface IndexedVs {
  readonly res: VsResource;
  readonly hosts: readonly string[];
  /** Resolved gateway names: `mesh` or `namespace/name`. */
  readonly gateways: readonly string[];
  readonly visibleTo: Visibility;
}

export interface IndexedDr {
  readonly res: DrResource;
  readonly host: string;
  readonly visibleTo: Visibility;
}

/** Namespaces a resource is exported to. */
export type Visibility = { readonly all: true } | { readonly all: false; readonly namespaces: ReadonlySet<string> };

export interface ConfigIndex {
  readonly config: ConfigSet;
  readonly mesh: MeshSettings;
  readonly meshHash: string;
  /** Mesh-bound VirtualServices by exact host; wildcard-host ones in `meshVsWildcard`. Load order. */
  readonly meshVsByHost: ReadonlyMap<string, readonly IndexedVs[]>;
  readonly meshVsWildcard: readonly IndexedVs[];
  /** VirtualServices bound to a gateway, by `namespace/name` of the Gateway. */
  readonly gatewayVs: ReadonlyMap<string, readonly IndexedVs[]>;
  readonly drByHost: ReadonlyMap<string, readonly IndexedDr[]>;
  readonly drWildcard: readonly IndexedDr[];
  readonly gateways: readonly GatewayResource[];
  /** Hash of every Gateway: whether a workload is a gateway depends on them only. */
  readonly gatewaysHash: string;
  /** `resolveHost` for this index's namespaces and suffix, memoized (hosts repeat across thousands of routes). */
  resolve(host: string, namespace: string): string;
  /** DestinationRules with a workloadSelector: they make a proxy's view depend on its labels. */
  readonly selectorDrs: readonly IndexedDr[];
}

export function visibility(exportTo: readonly string[] | undefined, ownNamespace: string): Visibility {
  if (!exportTo || exportTo.length === 0 || exportTo.includes('*')) return { all: true };
  const namespaces = new Set<string>();
  for (const e of exportTo) {
    if (e === '.') namespaces.add(ownNamespace);
    else if (e !== '~') namespaces.add(e);
  }
  return { all: false, namespaces };
}

export function visibleIn(v: Visibility, namespace: string): boolean {
  return v.all || v.namespaces.has(namespace);
}

/** Indexes `config`; `namespaces` tells which two-label hosts (`name.ns`) name a namespace. */
export function buildIndex(config: ConfigSet, namespaces?: NamespaceSet): ConfigIndex {
  const mesh = meshSettings(config);
  const suffix = mesh.domainSuffix;
  const meshVsByHost = new Map<string, IndexedVs[]>();
  const meshVsWildcard: IndexedVs[] = [];
  const gatewayVs = new Map<string, IndexedVs[]>();
  for (const res of config.ofKind('VirtualService')) {
    const spec = res.body.spec;
    const ns = res.metadata.namespace;
    const hosts = (spec.hosts ?? []).map((h) => resolveHost(h, ns, suffix, namespaces));
    const gateways = (spec.gateways?.length ? spec.gateways : ['mesh']).map((g) => (g === 'mesh' || g.includes('/') ? g : `${ns}/${g}`));
    const ivs: IndexedVs = Object.freeze({ res, hosts, gateways, visibleTo: visibility(spec.exportTo, ns) });
    for (const g of gateways) {
      if (g === 'mesh') {
        for (const h of hosts) {
          if (h.includes('*')) { if (!meshVsWildcard.includes(ivs)) meshVsWildcard.push(ivs); }
          else push(meshVsByHost, h, ivs);
        }
      } else {
        push(gatewayVs, g, ivs);
      }
    }
  }
  const drByHost = new Map<string, IndexedDr[]>();
  const drWildcard: IndexedDr[] = [];
  for (const res of config.ofKind('DestinationRule')) {
    const spec = res.body.spec as { host: string; exportTo?: string[] };
    const ns = res.metadata.namespace;
    const host = resolveHost(spec.host, ns, suffix, namespaces);
    const idr: IndexedDr = Object.freeze({ res, host, visibleTo: visibility(spec.exportTo, ns) });
    if (host.includes('*')) drWildcard.push(idr);
    else push(drByHost, host, idr);
  }
  const resolved = new Map<string, string>();
  const resolve = (host: string, namespace: string): string => {
    const key = `${namespace}/${host}`;
    let fqdn = resolved.get(key);
    if (fqdn === undefined) resolved.set(key, (fqdn = resolveHost(host, namespace, suffix, namespaces)));
    return fqdn;
  };
  return Object.freeze({
    config, mesh, meshHash: hashText(stableJson(mesh)), resolve,
    meshVsByHost, meshVsWildcard, gatewayVs, drByHost, drWildcard,
    gateways: config.ofKind('Gateway'),
    gatewaysHash: hashText(config.ofKind('Gateway').map((g) => g.hash).join(',')),
    selectorDrs: [...drByHost.values()].flat().concat(drWildcard)
      .filter((d) => (d.res.body.spec as { workloadSelector?: unknown }).workloadSelector !== undefined),
  });
}

/** The VirtualService that shapes traffic to `host` for callers in `namespace`: exact hosts first, then wildcards, in load order. */
export function meshVsFor(index: ConfigIndex, host: string, namespace: string): IndexedVs | undefined {
  for (const v of index.meshVsByHost.get(host) ?? []) if (visibleIn(v.visibleTo, namespace)) return v;
  for (const v of index.meshVsWildcard) {
    if (visibleIn(v.visibleTo, namespace) && v.hosts.some((h) => hostMatches(h, host))) return v;
  }
  return undefined;
}

/**
 * The DestinationRule for `host` as seen from a proxy in `namespace` (Istio's
 * lookup order): the proxy's namespace, then the host's own namespace, then
 * the root namespace; exact hosts before wildcards; DRs with a workloadSelector
 * only for workloads they select.
 */
export function drFor(
  index: ConfigIndex,
  host: string,
  namespace: string,
  serviceNamespace: string,
  labels: Readonly<Record<string, string>>,
): IndexedDr | undefined {
  const candidates = [...(index.drByHost.get(host) ?? []), ...index.drWildcard.filter((d) => hostMatches(d.host, host))];
  if (candidates.length === 0) return undefined;
  const applies = (d: IndexedDr): boolean => {
    const sel = (d.res.body.spec as { workloadSelector?: { matchLabels?: Record<string, string> } }).workloadSelector?.matchLabels;
    if (sel && (d.res.metadata.namespace !== namespace || !Object.entries(sel).every(([k, v]) => labels[k] === v))) return false;
    return true;
  };
  for (const ns of [namespace, serviceNamespace, index.mesh.rootNamespace]) {
    const found = candidates.find((d) => d.res.metadata.namespace === ns && applies(d) && (ns === namespace || visibleIn(d.visibleTo, namespace)));
    if (found) return found;
  }
  return undefined;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
