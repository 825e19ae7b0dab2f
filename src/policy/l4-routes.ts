/**
 * The L4 router: which TCP route a connection to `host:port` takes, and
 * which TLS route a ClientHello's SNI takes on a port. Built once per
 * snapshot; match blocks' sourceLabels and sourceNamespace are decided
 * against the proxy then, destinationSubnets per connection (only when the
 * destination is an IP address). The proxy and `simulate()` call it.
 *
 * TCP (Istio's tcp rules): the routes of a host and port are tried in
 * order, the first whose match holds wins; the compiler ends the list with
 * the service's own route when no rule is a catch-all.
 *
 * TLS (Istio's tls rules, Envoy's server_names): among the routes of a port,
 * an exact name beats a wildcard, a longer wildcard a shorter one, and the
 * first route wins among equals. Names are compared lowercase; a short name
 * (`api`, `api.shop`) also tries its FQDNs in the proxy's namespace.
 */
import type { L4Match, ProxyNode, Snapshot, TcpRoute, TlsRoute } from '../protocol/snapshot.js';
import { compileIpBlocks, parseIp, type IpTest } from './ip-match.js';
import { labelsMatch } from './route-match.js';
import { hostOnly } from './route-table.js';

export interface L4Router {
  /**
   * The TCP route of a connection to `host` (a name, or an IP: a service's
   * virtual IP) on `port`; undefined: no TCP service there.
   */
  tcp(port: number, host: string): TcpRoute | undefined;
  /** Whether `port` has TLS routes: connections to it are routed by the SNI of their ClientHello. */
  hasTls(port: number): boolean;
  /** Whether `host` (short names expanded) is a TLS or HTTPS service on `port`. */
  isTlsService(port: number, host: string): boolean;
  /**
   * The TLS route for an SNI on `port`; `destination` is the address the
   * connection was for, when it is an IP (for destinationSubnets).
   * Undefined: no route names it (passthrough or blackhole, by the mesh's
   * outboundTrafficPolicy).
   */
  tls(port: number, sni: string, destination?: string): TlsRoute | undefined;
}

/** A route with its match decided as far as the proxy allows; `test` is per connection. */
interface Built<R> {
  readonly route: R;
  /** undefined: holds for every connection. */
  readonly test: ((destination: string | undefined) => boolean) | undefined;
}

interface TlsPort {
  readonly exact: Map<string, Built<TlsRoute>[]>;
  /** Wildcard suffixes (`.example.com` for `*.example.com`), longest first. */
  readonly wildcards: (readonly [string, Built<TlsRoute>[]])[];
}

const NO_TLS: readonly TlsRoute[] = Object.freeze([]);

/**
 * The match of a route for this proxy: false when no block can hold,
 * undefined when one always holds, else the per-connection test.
 */
function compileL4(match: readonly L4Match[] | undefined, node: ProxyNode): false | undefined | ((d: string | undefined) => boolean) {
  if (!match || match.length === 0) return undefined;
  const tests: IpTest[] = [];
  for (const m of match) {
    if (m.sourceLabels && !labelsMatch(m.sourceLabels, node.labels)) continue;
    if (m.sourceNamespace !== undefined && m.sourceNamespace !== node.namespace) continue;
    if (!m.destinationSubnets?.length) return undefined;
    tests.push(compileIpBlocks(m.destinationSubnets));
  }
  if (tests.length === 0) return false;
  return (d) => d !== undefined && tests.some((t) => t(d));
}

function first<R>(list: readonly Built<R>[] | undefined, destination: string | undefined): R | undefined {
  if (!list) return undefined;
  for (const b of list) if (!b.test || b.test(destination)) return b.route;
  return undefined;
}

export function buildL4Router(snapshot: Pick<Snapshot, 'node' | 'outbound' | 'mesh'>): L4Router {
  const node = snapshot.node;
  const ns = node.namespace;
  const suffix = snapshot.mesh.domainSuffix;
  const candidates = (h: string): string[] => {
    const dots = h.split('.').length - 1;
    const out: string[] = [h];
    if (dots === 0) out.push(`${h}.${ns}.svc.${suffix}`);
    else if (dots === 1) out.push(`${h}.svc.${suffix}`);
    else if (h.endsWith('.svc')) out.push(`${h}.${suffix}`);
    return out;
  };

  const tcpRoutes = new Map<string, Built<TcpRoute>[]>();
  const addTcp = (key: string, b: Built<TcpRoute>) => {
    let list = tcpRoutes.get(key);
    if (!list) tcpRoutes.set(key, (list = []));
    list.push(b);
  };
  for (const t of snapshot.outbound.tcp) {
    const test = compileL4(t.match, node);
    if (test === false) continue;
    const b = { route: t, test };
    addTcp(`${t.host}:${t.port}`, b);
    for (const a of t.addresses ?? []) addTcp(`${a}:${t.port}`, b);
  }

  const tlsPorts = new Map<number, TlsPort>();
  const tlsServices = new Set<string>();
  for (const t of snapshot.outbound.tls ?? NO_TLS) {
    tlsServices.add(`${t.host}:${t.port}`);
    const test = compileL4(t.match, node);
    if (test === false) continue;
    let p = tlsPorts.get(t.port);
    if (!p) tlsPorts.set(t.port, (p = { exact: new Map(), wildcards: [] }));
    for (const raw of t.sniHosts) {
      const name = raw.toLowerCase();
      const b = { route: t, test };
      if (name.startsWith('*')) {
        const sfx = name.slice(1);
        const w = p.wildcards.find(([s]) => s === sfx);
        if (w) w[1].push(b);
        else p.wildcards.push([sfx, [b]]);
      } else {
        let list = p.exact.get(name);
        if (!list) p.exact.set(name, (list = []));
        list.push(b);
      }
    }
  }
  for (const p of tlsPorts.values()) p.wildcards.sort((a, b) => b[0].length - a[0].length);

  return {
    tcp(port, host) {
      const h = hostOnly(host).replace(/^\[|\]$/g, '');
      const ip = parseIp(h) ? h : undefined;
      for (const c of ip ? [h] : candidates(h)) {
        const r = first(tcpRoutes.get(`${c}:${port}`), ip);
        if (r) return r;
      }
      return undefined;
    },
    hasTls(port) {
      return tlsPorts.has(port);
    },
    isTlsService(port, host) {
      if (tlsServices.size === 0) return false;
      for (const c of candidates(hostOnly(host))) if (tlsServices.has(`${c}:${port}`)) return true;
      return false;
    },
    tls(port, sni, destination) {
      const p = tlsPorts.get(port);
      if (!p) return undefined;
      const cands = candidates(hostOnly(sni));
      for (const c of cands) {
        const r = first(p.exact.get(c), destination);
        if (r) return r;
      }
      for (const [sfx, list] of p.wildcards) {
        for (const c of cands) {
          if (c.length > sfx.length && c.endsWith(sfx)) {
            const r = first(list, destination);
            if (r) return r;
          }
        }
      }
      return undefined;
    },
  };
}
