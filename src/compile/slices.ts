/**
 * Building one service's slice of an outbound view: its virtual hosts or TCP
 * routes (routeSlice) and its clusters with endpoint lists (clusterSlice),
 * each memoized on the hashes of exactly what it is built from.
 */
import { labelsMatch } from '../policy/route-match.js';
import type { Cluster, ClusterEndpoints, ProxyNode, Route, TcpRoute, VirtualHost } from '../protocol/snapshot.js';
import { isHttpProtocol } from '../registry/protocol.js';
import type { Registry, Service } from '../registry/types.js';
import { buildCluster, type DestinationRuleInput } from './clusters.js';
import { drFor, meshVsFor, type ConfigIndex, type IndexedVs } from './config-index.js';
import { withHash } from './hash.js';
import type { GenerationalMemo } from './memo.js';
import { clusterName, compileHttpRoutes, defaultRoute, type ClusterNamer } from './routes.js';
import type { ClusterSlice, RouteSlice } from './views.js';

export interface SliceMemos {
  readonly routes: GenerationalMemo<RouteSlice>;
  readonly clusters: GenerationalMemo<ClusterSlice>;
  readonly gatewayHosts: GenerationalMemo<VirtualHost>;
}

/**
 * Names a destination's cluster: the host resolved in the VirtualService's
 * namespace; the port from the destination, else the service's only port,
 * else the listener's.
 */
export function destinationNamer(index: ConfigIndex, registry: Registry, vsNamespace: string, listenerPort: number): ClusterNamer {
  return (host, port, subset) => {
    const fqdn = index.resolve(host, vsNamespace);
    const svc = registry.service(fqdn);
    const p = port ?? (svc && svc.ports.length === 1 ? svc.ports[0]!.port : listenerPort);
    return clusterName(p, subset, fqdn);
  };
}

/** What a VirtualService's destinations resolve against: the destination services' hashes. */
export function destinationDeps(index: ConfigIndex, ivs: IndexedVs | undefined, registry: Registry, ns: string): string {
  if (!ivs) return '';
  let out = '';
  const spec = ivs.res.body.spec;
  for (const r of spec.http ?? []) for (const d of r.route ?? []) out += registry.service(index.resolve(d.destination.host, ns))?.hash ?? '?';
  for (const r of spec.tcp ?? []) for (const d of r.route) out += registry.service(index.resolve(d.destination.host, ns))?.hash ?? '?';
  return out;
}

/** The clusters (default subset + every DestinationRule subset, per port) and endpoint lists of one service. */
export function clusterSlice(memo: SliceMemos, index: ConfigIndex, registry: Registry, svc: Service, node: ProxyNode): ClusterSlice {
  const idr = drFor(index, svc.hostname, node.namespace, svc.namespace, node.labels);
  const dr = idr?.res.body.spec as DestinationRuleInput | undefined;
  let deps = `${svc.hash}|${idr?.res.hash ?? '-'}|${index.meshHash}`;
  for (const sp of svc.ports) deps += `|${registry.endpointsHash(svc.hostname, sp.port)}`;
  return memo.clusters.get(svc.hostname, deps, () => {
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
        const endpoints = subset === undefined ? eps : Object.freeze(eps.filter((e) => labelsMatch(labels ?? {}, e.labels)));
        cs.push(buildCluster({
          name, host: svc.hostname, port: sp.port, ...(subset !== undefined ? { subset } : {}), service: svc,
          ...(dr ? { dr } : {}), ...(idr ? { drRef: idr.res.ref } : {}),
          connectTimeoutMs: index.mesh.connectTimeoutMs, autoMtls: index.mesh.enableAutoMtls, identities,
        }));
        es.push(Object.freeze({ cluster: name, endpoints }));
      }
    }
    return withHash(Object.freeze({ clusters: Object.freeze(cs), endpoints: Object.freeze(es) }), `c|${svc.hostname}|${deps}`);
  });
}

/** The virtual hosts (HTTP ports) and TCP routes (other ports) of one service, for callers in `ns`. */
export function routeSlice(memo: SliceMemos, index: ConfigIndex, registry: Registry, svc: Service, ns: string): RouteSlice {
  const ivs = meshVsFor(index, svc.hostname, ns);
  const vsNs = ivs?.res.metadata.namespace ?? svc.namespace;
  const deps = `${svc.hash}|${ivs?.res.hash ?? '-'}|${destinationDeps(index, ivs, registry, vsNs)}`;
  return memo.routes.get(svc.hostname, deps, () => {
    const vhs: VirtualHost[] = [];
    const tcp: TcpRoute[] = [];
    for (const sp of svc.ports) {
      const name = destinationNamer(index, registry, vsNs, sp.port);
      if (!isHttpProtocol(sp.protocol) && sp.protocol !== 'UNSPECIFIED') {
        tcp.push(tcpRoute(svc, sp.port, ivs, name));
        continue;
      }
      const routes: readonly Route[] = ivs?.res.body.spec.http?.length
        ? compileHttpRoutes(ivs.res.metadata.name, ivs.res.body.spec.http, name, ivs.res.metadata.namespace)
        : [defaultRoute(clusterName(sp.port, undefined, svc.hostname))];
      vhs.push(Object.freeze({
        name: `${svc.hostname}:${sp.port}`,
        domains: Object.freeze([svc.hostname]),
        ...(ivs ? { source: ivs.res.ref } : {}),
        routes: Object.freeze(routes),
      }));
    }
    return withHash(Object.freeze({ vhosts: Object.freeze(vhs), tcp: Object.freeze(tcp) }), `r|${svc.hostname}|${deps}`);
  });
}

/** A TCP port's route: the VirtualService's first tcp rule that fits the port, else the service itself. */
function tcpRoute(svc: Service, port: number, ivs: IndexedVs | undefined, name: ClusterNamer): TcpRoute {
  const rule = ivs?.res.body.spec.tcp?.find((t) => !t.match?.length || t.match.some((m) => m.port === undefined || m.port === port));
  const clusters = rule
    ? rule.route.map((d) => Object.freeze({ cluster: name(d.destination.host, d.destination.port?.number, d.destination.subset), weight: d.weight ?? (rule.route.length === 1 ? 100 : 0) }))
    : [Object.freeze({ cluster: clusterName(port, undefined, svc.hostname), weight: 100 })];
  return Object.freeze({ port, host: svc.hostname, clusters: Object.freeze(clusters), ...(rule && ivs ? { source: ivs.res.ref } : {}) });
}
