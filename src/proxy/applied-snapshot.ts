/**
 * Everything requests need from one snapshot, built in full when it is
 * applied: the outbound router (src/policy/route-table.ts, the same one
 * `simulate()` uses), a prepared plan per route, a target with a load
 * balancer per cluster, the inbound listener table. Requests take the state
 * in force when they start and keep it; a superseded state lets go of its
 * connection pools once its last request has ended.
 *
 * Building throws a SnapshotError for a snapshot that cannot be used; the
 * data plane turns it into a NACK and keeps the previous state.
 */
import { buildRouter, type Router } from '../policy/route-table.js';
import { SNAPSHOT_SCHEMA, type InboundListener, type Route, type Snapshot, type TcpRoute } from '../protocol/snapshot.js';
import { buildClusterTarget, type ClusterTarget } from './cluster-target.js';
import { SnapshotError } from './errors.js';
import { composeChain, type Chain } from './filter-chain.js';
import { authzStage, jwtStage, snapshotAuthorizer, type Authorizer } from './inbound-security.js';
import { speaksHttp2 } from './h2-upstream.js';
import { singleHost, type Host, type HostSet } from './hosts.js';
import { buildRoutePlan, buildTcpPlan, type ForwardPlan, type RoutePlan } from './route-plan.js';
import { SANITIZE_IDENTITY } from './sanitize.js';
import { PoolLease, type PoolSettings, type UpstreamPools } from './upstream-pools.js';
import { buildL4Plans, type L4Plans } from './l4-plans.js';
import { outboundRateLimitStages, rateLimitStage } from './ratelimit/stage.js';
import type { RateLimitRuntime } from './ratelimit/runtime.js';

export interface BuildOptions {
  readonly mode: 'sidecar' | 'gateway';
  readonly pools: UpstreamPools;
  /** Where the local app listens; each inbound listener's `targetPort` when unset. */
  readonly appPort?: number | undefined;
  /** Rate-limit state kept across snapshots (buckets, Redis clients); without it, RateLimitPolicies are not enforced. */
  readonly rateLimits?: RateLimitRuntime;
}

/** An inbound listener with its chain and the local app it forwards to. */
export interface InboundRoute {
  readonly listener: InboundListener;
  readonly chain: Chain;
  /** The snapshot's AuthorizationPolicy decision function (TCP tunnels call it directly); undefined: no policy selects the workload. */
  readonly authorize?: Authorizer;
  readonly app: HostSet;
}

/** The chain of traffic entering the mesh through a gateway. */
const GATEWAY_CHAIN = composeChain(SANITIZE_IDENTITY);

export class AppliedSnapshot {
  /** Gateway mode: the chain of each server port (policies that select the gateway apply: JWT, then authorization). */
  readonly #gatewayChains = new Map<number, Chain>();
  #gatewaySecurity: { authn: ReturnType<typeof jwtStage>; authorize: Authorizer | undefined } | undefined;
  #inflight = 0;
  #retired = false;

  constructor(
    readonly snapshot: Snapshot,
    readonly router: Router,
    readonly plans: ReadonlyMap<Route, RoutePlan>,
    readonly tcpPlans: ReadonlyMap<TcpRoute, ForwardPlan>,
    readonly inboundByPort: ReadonlyMap<number, InboundRoute>,
    /**
     * The listener used when the Host port names none: the only one, or the
     * first when all lead to the same app port (a gateway keeps the outside
     * Host, whose port is not the service port).
     */
    readonly inboundFallback: InboundRoute | undefined,
    /** Whether some route matches a pseudo-header (`:authority`), which routing then gets. */
    readonly pseudoHeaders: boolean,
    readonly lease: PoolLease,
    /** Opaque TCP and SNI-routed TLS: the L4 router and a plan per route. */
    readonly l4: L4Plans,
  ) {}

  gatewayChain(serverPort: number): Chain {
    let c = this.#gatewayChains.get(serverPort);
    if (!c) {
      const sec = (this.#gatewaySecurity ??= { authn: jwtStage(this.snapshot), authorize: snapshotAuthorizer(this.snapshot) });
      c = sec.authn || sec.authorize ? composeChain(SANITIZE_IDENTITY, sec.authn, authzStage(sec.authorize, serverPort)) : GATEWAY_CHAIN;
      this.#gatewayChains.set(serverPort, c);
    }
    return c;
  }

  get passthrough(): boolean {
    return this.snapshot.mesh.outboundTrafficPolicy === 'ALLOW_ANY';
  }

  enter(): void {
    this.#inflight++;
  }

  leave(): void {
    if (--this.#inflight === 0 && this.#retired) this.lease.releaseAll();
  }

  /** No new requests will start on this state; its pools go when its requests have. */
  retire(): void {
    this.#retired = true;
    if (this.#inflight === 0) this.lease.releaseAll();
  }
}

function check(ok: boolean, reason: string): void {
  if (!ok) throw new SnapshotError(reason);
}

function validateShape(s: Snapshot): void {
  check(!!s && typeof s === 'object', 'the snapshot is not an object');
  check(s.schema === SNAPSHOT_SCHEMA, `schema is "${String(s.schema)}", expected "${SNAPSHOT_SCHEMA}"`);
  check(typeof s.version === 'string' && s.version.length > 0, 'the snapshot has no version');
  check(!!s.node && !!s.mesh && !!s.outbound && Array.isArray(s.clusters) && Array.isArray(s.endpoints) && Array.isArray(s.inbound), 'the snapshot lacks node, mesh, inbound, outbound, clusters or endpoints');
  check(s.endpoints.length === s.clusters.length, `${s.clusters.length} clusters but ${s.endpoints.length} endpoint lists`);
}

/** The local app on a port; spoken to over h2c when the service port's protocol is HTTP2 or GRPC. */
function appHost(pools: PoolLease, port: number, s: Snapshot, http2: boolean): Host {
  check(Number.isInteger(port) && port > 0 && port < 65536, `inbound target port ${port} is not a port`);
  const settings: PoolSettings = { connectTimeoutMs: s.mesh.connectTimeoutMs, maxConnections: 2 ** 32 - 1, maxRequestsPerConnection: 0, idleTimeoutMs: 3_600_000 };
  const upstream = pools.acquire('127.0.0.1', port, settings, http2);
  return { upstream, address: upstream.address, identity: s.node.identity };
}

function usesPseudoHeaders(plans: Iterable<Route>): boolean {
  for (const r of plans) for (const m of r.match) for (const h of [...m.headers, ...m.withoutHeaders]) if (h.name.startsWith(':')) return true;
  return false;
}

function build(s: Snapshot, o: BuildOptions, lease: PoolLease): AppliedSnapshot {
  validateShape(s);
  const targets = new Map<string, ClusterTarget>();
  s.clusters.forEach((c, i) => {
    const eps = s.endpoints[i]!;
    check(eps.cluster === c.name, `endpoint list ${i} is for ${eps.cluster}, expected ${c.name}`);
    check(!targets.has(c.name), `cluster ${c.name} appears twice`);
    try {
      targets.set(c.name, buildClusterTarget(c, eps, lease, s.node));
    } catch (err) {
      throw new SnapshotError(`cluster ${c.name}: ${(err as Error).message}`);
    }
  });
  let router: Router;
  try {
    router = buildRouter(s);
  } catch (err) {
    throw new SnapshotError(`route matches do not compile: ${(err as Error).message}`);
  }
  const plans = new Map<Route, RoutePlan>();
  // Caller-side rate limits (RateLimitPolicy enforce: InboundAndOutbound), in the chain of each route to a limited service.
  o.rateLimits?.prepare(s.rateLimits, s.outboundRateLimits);
  const outboundLimit = o.rateLimits && outboundRateLimitStages(s, o.rateLimits);
  for (const table of s.outbound.http) {
    for (const vh of table.virtualHosts) {
      for (const r of vh.routes) if (!plans.has(r)) plans.set(r, buildRoutePlan(r, vh.name, targets, outboundLimit?.(r)));
    }
  }
  const tcpPlans = new Map<TcpRoute, ForwardPlan>();
  for (const t of s.outbound.tcp) tcpPlans.set(t, buildTcpPlan(t, targets));
  const inboundByPort = new Map<number, InboundRoute>();
  if (o.mode === 'sidecar') {
    // Sanitize → authn (JWT) → authz → ratelimit: one chain per listener (authorization matches the workload port).
    const authn = jwtStage(s);
    const authorize = snapshotAuthorizer(s);
    const apps = new Map<string, HostSet>();
    for (const l of s.inbound) {
      if (inboundByPort.has(l.port)) continue;
      const port = o.appPort ?? l.targetPort;
      const h2 = speaksHttp2(l.protocol);
      const key = `${port}${h2 ? '|h2' : ''}`;
      let app = apps.get(key);
      if (!app) apps.set(key, (app = singleHost(appHost(lease, port, s, h2))));
      inboundByPort.set(l.port, { listener: l, chain: composeChain(SANITIZE_IDENTITY, authn, authzStage(authorize, l.targetPort), o.rateLimits && rateLimitStage(s, l, o.rateLimits)), app, authorize });
    }
  }
  const all = [...inboundByPort.values()];
  const fallback = all.length > 0 && all.every((r) => r.app === all[0]!.app) ? all[0] : undefined;
  let l4: L4Plans;
  try {
    l4 = buildL4Plans(s, targets, tcpPlans);
  } catch (err) {
    throw new SnapshotError(`opaque TCP / TLS routes: ${(err as Error).message}`);
  }
  return new AppliedSnapshot(s, router, plans, tcpPlans, inboundByPort, fallback, usesPseudoHeaders(plans.keys()), lease, l4);
}

/** Builds the state for a snapshot; throws a SnapshotError (and holds no pools) when it cannot be used. */
export function buildAppliedSnapshot(s: Snapshot, o: BuildOptions): AppliedSnapshot {
  const lease = new PoolLease(o.pools);
  try {
    return build(s, o, lease);
  } catch (err) {
    lease.releaseAll();
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`the snapshot cannot be applied: ${(err as Error)?.message ?? String(err)}`);
  }
}
