/**
 * compile(config, registry, proxy) → that proxy's Snapshot. Pure: no I/O, no
 * clock, no randomness; the same inputs give an equal snapshot. A Compiler
 * keeps memos so that parts whose inputs did not change are the same objects
 * in the next snapshot (virtual hosts, clusters, endpoint lists, whole
 * outbound views), which makes re-snapshotting thousands of proxies cheap:
 *
 * - a proxy's outbound *view* is shared by every proxy that sees the mesh the
 *   same way (same namespace, same selector-bound DestinationRules);
 * - a view is assembled from per-service *slices* (slices.ts), each memoized
 *   on the hashes of what it is built from;
 * - when only VirtualServices and DestinationRules changed, a view is patched:
 *   slices of untouched services are taken from the previous view unseen.
 */
import type { ConfigSet } from '../api/config-set.js';
import { labelsMatch } from '../policy/route-match.js';
import {
  SNAPSHOT_SCHEMA, type Cluster, type ClusterEndpoints, type InboundListener, type OutboundConfig, type ProxyNode,
  type RouteTable, type Snapshot, type TcpRoute, type TlsRoute, type VirtualHost, type WorkloadAccessLogging, type WorkloadMetrics,
} from '../protocol/snapshot.js';
import type { WorkloadAuthz } from '../protocol/authz.js';
import type { WorkloadRequestAuthn } from '../protocol/request-authn.js';
import type { Registry, Service, Workload } from '../registry/types.js';
import { buildIndex, type ConfigIndex } from './config-index.js';
import { gatewayRoutes } from './gateway-view.js';
import { composeHash, hashOf, hashText, withHash } from './hash.js';
import { GenerationalMemo } from './memo.js';
import { compileAuthz } from './authorization.js';
import { compileOutboundRateLimits, compileRateLimits, enforcedOutbound } from './rate-limits.js';
import type { WorkloadRateLimits } from '../protocol/rate-limit.js';
import { compileAccessLogging } from './access-logging.js';
import { compileMetricsTelemetry } from './telemetry-metrics.js';
import { peerAuthnSignature, withPeerAuthn } from './peer-authn.js';
import { compileRequestAuthn, type JwksEntry } from './request-authentication.js';
import { inboundListeners, isGateway, makeNode, selectingServices, selectorSignature, workloadNotFound } from './proxy-node.js';
import { clusterSlice, routeSlice, tlsOf, type SliceMemos } from './slices.js';
import { dirtyHosts, type ClusterSlice, type RouteSlice, type ServiceSlice } from './views.js';

/** Which proxy to compile for: a workload by name (`productpage-v1`), and its namespace when the name is not unique. */
export interface ProxyRef {
  readonly workload: string;
  readonly namespace?: string;
}

export interface Compiler {
  /** `security`: inputs from outside the configuration (the CA's trust bundle), so compilation stays pure. */
  compile(config: ConfigSet, registry: Registry, proxy: ProxyRef, security?: SecurityInput): Snapshot;
  /** The node a proxy ref resolves to, or a TrellisError (TRL1009) naming the known workloads. */
  node(config: ConfigSet, registry: Registry, proxy: ProxyRef): ProxyNode;
}

const NO_JWKS: ReadonlyMap<string, JwksEntry> = new Map();

/** What the control plane's CA contributes to every snapshot. */
export interface SecurityInput {
  /** PEM roots every workload trusts (two during a root rotation). */
  readonly trustBundle: readonly string[];
  /** JWKS fetched by the control plane, by `jwksUri` (RequestAuthentication). */
  readonly jwks?: ReadonlyMap<string, JwksEntry>;
}

interface View {
  readonly outbound: OutboundConfig;
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterEndpoints[];
  /** The slices it was assembled from, by service hostname. */
  readonly slices: ReadonlyMap<string, ServiceSlice>;
}

interface ProxyState {
  readonly node: ProxyNode;
  readonly inbound: readonly InboundListener[];
}

/** Compiles one snapshot with a fresh compiler (no memo shared with other calls). */
export function compile(config: ConfigSet, registry: Registry, proxy: ProxyRef): Snapshot {
  return createCompiler().compile(config, registry, proxy);
}

export function createCompiler(): Compiler {
  const memo: SliceMemos = {
    routes: new GenerationalMemo<RouteSlice>(),
    clusters: new GenerationalMemo<ClusterSlice>(),
    gatewayHosts: new GenerationalMemo<VirtualHost>(),
  };
  const views = new GenerationalMemo<View>();
  const nodes = new GenerationalMemo<ProxyNode>();
  const inbounds = new GenerationalMemo<readonly InboundListener[]>();
  const indexes = new WeakMap<ConfigSet, WeakMap<Registry, ConfigIndex>>();
  /** Views of each index, shared by every proxy that sees the mesh the same way. */
  const viewsByIndex = new WeakMap<ConfigIndex, Map<string, View>>();
  const namespaceSets = new WeakMap<Registry, ReadonlySet<string>>();
  const selecting = new WeakMap<Registry, Map<string, Service[]>>();
  /** Node and inbound listeners per proxy, while the registry and the set of Gateways stay the same. */
  const proxyStates = new WeakMap<Registry, { gatewaysHash: string; states: Map<string, ProxyState> }>();
  let lastConfig: ConfigSet | undefined;
  let lastRegistry: Registry | undefined;
  /**
   * When only VirtualServices and DestinationRules changed since the last
   * configuration (same registry, same mesh settings): the hosts whose slices
   * must be recomputed; views of the last configuration serve the rest.
   */
  let incremental: Set<string> | undefined;
  let previousViews = new Map<string, View>();

  const perRegistry = <T>(m: WeakMap<Registry, T>, registry: Registry, make: () => T): T => {
    let v = m.get(registry);
    if (v === undefined) m.set(registry, (v = make()));
    return v;
  };
  let lastTrust: { readonly key: readonly string[]; readonly bundle: readonly string[]; readonly hash: string } | undefined;
  /** The bundle as one frozen array shared by every snapshot, and its hash. */
  const trustOf = (pems: readonly string[]) => {
    if (lastTrust?.key !== pems) lastTrust = { key: pems, bundle: Object.freeze([...pems]), hash: hashText(pems.join('\n')) };
    return lastTrust;
  };
  /** Security policies of one workload, memoized on the policies, the registry and the workload. */
  const policyMemo = new WeakMap<ConfigIndex, WeakMap<Registry, Map<string, { key: string; authz?: WorkloadAuthz; requestAuthn?: WorkloadRequestAuthn; rateLimits?: WorkloadRateLimits; accessLogging?: WorkloadAccessLogging; metrics?: WorkloadMetrics }>>>();
  const policiesOf = (index: ConfigIndex, registry: Registry, node: ProxyNode, jwks: ReadonlyMap<string, JwksEntry> | undefined) => {
    let byReg = policyMemo.get(index);
    if (!byReg) policyMemo.set(index, (byReg = new WeakMap()));
    let m = byReg.get(registry);
    if (!m) byReg.set(registry, (m = new Map()));
    const key = `${hashOf(node)}|${jwksKey(jwks)}`;
    const hit = m.get(node.id);
    if (hit && hit.key === key) return hit;
    const workload = { namespace: node.namespace, labels: node.labels };
    const authz = compileAuthz({
      policies: index.config.ofKind('AuthorizationPolicy'), workload,
      mesh: { rootNamespace: index.mesh.rootNamespace, trustDomain: index.mesh.trustDomain }, registry,
    });
    const requestAuthn = compileRequestAuthn({ config: index.config, rootNamespace: index.mesh.rootNamespace, workload, jwks: jwks ?? NO_JWKS });
    const rateLimits = compileRateLimits({ policies: index.config.ofKind('RateLimitPolicy'), workload, trustDomain: index.mesh.trustDomain, registry });
    const accessLogging = compileAccessLogging(index.config, index.mesh, { namespace: node.namespace, labels: node.labels, kind: node.kind === 'gateway' ? 'gateway' : 'sidecar' });
    const metrics = compileMetricsTelemetry(index.config, index.mesh, workload);
    const entry = {
      key, ...(authz ? { authz } : {}), ...(requestAuthn ? { requestAuthn } : {}), ...(rateLimits ? { rateLimits } : {}),
      ...(accessLogging ? { accessLogging } : {}), ...(metrics ? { metrics } : {}),
    };
    m.set(node.id, entry);
    return entry;
  };
  /** Caller-side rate limits (RateLimitPolicy `enforce: InboundAndOutbound`), memoized on the view (what the caller reaches) and the node. */
  const outboundLimitMemo = new WeakMap<ConfigIndex, WeakMap<View, Map<string, { key: string; limits: WorkloadRateLimits | undefined }>>>();
  const reachableOf = new WeakMap<View, ReadonlySet<string>>();
  const outboundLimitsOf = (index: ConfigIndex, registry: Registry, node: ProxyNode, view: View): WorkloadRateLimits | undefined => {
    const policies = index.config.ofKind('RateLimitPolicy');
    if (!policies.some(enforcedOutbound)) return undefined;
    let byView = outboundLimitMemo.get(index);
    if (!byView) outboundLimitMemo.set(index, (byView = new WeakMap()));
    let m = byView.get(view);
    if (!m) byView.set(view, (m = new Map()));
    const key = hashOf(node);
    const hit = m.get(node.id);
    if (hit && hit.key === key) return hit.limits;
    let reachable = reachableOf.get(view);
    if (!reachable) reachableOf.set(view, (reachable = new Set(view.clusters.map((c) => c.service))));
    const limits = compileOutboundRateLimits({ policies, caller: node, reachable, trustDomain: index.mesh.trustDomain, registry });
    m.set(node.id, { key, limits });
    return limits;
  };
  const jwksKeys = new WeakMap<ReadonlyMap<string, JwksEntry>, string>();
  const jwksKey = (jwks: ReadonlyMap<string, JwksEntry> | undefined): string => {
    if (!jwks) return '';
    let k = jwksKeys.get(jwks);
    if (k === undefined) jwksKeys.set(jwks, (k = [...jwks].map(([u, e]) => `${u}@${e.version ?? ''}`).join(',')));
    return k;
  };
  const namespaceSet = (registry: Registry) => perRegistry(namespaceSets, registry, () => new Set(registry.namespaces()));

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
      for (const m of [memo.routes, memo.clusters, memo.gatewayHosts, views, nodes, inbounds]) m.advance();
      lastConfig = config;
      lastRegistry = registry;
    }
    return idx;
  };

  const resolveWorkload = (registry: Registry, proxy: ProxyRef): Workload => {
    const w = registry.workload(proxy.workload, proxy.namespace);
    if (!w) throw workloadNotFound(registry, proxy.workload, proxy.namespace);
    return w;
  };

  const nodeOf = (index: ConfigIndex, w: Workload): ProxyNode => {
    const gateway = isGateway(index, w);
    return nodes.get(`${w.name}.${w.namespace}`, `${w.hash}|${gateway}`, () => makeNode(w, gateway));
  };

  const proxyState = (index: ConfigIndex, registry: Registry, proxy: ProxyRef): ProxyState => {
    // Gateways decide which workloads are gateways; PeerAuthentications decide the inbound ports' mTLS modes.
    const stateKey = `${index.gatewaysHash}|${peerAuthnSignature(index.config)}`;
    let entry = perRegistry(proxyStates, registry, () => ({ gatewaysHash: stateKey, states: new Map<string, ProxyState>() }));
    if (entry.gatewaysHash !== stateKey) proxyStates.set(registry, (entry = { gatewaysHash: stateKey, states: new Map() }));
    const states = entry.states;
    const key = `${proxy.workload}|${proxy.namespace ?? ''}`;
    let state = states.get(key);
    if (!state) {
      const w = resolveWorkload(registry, proxy);
      const node = nodeOf(index, w);
      let inbound: readonly InboundListener[] = Object.freeze([]);
      if (node.kind === 'sidecar') {
        const mine = (perRegistry(selecting, registry, () => selectingServices(registry)).get(w.namespace) ?? [])
          .filter((s) => labelsMatch(s.selector!, w.labels));
        const deps = `${mine.map((s) => s.hash).join(',')}|${w.hash}|${stateKey}|${index.mesh.rootNamespace}`;
        inbound = inbounds.get(node.id, deps, () => withHash(withPeerAuthn(inboundListeners(mine, w), index.config, index.mesh.rootNamespace, w.namespace, w.labels), hashText(deps)));
      }
      states.set(key, (state = { node, inbound }));
    }
    return state;
  };

  const meshView = (index: ConfigIndex, registry: Registry, node: ProxyNode, key: string): View => {
    const ns = node.namespace;
    const prev = incremental ? previousViews.get(key) : undefined;
    const slices = new Map<string, ServiceSlice>();
    for (const svc of registry.services()) {
      if (!svc.exportTo.includes('*') && !svc.exportTo.includes(ns)) continue;
      const old = prev && !incremental!.has(svc.hostname) ? prev.slices.get(svc.hostname) : undefined;
      slices.set(svc.hostname, old ?? {
        routes: routeSlice(memo, index, registry, svc, ns),
        clusters: clusterSlice(memo, index, registry, svc, node),
      });
    }
    return assembleView(key, slices, [...slices.values()].map((s) => s.routes));
  };

  const gatewayView = (index: ConfigIndex, registry: Registry, node: ProxyNode, key: string): View => {
    const { routes, targets, gatewaysByPort } = gatewayRoutes(memo, index, registry, node);
    const slices = new Map<string, ServiceSlice>();
    const none: RouteSlice = Object.freeze({ vhosts: Object.freeze([]), tcp: Object.freeze([]) });
    for (const host of targets) {
      const svc = registry.service(host);
      if (svc) slices.set(host, { routes: none, clusters: clusterSlice(memo, index, registry, svc, node) });
    }
    return assembleView(key, slices, [routes], gatewaysByPort);
  };

  /** Puts slices together: route tables by port, TCP routes, clusters and endpoints in service order. */
  const assembleView = (
    key: string, slices: ReadonlyMap<string, ServiceSlice>, routeParts: readonly RouteSlice[],
    gatewaysByPort?: ReadonlyMap<number, readonly string[]>,
  ): View => {
    const byPort = new Map<number, VirtualHost[]>();
    const tcp: TcpRoute[] = [];
    const tls: TlsRoute[] = [];
    for (const r of routeParts) {
      for (const vh of r.vhosts) {
        const port = Number(vh.name.slice(vh.name.lastIndexOf(':') + 1));
        let list = byPort.get(port);
        if (!list) byPort.set(port, (list = []));
        if (!list.includes(vh)) list.push(vh);
      }
      for (const t of r.tcp) tcp.push(t);
      for (const t of tlsOf(r)) tls.push(t);
    }
    const tables: RouteTable[] = [...byPort.entries()].sort((a, b) => a[0] - b[0]).map(([port, vhs]) => {
      vhs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const gateways = gatewaysByPort?.get(port);
      return Object.freeze(gateways ? { port, gateways, virtualHosts: Object.freeze(vhs) } : { port, virtualHosts: Object.freeze(vhs) });
    });
    // Stable sorts: the routes of one host and port keep their rule order, TLS routes of a port theirs.
    tcp.sort((a, b) => a.port - b.port || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
    tls.sort((a, b) => a.port - b.port);
    const cs: Cluster[] = [];
    const es: ClusterEndpoints[] = [];
    const parts: object[] = [...routeParts];
    for (const s of slices.values()) {
      parts.push(s.clusters);
      for (const c of s.clusters.clusters) cs.push(c);
      for (const e of s.clusters.endpoints) es.push(e);
    }
    const viewHash = composeHash(parts, key + (gatewaysByPort ? JSON.stringify([...gatewaysByPort]) : ''));
    return views.get(key, viewHash, () => withHash(Object.freeze({
      outbound: Object.freeze({ http: Object.freeze(tables), tcp: Object.freeze(tcp), ...(tls.length ? { tls: Object.freeze(tls) } : {}) }),
      clusters: Object.freeze(cs),
      endpoints: Object.freeze(es),
      slices,
    }), viewHash));
  };

  return {
    node(config, registry, proxy) {
      return nodeOf(indexFor(config, registry), resolveWorkload(registry, proxy));
    },
    compile(config, registry, proxy, security) {
      const index = indexFor(config, registry);
      const { node, inbound } = proxyState(index, registry, proxy);
      let shared = viewsByIndex.get(index);
      if (!shared) viewsByIndex.set(index, (shared = new Map()));
      const viewKey = node.kind === 'gateway' ? `gateway|${node.id}` : `mesh|${node.namespace}|${selectorSignature(index, node)}`;
      let view = shared.get(viewKey);
      if (!view) {
        view = node.kind === 'gateway' ? gatewayView(index, registry, node, viewKey) : meshView(index, registry, node, viewKey);
        shared.set(viewKey, view);
      }
      const trust = security?.trustBundle.length ? trustOf(security.trustBundle) : undefined;
      const { authz, requestAuthn, rateLimits, accessLogging, metrics } = policiesOf(index, registry, node, security?.jwks);
      const outboundRateLimits = outboundLimitsOf(index, registry, node, view);
      const version = hashText(`${hashOf(node)}|${index.meshHash}|${hashOf(inbound)}|${hashOf(view)}${trust ? `|${trust.hash}` : ''}` +
        `${authz ? `|${hashOf(authz)}` : ''}${requestAuthn ? `|${hashOf(requestAuthn)}` : ''}${rateLimits ? `|rl:${hashOf(rateLimits)}` : ''}` +
        `${outboundRateLimits ? `|orl:${hashOf(outboundRateLimits)}` : ''}${accessLogging ? `|al:${hashOf(accessLogging)}` : ''}` +
        `${metrics ? `|tm:${hashOf(metrics)}` : ''}`);
      return Object.freeze({
        schema: SNAPSHOT_SCHEMA, version, node, mesh: index.mesh, inbound,
        outbound: view.outbound, clusters: view.clusters, endpoints: view.endpoints,
        ...(trust ? { trustBundle: trust.bundle } : {}),
        ...(authz ? { authz } : {}),
        ...(requestAuthn ? { requestAuthn } : {}),
        ...(rateLimits ? { rateLimits } : {}),
        ...(outboundRateLimits ? { outboundRateLimits } : {}),
        ...(accessLogging ? { accessLogging } : {}),
        ...(metrics ? { metrics } : {}),
      });
    },
  };
}
