/**
 * What opaque TCP and TLS connections need from one applied snapshot: the
 * L4 router (src/policy/l4-routes.ts, shared with `simulate()`) and a
 * forward plan per TCP and TLS route, each destination resolved to its
 * cluster target (or marked missing: the connection is closed, NC).
 *
 * Built with the applied snapshot (applied-snapshot.ts), on the cluster
 * targets its HTTP plans use.
 */
import { buildL4Router, type L4Router } from '../policy/l4-routes.js';
import type { Snapshot, TcpRoute, TlsRoute } from '../protocol/snapshot.js';
import type { AppliedSnapshot } from './applied-snapshot.js';
import type { ClusterTarget } from './cluster-target.js';
import { buildTcpPlan, type ForwardPlan } from './route-plan.js';

export interface L4Plans {
  readonly router: L4Router;
  tcp(route: TcpRoute): ForwardPlan;
  tls(route: TlsRoute): ForwardPlan;
}

/** The L4 plans of an applied snapshot (built with it). */
export function l4Plans(state: AppliedSnapshot): L4Plans {
  return state.l4;
}

/**
 * Built when a snapshot is applied, on the cluster targets `build()` made for
 * every cluster, so a route naming a cluster the snapshot lacks is marked
 * missing (NC) and a bad snapshot is refused at apply time.
 */
export function buildL4Plans(s: Snapshot, targets: ReadonlyMap<string, ClusterTarget>, tcpBase: ReadonlyMap<TcpRoute, ForwardPlan>): L4Plans {
  const tcpPlans = new Map<TcpRoute, ForwardPlan>();
  for (const t of s.outbound.tcp) {
    const base = tcpBase.get(t) ?? buildTcpPlan(t, targets);
    tcpPlans.set(t, t.name ? { ...base, name: t.name } : base);
  }
  const tlsPlans = new Map<TlsRoute, ForwardPlan>();
  for (const t of s.outbound.tls ?? []) {
    tlsPlans.set(t, { ...buildTcpPlan({ port: t.port, host: t.host, clusters: t.clusters }, targets), name: t.name });
  }
  return {
    router: buildL4Router(s),
    tcp: (r) => tcpPlans.get(r)!,
    tls: (r) => tlsPlans.get(r)!,
  };
}
