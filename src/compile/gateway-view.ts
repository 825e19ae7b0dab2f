/**
 * A gateway proxy's routes: for each Gateway that selects it, each server
 * port gets the virtual hosts of the VirtualServices bound to that Gateway
 * whose hosts the server admits.
 */
import { protocolKind } from '../api/kinds/gateway.js';
import { labelsMatch } from '../policy/route-match.js';
import type { ProxyNode, VirtualHost } from '../protocol/snapshot.js';
import type { Registry } from '../registry/types.js';
import type { ConfigIndex } from './config-index.js';
import { composeHash, hashText, withHash } from './hash.js';
import { compileHttpRoutes } from './routes.js';
import { destinationDeps, destinationNamer, type SliceMemos } from './slices.js';
import type { RouteSlice } from './views.js';

export interface GatewayRoutes {
  readonly routes: RouteSlice;
  /** Server port → the Gateways (`namespace/name`) listening on it. */
  readonly gatewaysByPort: ReadonlyMap<number, readonly string[]>;
  /** Service hosts the routes send to, sorted: their clusters belong in the view. */
  readonly targets: readonly string[];
}

export function gatewayRoutes(memo: SliceMemos, index: ConfigIndex, registry: Registry, node: ProxyNode): GatewayRoutes {
  const vhs: VirtualHost[] = [];
  const targets = new Set<string>();
  const gatewaysByPort = new Map<number, string[]>();
  for (const gw of index.gateways) {
    const spec = gw.body.spec;
    if (!spec.selector || !Object.keys(spec.selector).length || !labelsMatch(spec.selector, node.labels)) continue;
    const gwNs = gw.metadata.namespace;
    const gwKey = `${gwNs}/${gw.metadata.name}`;
    for (const server of spec.servers ?? []) {
      // TLS is not terminated at gateways yet: an HTTPS or TLS server is left out rather than served in plaintext (the loader warns, TRL1011).
      if (protocolKind(server.port.protocol) === 'tls') continue;
      const port = server.port.number;
      const onPort = gatewaysByPort.get(port) ?? [];
      if (!onPort.includes(gwKey)) onPort.push(gwKey);
      gatewaysByPort.set(port, onPort);
      for (const ivs of index.gatewayVs.get(gwKey) ?? []) {
        const vsNs = ivs.res.metadata.namespace;
        const hosts = ivs.hosts.filter((h) => server.hosts.some((sh) => serverHostAllows(sh, h, vsNs, gwNs)));
        if (!hosts.length || !ivs.res.body.spec.http?.length) continue;
        const key = `${gwKey}|${ivs.res.ref}:${port}`;
        const deps = `${ivs.res.hash}|${gw.hash}|${hosts.join(',')}|${destinationDeps(index, ivs, registry, vsNs)}`;
        const vh = memo.gatewayHosts.get(key, deps, () => withHash(Object.freeze({
          name: `${hosts.join(',')}:${port}`,
          domains: Object.freeze([...hosts]),
          source: ivs.res.ref,
          routes: Object.freeze(compileHttpRoutes(ivs.res.metadata.name, ivs.res.body.spec.http!, destinationNamer(index, registry, vsNs, port), vsNs)),
        }), hashText(`${key}|${deps}`)));
        for (const r of vh.routes) if (r.action.kind === 'forward') for (const c of r.action.clusters) targets.add(c.cluster.split('|')[3]!);
        vhs.push(vh);
      }
    }
  }
  return {
    routes: withHash(Object.freeze({ vhosts: Object.freeze(vhs), tcp: Object.freeze([]) }), composeHash(vhs, 'gw')),
    targets: [...targets].sort(),
    gatewaysByPort: new Map([...gatewaysByPort].map(([p, gws]) => [p, Object.freeze(gws.sort())])),
  };
}

/**
 * Whether a Gateway server host admits a VirtualService host. Server hosts
 * are `host` or `namespace/host`: `*` any namespace, `.` the Gateway's own.
 */
export function serverHostAllows(serverHost: string, vsHost: string, vsNamespace: string, gatewayNamespace: string): boolean {
  const slash = serverHost.indexOf('/');
  let ns = '*';
  let host = serverHost;
  if (slash >= 0) { ns = serverHost.slice(0, slash); host = serverHost.slice(slash + 1); }
  if (ns === '.' ? vsNamespace !== gatewayNamespace : ns !== '*' && ns !== vsNamespace) return false;
  const h = host.toLowerCase();
  const v = vsHost.toLowerCase();
  if (h === '*' || h === v || v === '*') return true;
  if (h.startsWith('*.')) return v.endsWith(h.slice(1));
  if (v.startsWith('*.')) return h.endsWith(v.slice(1));
  return false;
}
