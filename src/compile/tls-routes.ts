/**
 * A service port's L4 routes from its VirtualService: `tls` rules (by SNI,
 * for TLS and HTTPS ports) and `tcp` rules, with Istio's match semantics for
 * a sidecar. Decided here: a match block's `port` and `gateways` (a block
 * naming gateways applies to sidecars only when it names `mesh`). Carried
 * into the snapshot for the proxy to decide (the view is shared by every
 * proxy of a namespace): `sourceLabels`, `sourceNamespace`,
 * `destinationSubnets` (src/policy/l4-routes.ts).
 *
 * TCP: rules in order; a rule without match, or with a block that has no
 * condition left for the proxy, is a catch-all and ends the list; otherwise
 * the service's own route ends it, as in Istio. TLS: one route per match
 * block, in rule order; a port no tls rule applies to gets the service's own
 * route for its hostname (Istio's default TLS filter chain).
 */
import type { L4Match, TcpRoute, TlsRoute, WeightedCluster } from '../protocol/snapshot.js';
import type { Service } from '../registry/types.js';
import type { ConfigIndex, IndexedVs } from './config-index.js';
import { clusterName, type ClusterNamer } from './routes.js';

type VsSpec = IndexedVs['res']['body']['spec'];
type L4Rule = NonNullable<VsSpec['tcp']>[number];
type L4Block = NonNullable<L4Rule['match']>[number];

/** Whether a match block can apply to a sidecar's connection on `port`. */
function blockFits(m: Pick<L4Block, 'port' | 'gateways'>, port: number): boolean {
  if (m.port !== undefined && m.port !== port) return false;
  return !m.gateways?.length || m.gateways.includes('mesh');
}

/** What of a block the proxy decides; undefined when nothing is left (the block always holds). */
function l4Match(m: L4Block): L4Match | undefined {
  const out: { -readonly [K in keyof L4Match]: L4Match[K] } = {};
  if (m.sourceLabels && Object.keys(m.sourceLabels).length) out.sourceLabels = Object.freeze({ ...m.sourceLabels });
  if (m.sourceNamespace !== undefined) out.sourceNamespace = m.sourceNamespace;
  if (m.destinationSubnets?.length) out.destinationSubnets = Object.freeze([...m.destinationSubnets]);
  return Object.keys(out).length ? Object.freeze(out) : undefined;
}

function weighted(rule: Pick<L4Rule, 'route'>, name: ClusterNamer): readonly WeightedCluster[] {
  return Object.freeze(rule.route.map((d) => Object.freeze({
    cluster: name(d.destination.host, d.destination.port?.number, d.destination.subset),
    weight: d.weight ?? (rule.route.length === 1 ? 100 : 0),
  })));
}

function ownClusters(svc: Service, port: number): readonly WeightedCluster[] {
  return Object.freeze([Object.freeze({ cluster: clusterName(port, undefined, svc.hostname), weight: 100 })]);
}

/**
 * The TCP routes of a service port: its VirtualService's tcp rules that fit
 * the port, then (unless one is a catch-all, or `withOwn` is false) the
 * service's own route.
 */
export function tcpRoutes(svc: Service, port: number, ivs: IndexedVs | undefined, name: ClusterNamer, withOwn = true): TcpRoute[] {
  const out: TcpRoute[] = [];
  const vs = ivs?.res.metadata.name;
  const addresses = svc.addresses.length ? { addresses: Object.freeze([...svc.addresses]) } : {};
  let closed = false;
  ivs?.res.body.spec.tcp?.forEach((rule, i) => {
    if (closed) return;
    let match: L4Match[] | undefined;
    if (rule.match?.length) {
      match = [];
      for (const m of rule.match) {
        if (!blockFits(m, port)) continue;
        const lm = l4Match(m);
        if (!lm) { match = undefined; break; }
        match.push(lm);
      }
      if (match && match.length === 0) return;
    }
    if (!match) closed = true;
    out.push(Object.freeze({
      port, host: svc.hostname, clusters: weighted(rule, name), source: ivs!.res.ref, name: `${vs}.tcp.${i}`,
      ...(match ? { match: Object.freeze(match) } : {}), ...addresses,
    }));
  });
  if (!closed && withOwn) out.push(Object.freeze({ port, host: svc.hostname, clusters: ownClusters(svc, port), ...addresses }));
  return out;
}

/** The TLS routes of a TLS or HTTPS service port: one per fitting match block of the tls rules, else the service's own. */
export function tlsRoutes(index: ConfigIndex, svc: Service, port: number, ivs: IndexedVs | undefined, name: ClusterNamer): TlsRoute[] {
  const out: TlsRoute[] = [];
  const vsNs = ivs?.res.metadata.namespace ?? svc.namespace;
  ivs?.res.body.spec.tls?.forEach((rule, i) => {
    const clusters = weighted(rule, name);
    for (const m of rule.match) {
      if (!blockFits(m, port)) continue;
      const lm = l4Match(m);
      out.push(Object.freeze({
        port,
        sniHosts: Object.freeze([...new Set(m.sniHosts.map((h) => index.resolve(h, vsNs)))]),
        host: svc.hostname, clusters, source: ivs.res.ref, name: `${ivs.res.metadata.name}.tls.${i}`,
        ...(lm ? { match: Object.freeze([lm]) } : {}),
      }));
    }
  });
  if (out.length === 0) {
    out.push(Object.freeze({ port, sniHosts: Object.freeze([svc.hostname]), host: svc.hostname, clusters: ownClusters(svc, port), name: `tls ${svc.hostname}:${port}` }));
  }
  return out;
}
