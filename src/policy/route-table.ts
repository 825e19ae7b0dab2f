/**
 * The outbound router: request → route table (by port) → virtual host (by
 * host, with short names expanded in the proxy's namespace) → first matching
 * route. Built once per snapshot; `route()` does no allocation-heavy work and
 * compiles nothing. The proxy and `simulate()` both call it.
 */
import type { ProxyNode, Route, RouteTable, Snapshot, TcpRoute, VirtualHost } from '../protocol/snapshot.js';
import type { RouteRequest } from './request.js';
import { compileRouteMatch, type RequestTest } from './route-match.js';
import { buildL4Router, type L4Router } from './l4-routes.js';

export type RouteDecision =
  | {
      readonly ok: true;
      readonly table: RouteTable;
      readonly virtualHost: VirtualHost;
      readonly route: Route;
      readonly routeIndex: number;
      /** Which of the route's match alternatives applied; -1 when the route has none. */
      readonly matchIndex: number;
      /** The host the virtual host was found under. */
      readonly resolvedHost: string;
    }
  | {
      readonly ok: false;
      readonly reason: 'NO_ROUTE_TABLE' | 'NO_VIRTUAL_HOST' | 'NO_ROUTE';
      readonly detail: string;
      readonly table?: RouteTable;
      readonly virtualHost?: VirtualHost;
      readonly resolvedHost?: string;
    };

interface BuiltRoute {
  readonly route: Route;
  readonly index: number;
  /** Alternatives with their original index; empty list = matches all. */
  readonly alts: readonly (readonly [number, RequestTest])[];
  readonly all: boolean;
}

interface BuiltTable {
  readonly table: RouteTable;
  readonly exact: Map<string, BuiltHost>;
  /** `*.example.com` as suffix `.example.com`, longest first. */
  readonly wildcards: readonly (readonly [string, BuiltHost])[];
  readonly any?: BuiltHost;
  /** Host header values seen, with what findHost made of them (null: no virtual host); bounded by HOST_MEMO_MAX. */
  readonly memo: Map<string, Found | null>;
}

type Found = readonly [BuiltHost, string];

/** Distinct Host values remembered per table; past it the memo starts over (a caller sending random hosts only costs lookups). */
const HOST_MEMO_MAX = 256;

interface BuiltHost {
  readonly vh: VirtualHost;
  readonly routes: readonly BuiltRoute[];
}

export interface Router {
  route(req: RouteRequest): RouteDecision;
  /** The virtual host for a host on a port, or undefined. */
  virtualHost(port: number, host: string): VirtualHost | undefined;
  /** The opaque TCP route for a host on a port (short names expanded as for HTTP), or undefined. */
  tcp(port: number, host: string): TcpRoute | undefined;
}

/** Splits `host:port` and lowercases; IPv6 literals in brackets are kept whole. */
export function hostOnly(host: string): string {
  let h = host;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const c = h.lastIndexOf(':');
    if (c >= 0) h = h.slice(0, c);
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

export function buildRouter(snapshot: Pick<Snapshot, 'node' | 'outbound' | 'mesh'>): Router {
  const node = snapshot.node;
  const ns = node.namespace;
  const suffix = snapshot.mesh.domainSuffix;
  const tables = new Map<number, BuiltTable>();
  const hostCache = new WeakMap<VirtualHost, BuiltHost>();
  const buildHost = (vh: VirtualHost, tableGateways: readonly string[] | undefined): BuiltHost => {
    if (tableGateways) return { vh, routes: buildRoutes(vh.routes, node, tableGateways) };
    let b = hostCache.get(vh);
    if (!b) {
      b = { vh, routes: buildRoutes(vh.routes, node) };
      hostCache.set(vh, b);
    }
    return b;
  };
  for (const table of snapshot.outbound.http) {
    const exact = new Map<string, BuiltHost>();
    const wildcards: [string, BuiltHost][] = [];
    let any: BuiltHost | undefined;
    for (const vh of table.virtualHosts) {
      const b = buildHost(vh, table.gateways);
      for (const d of vh.domains) {
        if (d === '*') any ??= b;
        else if (d.startsWith('*.')) wildcards.push([d.slice(1), b]);
        else if (!exact.has(d)) exact.set(d, b);
      }
    }
    wildcards.sort((a, b) => b[0].length - a[0].length);
    tables.set(table.port, { table, exact, wildcards, memo: new Map(), ...(any ? { any } : {}) });
  }

  const candidates = (h: string): string[] => {
    const dots = countDots(h);
    const out: string[] = [];
    if (dots === 0) out.push(`${h}.${ns}.svc.${suffix}`);
    else if (dots === 1) out.push(`${h}.svc.${suffix}`);
    else if (h.endsWith('.svc')) out.push(`${h}.${suffix}`);
    out.push(h);
    return out;
  };

  /** The virtual host for a Host value: the same value names the same one for as long as the snapshot lasts. */
  const findHost = (t: BuiltTable, host: string): Found | undefined => {
    const memo = t.memo;
    const known = memo.get(host);
    if (known !== undefined) return known ?? undefined;
    const found = lookupHost(t, host);
    if (memo.size >= HOST_MEMO_MAX) memo.clear();
    memo.set(host, found ?? null);
    return found;
  };

  const lookupHost = (t: BuiltTable, host: string): Found | undefined => {
    const h = hostOnly(host);
    const cands = candidates(h);
    for (const c of cands) {
      const b = t.exact.get(c);
      if (b) return [b, c];
    }
    for (const c of cands) {
      for (const [sfx, b] of t.wildcards) if (c.endsWith(sfx) && c.length > sfx.length) return [b, c];
    }
    return t.any ? [t.any, h] : undefined;
  };

  // Opaque TCP: the L4 router's rules (first match wins, several per host), built on first use.
  let l4: L4Router | undefined;

  return {
    tcp(port, host) {
      return (l4 ??= buildL4Router(snapshot)).tcp(port, host);
    },
    virtualHost(port, host) {
      const t = tables.get(port);
      return t ? findHost(t, host)?.[0].vh : undefined;
    },
    route(req) {
      const t = tables.get(req.port);
      if (!t) return { ok: false, reason: 'NO_ROUTE_TABLE', detail: `no HTTP service in the mesh listens on port ${req.port}` };
      const found = findHost(t, req.host);
      if (!found) return { ok: false, reason: 'NO_VIRTUAL_HOST', detail: `no service "${hostOnly(req.host)}" on port ${req.port}`, table: t.table };
      const [b, resolvedHost] = found;
      for (const r of b.routes) {
        if (r.all) return { ok: true, table: t.table, virtualHost: b.vh, route: r.route, routeIndex: r.index, matchIndex: -1, resolvedHost };
        for (const [i, test] of r.alts) {
          if (test(req)) return { ok: true, table: t.table, virtualHost: b.vh, route: r.route, routeIndex: r.index, matchIndex: i, resolvedHost };
        }
      }
      return { ok: false, reason: 'NO_ROUTE', detail: `no route of ${b.vh.name} matches ${req.method} ${req.path}`, table: t.table, virtualHost: b.vh, resolvedHost };
    },
  };
}

function buildRoutes(routes: readonly Route[], node: ProxyNode, tableGateways?: readonly string[]): BuiltRoute[] {
  const out: BuiltRoute[] = [];
  routes.forEach((route, index) => {
    if (route.match.length === 0) { out.push({ route, index, alts: [], all: true }); return; }
    const alts: (readonly [number, RequestTest])[] = [];
    route.match.forEach((m, i) => {
      const t = compileRouteMatch(m, node, tableGateways);
      if (t) alts.push([i, t]);
    });
    if (alts.length) out.push({ route, index, alts, all: false });
  });
  return out;
}

function countDots(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 46) n++;
  return n;
}
