/**
 * Building one service's slice of an outbound view: its virtual hosts, TLS or
 * TCP routes (routeSlice) and its clusters with endpoint lists (clusterSlice),
 * each memoized on the hashes of exactly what it is built from.
 */
import type { Cluster, ClusterEndpoints, ProxyNode, Route, TcpRoute, TlsRoute, VirtualHost } from '../protocol/snapshot.js';
import { selectsEndpoint } from '../registry/endpoints.js';
import { isHttpProtocol, isTlsProtocol } from '../registry/protocol.js';
import type { Registry, Service } from '../registry/types.js';
import { buildCluster, type DestinationRuleInput } from './clusters.js';
import { allPeersPlaintext, peerAuthnSignature } from './peer-authn.js';
import { drFor, meshVsFor, type ConfigIndex, type IndexedVs } from './config-index.js';
import { withHash } from './hash.js';
import type { GenerationalMemo } from './memo.js';
import { clusterName, compileHttpRoutes, defaultRoute, type ClusterNamer } from './routes.js';
import { tcpRoutes, tlsRoutes } from './tls-routes.js';
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
  for (const r of spec.http ?? []) {
    for (const d of r.route ?? []) out += registry.service(index.resolve(d.destination.host, ns))?.hash ?? '?';
    // Mirror destinations resolve their cluster names the same way.
    for (const d of r.mirror ? [r.mirror] : (r.mirrors ?? []).map((m) => m.destination)) out += registry.service(index.resolve(d.host, ns))?.hash ?? '?';
  }
  for (const r of spec.tcp ?? []) for (const d of r.route) out += registry.service(index.resolve(d.destination.host, ns))?.hash ?? '?';
  for (const r of spec.tls ?? []) for (const d of r.route) out += registry.service(index.resolve(d.destination.host, ns))?.hash ?? '?';
  return out;
}

/** The clusters (default subset + every DestinationRule subset, per port) and endpoint lists of one service. */
export function clusterSlice(memo: SliceMemos, index: ConfigIndex, registry: Registry, svc: Service, node: ProxyNode): ClusterSlice {
  const idr = drFor(index, svc.hostname, node.namespace, svc.namespace, node.labels);
  const dr = idr?.res.body.spec as DestinationRuleInput | undefined;
  let deps = `${svc.hash}|${idr?.res.hash ?? '-'}|${index.meshHash}|${peerAuthnSignature(index.config)}`;
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
        const endpoints = subset === undefined ? eps : Object.freeze(eps.filter((e) => selectsEndpoint(labels ?? {}, e)));
        const plaintextPeers = allPeersPlaintext(index.config, index.mesh.rootNamespace, endpoints);
        cs.push(buildCluster({
          name, host: svc.hostname, port: sp.port, ...(subset !== undefined ? { subset } : {}), service: svc,
          ...(dr ? { dr } : {}), ...(idr ? { drRef: idr.res.ref } : {}),
          connectTimeoutMs: index.mesh.connectTimeoutMs, autoMtls: index.mesh.enableAutoMtls, identities, plaintextPeers,
        }));
        es.push(Object.freeze({ cluster: name, endpoints }));
      }
    }
    return withHash(Object.freeze({ clusters: Object.freeze(cs), endpoints: Object.freeze(es) }), `c|${svc.hostname}|${deps}`);
  });
}

/** A route slice with the TLS routes of the service's TLS and HTTPS ports (views.ts's RouteSlice has no field for them yet). */
export interface L4RouteSlice extends RouteSlice {
  readonly tls: readonly TlsRoute[];
}

/** The TLS routes of a route slice; none for slices without them (a gateway's). */
export function tlsOf(r: RouteSlice): readonly TlsRoute[] {
  return (r as Partial<L4RouteSlice>).tls ?? [];
}

/** The virtual hosts (HTTP ports), TLS routes (TLS and HTTPS ports) and TCP routes (other ports) of one service, for callers in `ns`. */
export function routeSlice(memo: SliceMemos, index: ConfigIndex, registry: Registry, svc: Service, ns: string): RouteSlice {
  const ivs = meshVsFor(index, svc.hostname, ns);
  const vsNs = ivs?.res.metadata.namespace ?? svc.namespace;
  const deps = `${svc.hash}|${ivs?.res.hash ?? '-'}|${destinationDeps(index, ivs, registry, vsNs)}`;
  return memo.routes.get(svc.hostname, deps, () => {
    const vhs: VirtualHost[] = [];
    const tcp: TcpRoute[] = [];
    const tls: TlsRoute[] = [];
    for (const sp of svc.ports) {
      const name = destinationNamer(index, registry, vsNs, sp.port);
      if (isTlsProtocol(sp.protocol)) {
        // By SNI; the VirtualService's own tcp rules take what no SNI route names.
        tls.push(...tlsRoutes(index, svc, sp.port, ivs, name));
        tcp.push(...tcpRoutes(svc, sp.port, ivs, name, false));
        continue;
      }
      if (!isHttpProtocol(sp.protocol) && sp.protocol !== 'UNSPECIFIED') {
        tcp.push(...tcpRoutes(svc, sp.port, ivs, name));
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
    const slice: L4RouteSlice = { vhosts: Object.freeze(vhs), tcp: Object.freeze(tcp), tls: Object.freeze(tls) };
    return withHash(Object.freeze(slice), `r|${svc.hostname}|${deps}`);
  });
}
