/**
 * compile(config, registry, proxy) → that proxy's Snapshot. Pure: no I/O, no
 * clock, no randomness; the same inputs give an equal snapshot. A Compiler
 * keeps memos so that parts whose inputs did not change are the same objects
 * in the next snapshot (virtual hosts, clusters, endpoint lists, whole
 * outbound views), which makes re-snapshotting thousands of proxies cheap.
 */
import type { ConfigSet } from '../api/config-set.js';
import { diagnostic, TrellisError } from '../api/diagnostic.js';
import { labelsMatch } from '../policy/route-match.js';
import {
  SNAPSHOT_SCHEMA, type Cluster, type ClusterEndpoints, type InboundListener, type OutboundConfig, type ProxyNode,
  type Route, type RouteTable, type Snapshot, type TcpRoute, type VirtualHost,
} from '../protocol/snapshot.js';
import { isHttpProtocol } from '../registry/protocol.js';
import type { Registry, Service, Workload } from '../registry/types.js';
import { buildCluster, type DestinationRuleInput } from './clusters.js';
import { buildIndex, drFor, meshVsFor, visibleIn, type ConfigIndex, type IndexedVs } from './config-index.js';
import { composeHash, hashOf, hashText, withHash } from './hash.js';
import { GenerationalMemo } from './memo.js';
import { dirtyHosts, type ClusterSlice, type RouteSlice, type ServiceSlice } from './views.js';
import { clusterName, compileHttpRoutes, defaultRoute } from './routes.js';

/** Which proxy to compile for: a workload by name (`productpage-v1`, `sleep.default`). */
export interface ProxyRef {
  readonly workload: string;
  readonly namespace?: string;
}

export interface Compiler {
  compile(config: ConfigSet, registry: Registry, proxy: ProxyRef): Snapshot;
  /** The node a proxy ref resolves to, or a TrellisError (TRL1009) naming the known workloads. */
  node(config: ConfigSet, registry: Registry, proxy: ProxyRef): ProxyNode;
}

interface View {
  readonly outbound: OutboundConfig;
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterEndpoints[];
  /** The slices it was assembled from, by service hostname. */
  readonly slices: ReadonlyMap<string, ServiceSlice>;
}

/** Compiles one snapshot with a fresh compiler (no memo shared with other calls). */
export function compile(config: ConfigSet, registry: Registry, proxy: ProxyRef): Snapshot {
  return createCompiler().compile(config, registry, proxy);
}

export function createCompiler(): Compiler {
  const routeSlices = new GenerationalMemo<RouteSlice>();
  const clusterSlices = new GenerationalMemo<ClusterSlice>();
  const gatewayHosts = new GenerationalMemo<VirtualHost>();
  const views = new GenerationalMemo<View>();
  const nodes = new GenerationalMemo<ProxyNode>();
  const inbounds = new GenerationalMemo<readonly InboundListener[]>();
  const indexes = new WeakMap<ConfigSet, WeakMap<Registry, ConfigIndex>>();
  let lastConfig: ConfigSet | undefined;
  let lastRegistry: Registry | undefined;
  /**
   * When only VirtualServices and DestinationRules changed since the last
   * configuration (same registry, same mesh settings): the hosts whose slices
   * must be recomputed; views of the last configuration serve the rest.
   */
  let incremental: Set<string> | undefined;
  let previousViews = new Map<string, View>();
  const namespaceSets = new WeakMap<Registry, ReadonlySet<string>>();
  const namespaceSet = (registry: Registry): ReadonlySet<string> => {
    let s = namespaceSets.get(registry);
    if (!s) namespaceSets.set(registry, (s = new Set(registry.namespaces())));
    return s;
  };
  /** Views of the current index, shared by every proxy that sees the mesh the same way. */
  const viewsByIndex = new WeakMap<ConfigIndex, Map<string, View>>();

  const indexFor = (config: ConfigSet, registry: Registry): ConfigIndex => {
    let byReg = indexes.get(config);
    if (!byReg) indexes.set(config, (byReg = new WeakMap()));
    let idx = byReg.get(registry);
    if (!idx) byReg.set(registry, (idx = buildIndex(config, namespaceSet(registry))));
    if (config !== lastConfig || registry !== lastRegistry) {
      const prevIdx = lastConfig && lastRegistry ? indexes.get(lastConfig)?.get(lastRegistry) : undefined;
      incremental = prevIdx && registry === lastRegistry && prevIdx.meshHash === idx.meshHash
        ? dirtyHosts(lastConfig!, config, registry, idx.mesh.domainSuffix, namespaceSet(registry))
        : undefined;
      previousViews = prevIdx ? (viewsByIndex.get(prevIdx) ?? new Map()) : new Map();
      for (const m of [routeSlices, clusterSlices, gatewayHosts, views, nodes, inbounds]) m.advance();
      lastConfig = config;
      lastRegistry = registry;
    }
    return idx;
  };

  const resolveNode = (index: ConfigIndex, registry: Registry, proxy: ProxyRef): ProxyNode => {
    const w = registry.workload(proxy.workload, proxy.namespace);
    if (!w) {
      const known = registry.workloads().map((x) => `${x.name}.${x.namespace}`);
      throw TrellisError.from(diagnostic('WorkloadNotFound', {
        name: proxy.workload,
        where: proxy.namespace ? ` in namespace ${proxy.namespace}` : '',
        known: known.length ? known.slice(0, 20).join(', ') + (known.length > 20 ? ', …' : '') : '(none)',
      }));
    }
    const gateway = index.gateways.some((g) => {
      const sel = (g.body.spec as { selector?: Record<string, string> }).selector;
      return sel !== undefined && Object.keys(sel).length > 0 && labelsMatch(sel, w.labels);
    });
    return nodes.get(`${w.name}.${w.namespace}`, `${w.hash}|${gateway}`, () => makeNode(w, gateway));
  };

  /** The clusters (default subset + every DestinationRule subset, per port) and endpoint lists of one service. */
  const clusterSlice = (index: ConfigIndex, registry: Registry, svc: Service, node: ProxyNode): ClusterSlice => {
    const idr = drFor(index, svc.hostname, node.namespace, svc.namespace, node.labels);
    const dr = idr?.res.body.spec as DestinationRuleInput | undefined;
    let deps = `${svc.hash}|${idr?.res.hash ?? '-'}|${index.meshHash}`;
    for (const sp of svc.ports) deps += `|${registry.endpointsHash(svc.hostname, sp.port)}`;
    return clusterSlices.get(svc.hostname, deps, () => {
      const cs: Cluster[] = [];
      const es: ClusterEndpoints[] = [];
      const subsets: (string | undefined)[] = [undefined, ...new Set((dr?.subsets ?? []).map((x) => x.name))];
      for (const sp of svc.ports) {
        const eps = registry.endpoints(svc.hostname, sp.port);
        // Secure naming: any identity the service runs as, for every subset (as Istio does).
        const identities = [...new Set(eps.map((e) => e.identity))].sort();
        for (const subset of subsets) {
          const name = clusterName(sp.port, subset, svc.hostname);
          const labels = subset !== undefined ? dr?.subsets?.find((x) => x.name === subset)?.labels : undefined;
          const selected = subset === undefined ? eps : eps.filter((e) => labelsMatch(labels ?? {}, e.labels));
          const list: ClusterEndpoints = Object.freeze({ cluster: name, endpoints: subset === undefined ? eps : Object.freeze(selected) });
          cs.push(buildCluster({
            name, host: svc.hostname, port: sp.port, ...(subset !== undefined ? { subset } : {}), service: svc,
            ...(dr ? { dr } : {}), ...(idr ? { drRef: idr.res.ref } : {}),
            connectTimeoutMs: index.mesh.connectTimeoutMs, autoMtls: index.mesh.enableAutoMtls, identities,
          }));
          es.push(list);
        }
      }
      return withHash(Object.freeze({ clusters: Object.freeze(cs), endpoints: Object.freeze(es) }), `c|${svc.hostname}|${deps}`);
    });
  };

  /** Names a destination's cluster: host resolved in the VirtualService's namespace, port from the destination, the service's only port, or the listener's. */
  const namer = (index: ConfigIndex, registry: Registry, vsNamespace: string, listenerPort: number) =>
    (host: string, port: number | undefined, subset: string | undefined): string => {
      const fqdn = index.resolve(host, vsNamespace);
      const svc = registry.service(fqdn);
      const p = port ?? (svc && svc.ports.length === 1 ? svc.ports[0]!.port : listenerPort);
      return clusterName(p, subset, fqdn);
    };

  /** The virtual hosts (HTTP ports) and TCP routes (other ports) of one service, for callers in `ns`. */
  const routeSlice = (index: ConfigIndex, registry: Registry, svc: Service, ns: string): RouteSlice => {
    const ivs = meshVsFor(index, svc.hostname, ns);
    const vsNs = ivs?.res.metadata.namespace ?? svc.namespace;
    const deps = `${svc.hash}|${ivs?.res.hash ?? '-'}|${destinationDeps(index, ivs, registry, vsNs)}`;
    return routeSlices.get(svc.hostname, deps, () => {
      const vhs: VirtualHost[] = [];
      const tcp: TcpRoute[] = [];
      for (const sp of svc.ports) {
        const name = namer(index, registry, vsNs, sp.port);
        if (!isHttpProtocol(sp.protocol) && sp.protocol !== 'UNSPECIFIED') {
          tcp.push(tcpRoute(svc, sp.port, ivs, name));
          continue;
        }
        const key = `${svc.hostname}:${sp.port}`;
        const routes: readonly Route[] = ivs?.res.body.spec.http?.length
          ? compileHttpRoutes(ivs.res.metadata.name, ivs.res.body.spec.http, name)
          : [defaultRoute(clusterName(sp.port, undefined, svc.hostname))];
        vhs.push(Object.freeze({
          name: key,
          domains: Object.freeze([svc.hostname]),
          ...(ivs ? { source: ivs.res.ref } : {}),
          routes: Object.freeze(routes),
        }));
      }
      return withHash(Object.freeze({ vhosts: Object.freeze(vhs), tcp: Object.freeze(tcp) }), `r|${svc.hostname}|${deps}`);
    });
  };

  const meshView = (index: ConfigIndex, registry: Registry, node: ProxyNode, key: string): View => {
    const ns = node.namespace;
    const prev = incremental ? previousViews.get(key) : undefined;
    const slices = new Map<string, ServiceSlice>();
    for (const svc of registry.services()) {
      if (!svc.exportTo.includes('*') && !svc.exportTo.includes(ns)) continue;
      const old = prev && !incremental!.has(svc.hostname) ? prev.slices.get(svc.hostname) : undefined;
      slices.set(svc.hostname, old ?? {
        routes: routeSlice(index, registry, svc, ns),
        clusters: clusterSlice(index, registry, svc, node),
      });
    }
    return assembleView(key, slices, [...slices.values()].map((s) => s.routes));
  };

  const tcpRoute = (svc: Service, port: number, ivs: IndexedVs | undefined, name: ReturnType<typeof namer>): TcpRoute => {
    const rule = ivs?.res.body.spec.tcp?.find((t) => !t.match?.length || t.match.some((m) => m.port === undefined || m.port === port));
    const clustersOut = rule
      ? rule.route.map((d) => Object.freeze({ cluster: name(d.destination.host, d.destination.port?.number, d.destination.subset), weight: d.weight ?? (rule.route.length === 1 ? 100 : 0) }))
      : [Object.freeze({ cluster: clusterName(port, undefined, svc.hostname), weight: 100 })];
    return Object.freeze({ port, host: svc.hostname, clusters: Object.freeze(clustersOut), ...(rule && ivs ? { source: ivs.res.ref } : {}) });
  };

  /** Puts slices together: route tables by port, TCP routes, clusters and endpoints in service order. */
  const assembleView = (key: string, slices: ReadonlyMap<string, ServiceSlice>, routeParts: readonly RouteSlice[]): View => {
    const byPort = new Map<number, VirtualHost[]>();
    const tcp: TcpRoute[] = [];
    for (const r of routeParts) {
      for (const vh of r.vhosts) {
        const port = Number(vh.name.slice(vh.name.lastIndexOf(':') + 1));
        let list = byPort.get(port);
        if (!list) byPort.set(port, (list = []));
        if (!list.includes(vh)) list.push(vh);
      }
      for (const t of r.tcp) tcp.push(t);
    }
    const tables: RouteTable[] = [...byPort.entries()].sort((a, b) => a[0] - b[0]).map(([port, vhs]) => {
      vhs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return Object.freeze({ port, virtualHosts: Object.freeze(vhs) });
    });
    tcp.sort((a, b) => a.port - b.port || (a.host < b.host ? -1 : 1));
    const cs: Cluster[] = [];
    const es: ClusterEndpoints[] = [];
    const parts: object[] = [...routeParts];
    for (const s of slices.values()) {
      parts.push(s.clusters);
      for (const c of s.clusters.clusters) cs.push(c);
      for (const e of s.clusters.endpoints) es.push(e);
    }
    const viewHash = composeHash(parts, key);
    const view = views.get(key, viewHash, () => withHash(Object.freeze({
      outbound: Object.freeze({ http: Object.freeze(tables), tcp: Object.freeze(tcp) }),
      clusters: Object.freeze(cs),
      endpoints: Object.freeze(es),
      slices,
    }), viewHash));
    return view;
  };

  const gatewayView = (index: ConfigIndex, registry: Registry, node: ProxyNode, viewKey: string): View => {
    const vhs: VirtualHost[] = [];
    const targets = new Set<string>();
    for (const gw of index.gateways) {
      const spec = gw.body.spec;
      if (!spec.selector || !Object.keys(spec.selector).length || !labelsMatch(spec.selector, node.labels)) continue;
      const gwKey = `${gw.metadata.namespace}/${gw.metadata.name}`;
      for (const server of spec.servers ?? []) {
        const port = server.port.number;
        for (const ivs of index.gatewayVs.get(gwKey) ?? []) {
          const vsNs = ivs.res.metadata.namespace;
          const hosts = ivs.hosts.filter((h) => server.hosts.some((sh) => serverHostAllows(sh, h, vsNs)));
          if (!hosts.length || !ivs.res.body.spec.http?.length) continue;
          const key = `${gwKey}|${ivs.res.ref}:${port}`;
          const deps = `${ivs.res.hash}|${gw.hash}|${hosts.join(',')}|${destinationDeps(index, ivs, registry, vsNs)}`;
          const vh = gatewayHosts.get(key, deps, () => withHash(Object.freeze({
            name: `${hosts.join(',')}:${port}`,
            domains: Object.freeze([...hosts]),
            source: ivs.res.ref,
            routes: Object.freeze(compileHttpRoutes(ivs.res.metadata.name, ivs.res.body.spec.http!, namer(index, registry, vsNs, port))),
          }), hashText(`${key}|${deps}`)));
          for (const r of vh.routes) if (r.action.kind === 'forward') for (const c of r.action.clusters) targets.add(c.cluster.split('|')[3]!);
          vhs.push(vh);
        }
      }
    }
    const slices = new Map<string, ServiceSlice>();
    const empty: RouteSlice = Object.freeze({ vhosts: Object.freeze([]), tcp: Object.freeze([]) });
    for (const host of [...targets].sort()) {
      const svc = registry.service(host);
      if (svc) slices.set(host, { routes: empty, clusters: clusterSlice(index, registry, svc, node) });
    }
    const routes: RouteSlice = withHash(Object.freeze({ vhosts: Object.freeze(vhs), tcp: Object.freeze([]) }), composeHash(vhs, 'gw'));
    return assembleView(viewKey, slices, [routes]);
  };

  /** Services selecting each workload, per registry (found once, not per compile). */
  const servedBy = new WeakMap<Registry, Map<string, readonly Service[]>>();
  const selecting = new WeakMap<Registry, Map<string, Service[]>>();
  /** Node and inbound listeners per proxy, while the registry and the set of Gateways stay the same. */
  const proxyStates = new WeakMap<Registry, Map<string, { readonly node: ProxyNode; readonly inbound: readonly InboundListener[]; readonly w: Workload }>>();
  const servicesOf = (registry: Registry, w: Workload): readonly Service[] => {
    let byWorkload = servedBy.get(registry);
    if (!byWorkload) servedBy.set(registry, (byWorkload = new Map()));
    const id = `${w.name}.${w.namespace}`;
    let mine = byWorkload.get(id);
    if (!mine) {
      let byNs = selecting.get(registry);
      if (!byNs) {
        selecting.set(registry, (byNs = new Map()));
        for (const s of registry.services()) {
          // An empty selector (ServiceEntry `workloadSelector: {}`) selects every workload of the namespace.
          if (!s.selector) continue;
          const list = byNs.get(s.namespace);
          if (list) list.push(s);
          else byNs.set(s.namespace, [s]);
        }
      }
      mine = (byNs.get(w.namespace) ?? []).filter((s) => labelsMatch(s.selector!, w.labels));
      byWorkload.set(id, mine);
    }
    return mine;
  };

  const inboundFor = (registry: Registry, w: Workload, node: ProxyNode): readonly InboundListener[] => {
    if (node.kind === 'gateway') return Object.freeze([]);
    const mine = servicesOf(registry, w);
    const deps = mine.map((s) => s.hash).join(',') + '|' + w.hash;
    return inbounds.get(node.id, deps, () => {
      const out: InboundListener[] = [];
      for (const s of mine) {
        for (const sp of s.ports) {
          const target = typeof sp.targetPort === 'number' ? sp.targetPort : w.ports[sp.targetPort];
          if (target === undefined) continue;
          out.push(Object.freeze({ name: `inbound|${sp.port}|${s.hostname}`, service: s.hostname, port: sp.port, targetPort: target, protocol: sp.protocol }));
        }
      }
      out.sort((a, b) => (a.name < b.name ? -1 : 1));
      return withHash(Object.freeze(out), hashText(deps));
    });
  };

  return {
    node(config, registry, proxy) {
      return resolveNode(indexFor(config, registry), registry, proxy);
    },
    compile(config, registry, proxy) {
      const index = indexFor(config, registry);
      let states = proxyStates.get(registry);
      if (!states) proxyStates.set(registry, (states = new Map()));
      const stateKey = `${index.gatewaysHash}|${proxy.workload}|${proxy.namespace ?? ''}`;
      let state = states.get(stateKey);
      if (!state) {
        const node = resolveNode(index, registry, proxy);
        const w = registry.workload(proxy.workload, proxy.namespace)!;
        state = { node, w, inbound: inboundFor(registry, w, node) };
        states.set(stateKey, state);
      }
      const { node, inbound } = state;
      let shared = viewsByIndex.get(index);
      if (!shared) viewsByIndex.set(index, (shared = new Map()));
      const viewKey = node.kind === 'gateway' ? `gateway|${node.id}` : `mesh|${node.namespace}|${selectorSignature(index, node)}`;
      let view = shared.get(viewKey);
      if (!view) {
        view = node.kind === 'gateway' ? gatewayView(index, registry, node, viewKey) : meshView(index, registry, node, viewKey);
        shared.set(viewKey, view);
      }
      const version = hashText(`${hashOf(node)}|${index.meshHash}|${hashOf(inbound)}|${hashOf(view)}`);
      return Object.freeze({
        schema: SNAPSHOT_SCHEMA, version, node, mesh: index.mesh, inbound,
        outbound: view.outbound, clusters: view.clusters, endpoints: view.endpoints,
      });
    },
  };
}

/**
 * Which DestinationRules with a workloadSelector apply to this proxy: the only
 * way a proxy's labels change its outbound view (sourceLabels matches are
 * decided by the router against the node's labels).
 */
function selectorSignature(index: ConfigIndex, node: ProxyNode): string {
  let sig = '';
  for (const d of index.selectorDrs) {
    if (d.res.metadata.namespace !== node.namespace) continue;
    const sel = (d.res.body.spec as { workloadSelector?: { matchLabels?: Record<string, string> } }).workloadSelector?.matchLabels ?? {};
    if (labelsMatch(sel, node.labels)) sig += `${d.res.key};`;
  }
  return sig;
}

function makeNode(w: Workload, gateway: boolean): ProxyNode {
  const node: ProxyNode = Object.freeze({
    id: `${w.name}.${w.namespace}`,
    kind: gateway ? 'gateway' : 'sidecar',
    workload: w.name,
    namespace: w.namespace,
    labels: w.labels,
    serviceAccount: w.serviceAccount,
    identity: w.identity,
    locality: w.locality,
  });
  return withHash(node, hashText(JSON.stringify(node)));
}

/** What a VirtualService's destinations resolve against: the destination services' hashes. */
function destinationDeps(index: ConfigIndex, ivs: IndexedVs | undefined, registry: Registry, ns: string): string {
  if (!ivs) return '';
  let out = '';
  for (const r of ivs.res.body.spec.http ?? []) {
    for (const d of r.route ?? []) {
      out += registry.service(index.resolve(d.destination.host, ns))?.hash ?? '?';
    }
  }
  return out;
}

/** Gateway server hosts are `host` or `namespace/host`; `*` and `./` as in Istio. */
function serverHostAllows(serverHost: string, vsHost: string, vsNamespace: string): boolean {
  const slash = serverHost.indexOf('/');
  let ns = '*';
  let host = serverHost;
  if (slash >= 0) { ns = serverHost.slice(0, slash); host = serverHost.slice(slash + 1); }
  if (ns !== '*' && ns !== '.' && ns !== vsNamespace) return false;
  const h = host.toLowerCase();
  const v = vsHost.toLowerCase();
  if (h === '*' || h === v) return true;
  if (h.startsWith('*.')) return v.endsWith(h.slice(1)) || (v.startsWith('*.') && v.endsWith(h.slice(1)));
  if (v === '*') return true;
  if (v.startsWith('*.')) return h.endsWith(v.slice(1));
  return false;
}

export { visibleIn };
