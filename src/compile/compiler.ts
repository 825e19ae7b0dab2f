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
  type Route, type RouteTable, type Snapshot, type SnapshotEndpoint, type TcpRoute, type VirtualHost,
} from '../protocol/snapshot.js';
import { resolveHost } from '../registry/host.js';
import { isHttpProtocol } from '../registry/protocol.js';
import type { Endpoint, Registry, Service, Workload } from '../registry/types.js';
import { buildCluster, type DestinationRuleInput } from './clusters.js';
import { buildIndex, drFor, meshVsFor, visibleIn, type ConfigIndex, type IndexedVs } from './config-index.js';
import { composeHash, hashOf, hashText, withHash } from './hash.js';
import { GenerationalMemo } from './memo.js';
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
}

/** Compiles one snapshot with a fresh compiler (no memo shared with other calls). */
export function compile(config: ConfigSet, registry: Registry, proxy: ProxyRef): Snapshot {
  return createCompiler().compile(config, registry, proxy);
}

export function createCompiler(): Compiler {
  const vhosts = new GenerationalMemo<VirtualHost>();
  const clusters = new GenerationalMemo<Cluster>();
  const endpointLists = new GenerationalMemo<ClusterEndpoints>();
  const views = new GenerationalMemo<View>();
  const nodes = new GenerationalMemo<ProxyNode>();
  const inbounds = new GenerationalMemo<readonly InboundListener[]>();
  const indexes = new WeakMap<ConfigSet, WeakMap<Registry, ConfigIndex>>();
  let lastConfig: ConfigSet | undefined;
  let lastRegistry: Registry | undefined;
  const endpointObjects = new WeakMap<Endpoint, SnapshotEndpoint>();
  /** Views of the current index, shared by every proxy that sees the mesh the same way. */
  const viewsByIndex = new WeakMap<ConfigIndex, Map<string, View>>();

  const indexFor = (config: ConfigSet, registry: Registry): ConfigIndex => {
    if (config !== lastConfig || registry !== lastRegistry) {
      for (const m of [vhosts, clusters, endpointLists, views, nodes, inbounds]) m.advance();
      lastConfig = config;
      lastRegistry = registry;
    }
    let byReg = indexes.get(config);
    if (!byReg) indexes.set(config, (byReg = new WeakMap()));
    let idx = byReg.get(registry);
    if (!idx) {
      const nsSet = new Set(registry.namespaces());
      byReg.set(registry, (idx = buildIndex(config, nsSet)));
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

  const snapshotEndpoint = (e: Endpoint): SnapshotEndpoint => {
    let s = endpointObjects.get(e);
    if (!s) {
      s = Object.freeze({
        instance: e.instance,
        ...(e.address !== undefined ? { address: e.address } : {}),
        port: e.port, labels: e.labels, locality: e.locality, identity: e.identity, weight: e.weight, health: e.health,
      });
      endpointObjects.set(e, s);
    }
    return s;
  };

  /** Clusters and endpoint lists for one service as seen from `ns` (and the proxy's labels, for selector DRs). */
  const serviceClusters = (
    index: ConfigIndex, registry: Registry, svc: Service, port: number, subsets: ReadonlySet<string>, node: ProxyNode,
    outC: Cluster[], outE: ClusterEndpoints[],
  ): void => {
    const idr = drFor(index, svc.hostname, node.namespace, svc.namespace, node.labels);
    const dr = idr?.res.body.spec as DestinationRuleInput | undefined;
    const all = new Set<string | undefined>([undefined, ...subsets, ...(dr?.subsets ?? []).map((s) => s.name)]);
    const eps = registry.endpoints(svc.hostname, port);
    const epsHash = registry.endpointsHash(svc.hostname, port);
    for (const subset of [...all].sort(cmpSubset)) {
      const name = clusterName(port, subset, svc.hostname);
      const subsetLabels = subset !== undefined ? dr?.subsets?.find((s) => s.name === subset)?.labels : undefined;
      const deps = `${svc.hash}|${epsHash}|${idr?.res.hash ?? '-'}|${index.meshHash}`;
      const list = endpointLists.get(name, `${epsHash}|${subset === undefined ? '' : JSON.stringify(subsetLabels ?? null)}`, () => {
        const selected = subset === undefined ? eps : subsetLabels ? eps.filter((e) => labelsMatch(subsetLabels, e.labels)) : [];
        return Object.freeze({ cluster: name, endpoints: Object.freeze(selected.map(snapshotEndpoint)) });
      });
      const cluster = clusters.get(name, deps, () => {
        const identities = [...new Set(list.endpoints.map((e) => e.identity))].sort();
        return withHash(buildCluster({
          name, host: svc.hostname, port, ...(subset !== undefined ? { subset } : {}), service: svc,
          ...(dr ? { dr } : {}), ...(idr ? { drRef: idr.res.ref } : {}),
          connectTimeoutMs: index.mesh.connectTimeoutMs, autoMtls: index.mesh.enableAutoMtls, identities,
        }), hashText(`${name}|${deps}|${identities.join(',')}`));
      });
      outC.push(cluster);
      outE.push(list);
    }
  };

  /** Names a destination's cluster; records which subsets of which service port are used. */
  const namer = (registry: Registry, vsNamespace: string, listenerPort: number, suffix: string, used: Map<string, Set<string>>, namespaces: ReadonlySet<string>) =>
    (host: string, port: number | undefined, subset: string | undefined): string => {
      const fqdn = resolveHost(host, vsNamespace, suffix, namespaces);
      const svc = registry.service(fqdn);
      const p = port ?? (svc && svc.ports.length === 1 ? svc.ports[0]!.port : listenerPort);
      const key = `${fqdn}|${p}`;
      let s = used.get(key);
      if (!s) used.set(key, (s = new Set()));
      if (subset !== undefined) s.add(subset);
      return clusterName(p, subset, fqdn);
    };

  const meshView = (index: ConfigIndex, registry: Registry, node: ProxyNode): View => {
    const ns = node.namespace;
    const suffix = index.mesh.domainSuffix;
    const namespaces = new Set(registry.namespaces());
    const byPort = new Map<number, VirtualHost[]>();
    const tcp: TcpRoute[] = [];
    const used = new Map<string, Set<string>>();
    const visible = registry.services().filter((s) => s.exportTo.includes('*') || s.exportTo.includes(ns));
    for (const svc of visible) {
      for (const sp of svc.ports) {
        used.has(`${svc.hostname}|${sp.port}`) || used.set(`${svc.hostname}|${sp.port}`, new Set());
        const ivs = meshVsFor(index, svc.hostname, ns);
        if (!isHttpProtocol(sp.protocol) && sp.protocol !== 'UNSPECIFIED') {
          tcp.push(tcpRoute(svc, sp.port, ivs, namer(registry, ivs?.res.metadata.namespace ?? ns, sp.port, suffix, used, namespaces)));
          continue;
        }
        const vh = virtualHost(svc, sp.port, ivs, registry, suffix, used, namespaces);
        let list = byPort.get(sp.port);
        if (!list) byPort.set(sp.port, (list = []));
        list.push(vh);
      }
    }
    return assembleView(index, registry, node, byPort, tcp, used);
  };

  const virtualHost = (
    svc: Service, port: number, ivs: IndexedVs | undefined, registry: Registry, suffix: string,
    used: Map<string, Set<string>>, namespaces: ReadonlySet<string>,
  ): VirtualHost => {
    const vsNs = ivs?.res.metadata.namespace ?? svc.namespace;
    const name = namer(registry, vsNs, port, suffix, used, namespaces);
    const key = `${svc.hostname}:${port}`;
    const deps = `${svc.hash}|${ivs?.res.hash ?? '-'}|${destinationDeps(ivs, registry, vsNs, suffix, namespaces)}`;
    const hit = vhosts.get(key, deps, () => {
      const routes: readonly Route[] = ivs?.res.body.spec.http?.length
        ? compileHttpRoutes(ivs.res.metadata.name, ivs.res.body.spec.http, name)
        : [defaultRoute(clusterName(port, undefined, svc.hostname))];
      return withHash(Object.freeze({
        name: key,
        domains: Object.freeze([svc.hostname]),
        ...(ivs ? { source: ivs.res.ref } : {}),
        routes: Object.freeze(routes),
      }), hashText(`${key}|${deps}`));
    });
    // A memo hit skips the namer: record the hit's clusters as used.
    for (const r of hit.routes) if (r.action.kind === 'forward') for (const c of r.action.clusters) markUsed(used, c.cluster);
    return hit;
  };

  const tcpRoute = (svc: Service, port: number, ivs: IndexedVs | undefined, name: ReturnType<typeof namer>): TcpRoute => {
    const rule = ivs?.res.body.spec.tcp?.find((t) => !t.match?.length || t.match.some((m) => m.port === undefined || m.port === port));
    const clustersOut = rule
      ? rule.route.map((d) => Object.freeze({ cluster: name(d.destination.host, d.destination.port?.number, d.destination.subset), weight: d.weight ?? (rule.route.length === 1 ? 100 : 0) }))
      : [Object.freeze({ cluster: clusterName(port, undefined, svc.hostname), weight: 100 })];
    return Object.freeze({ port, host: svc.hostname, clusters: Object.freeze(clustersOut), ...(rule && ivs ? { source: ivs.res.ref } : {}) });
  };

  const assembleView = (
    index: ConfigIndex, registry: Registry, node: ProxyNode, byPort: Map<number, VirtualHost[]>, tcp: TcpRoute[],
    used: Map<string, Set<string>>,
  ): View => {
    const tables: RouteTable[] = [...byPort.entries()].sort((a, b) => a[0] - b[0]).map(([port, vhs]) => {
      vhs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return withHash(Object.freeze({ port, virtualHosts: Object.freeze(vhs) }), composeHash(vhs, `rt${port}`));
    });
    tcp.sort((a, b) => a.port - b.port || (a.host < b.host ? -1 : 1));
    const cs: Cluster[] = [];
    const es: ClusterEndpoints[] = [];
    for (const key of [...used.keys()].sort()) {
      const bar = key.lastIndexOf('|');
      const svc = registry.service(key.slice(0, bar));
      if (!svc) continue;
      const port = Number(key.slice(bar + 1));
      if (!svc.ports.some((p) => p.port === port)) continue;
      serviceClusters(index, registry, svc, port, used.get(key)!, node, cs, es);
    }
    const order = cs.map((c, i) => [c, es[i]!] as const).sort((a, b) => (a[0].name < b[0].name ? -1 : 1));
    const clustersOut = order.map((x) => x[0]);
    const endpointsOut = order.map((x) => x[1]);
    const tcpHash = hashText(JSON.stringify(tcp));
    const viewHash = hashText(composeHash(tables) + tcpHash + composeHash(clustersOut) + composeHash(endpointsOut));
    return views.get(node.kind === 'gateway' ? `gateway|${node.id}` : `mesh|${node.namespace}|${selectorSignature(index, node)}`, viewHash, () => withHash(Object.freeze({
      outbound: Object.freeze({ http: Object.freeze(tables), tcp: Object.freeze(tcp) }),
      clusters: Object.freeze(clustersOut),
      endpoints: Object.freeze(endpointsOut),
    }), viewHash));
  };

  const gatewayView = (index: ConfigIndex, registry: Registry, node: ProxyNode): View => {
    const suffix = index.mesh.domainSuffix;
    const namespaces = new Set(registry.namespaces());
    const byPort = new Map<number, VirtualHost[]>();
    const used = new Map<string, Set<string>>();
    for (const gw of index.gateways) {
      const spec = gw.body.spec;
      if (!spec.selector || !Object.keys(spec.selector).length || !labelsMatch(spec.selector, node.labels)) continue;
      const gwKey = `${gw.metadata.namespace}/${gw.metadata.name}`;
      for (const server of spec.servers ?? []) {
        const port = server.port.number;
        const list = byPort.get(port) ?? [];
        byPort.set(port, list);
        for (const ivs of index.gatewayVs.get(gwKey) ?? []) {
          const vsNs = ivs.res.metadata.namespace;
          const hosts = ivs.hosts.filter((h) => server.hosts.some((sh) => serverHostAllows(sh, h, vsNs)));
          if (!hosts.length || !ivs.res.body.spec.http?.length) continue;
          const key = `${gwKey}|${ivs.res.ref}:${port}`;
          const name = namer(registry, vsNs, port, suffix, used, namespaces);
          const deps = `${ivs.res.hash}|${gw.hash}|${destinationDeps(ivs, registry, vsNs, suffix, namespaces)}`;
          const vh = vhosts.get(key, deps, () => withHash(Object.freeze({
            name: `${hosts.join(',')}:${port}`,
            domains: Object.freeze([...hosts]),
            source: ivs.res.ref,
            routes: Object.freeze(compileHttpRoutes(ivs.res.metadata.name, ivs.res.body.spec.http!, name)),
          }), hashText(`${key}|${deps}`)));
          for (const r of vh.routes) if (r.action.kind === 'forward') for (const c of r.action.clusters) markUsed(used, c.cluster);
          if (!list.includes(vh)) list.push(vh);
        }
      }
    }
    return assembleView(index, registry, node, byPort, [], used);
  };

  const inboundFor = (registry: Registry, w: Workload, node: ProxyNode): readonly InboundListener[] => {
    if (node.kind === 'gateway') return Object.freeze([]);
    const mine = registry.services().filter((s) => s.namespace === w.namespace && s.selector && Object.keys(s.selector).length > 0 && labelsMatch(s.selector, w.labels));
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
      const node = resolveNode(index, registry, proxy);
      const w = registry.workload(proxy.workload, proxy.namespace)!;
      let shared = viewsByIndex.get(index);
      if (!shared) viewsByIndex.set(index, (shared = new Map()));
      const viewKey = node.kind === 'gateway' ? `gateway|${node.id}` : `mesh|${node.namespace}|${selectorSignature(index, node)}`;
      let view = shared.get(viewKey);
      if (!view) {
        view = node.kind === 'gateway' ? gatewayView(index, registry, node) : meshView(index, registry, node);
        shared.set(viewKey, view);
      }
      const inbound = inboundFor(registry, w, node);
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
function destinationDeps(ivs: IndexedVs | undefined, registry: Registry, ns: string, suffix: string, namespaces: ReadonlySet<string>): string {
  if (!ivs) return '';
  let out = '';
  for (const r of ivs.res.body.spec.http ?? []) {
    for (const d of r.route ?? []) {
      out += registry.service(resolveHost(d.destination.host, ns, suffix, namespaces))?.hash ?? '?';
    }
  }
  return out;
}

function markUsed(used: Map<string, Set<string>>, cluster: string): void {
  const [, port, subset, host] = cluster.split('|');
  const key = `${host}|${port}`;
  let s = used.get(key);
  if (!s) used.set(key, (s = new Set()));
  if (subset) s.add(subset);
}

function cmpSubset(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return a < b ? -1 : 1;
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
