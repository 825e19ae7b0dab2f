/**
 * A cluster as requests see it: its usable endpoints (HEALTHY or UNKNOWN,
 * with an address), each bound to a pooled upstream (keyed by the cluster's
 * TLS settings too: an ISTIO_MUTUAL cluster's pools originate mTLS with
 * secure naming against `tls.subjectAltNames`), and the load balancer of
 * the cluster's policy over them. Built once per snapshot.
 *
 * A cluster with outlier detection or locality-aware balancing picks in
 * three steps: priority level (locality.ts ranks the endpoints against the
 * proxy's own locality, priority-load.ts loads the levels), then the
 * policy's balancer over that level's hosts that are not ejected
 * (outlier.ts; all of them in panic), then `tried` handling as every
 * balancer does it. Its hosts report each attempt's outcome to the
 * cluster's outlier state, which the data plane keeps across snapshots.
 * A cluster with neither goes straight to its balancer.
 */
import { speaksHttp2 } from './h2-upstream.js';
import type { Cluster, ClusterEndpoints, LoadBalancer, ProxyNode, SnapshotEndpoint } from '../protocol/snapshot.js';
import type { AttemptOutcome, Host, HostSet } from './hosts.js';
import { priorityLevels } from './locality.js';
import { PrioritySelector, type GroupHosts } from './priority-load.js';
import { outlierStoreFor, type ClusterOutliers, type HostOutlier } from './outlier.js';
import { balancerFactory, clusterBalancer, type Balancer, type LbHost } from './load-balancer.js';
import { hashKeyReader, type HashKeyReader } from './lb/hash-key.js';
import type { PoolLease, Upstream } from './upstream-pools.js';
import type { CircuitBreaker } from './circuit-breaker.js';

export class EndpointHost implements Host, LbHost {
  readonly address: string;
  readonly identity: string;
  readonly weight: number;
  /** This host's outlier state, when its cluster detects outliers. */
  readonly outlier: HostOutlier | undefined;
  /** Set only with outlier detection: the forwarder skips the call otherwise. */
  readonly observe?: (outcome: AttemptOutcome) => void;
  constructor(readonly endpoint: SnapshotEndpoint, readonly upstream: Upstream, outliers?: ClusterOutliers, outlier?: HostOutlier) {
    this.address = upstream.address;
    this.identity = endpoint.identity;
    this.weight = endpoint.weight > 0 ? endpoint.weight : 1;
    this.outlier = outlier;
    if (outliers && outlier) this.observe = (o) => outliers.observe(outlier, o);
  }
  get active(): number {
    return this.upstream.active;
  }
}

export type { HashInput, HashKeyReader } from './lb/hash-key.js';

export interface ClusterTarget extends HostSet {
  readonly cluster: Cluster;
  readonly hosts: readonly EndpointHost[];
  readonly balancer: Balancer<EndpointHost>;
  /** Reads the key CONSISTENT_HASH hashes; undefined for the other policies. */
  readonly hashKey: HashKeyReader | undefined;
  /** The cluster's circuit breaker (circuit-breaker.ts), shared across snapshots. */
  readonly breaker: CircuitBreaker;
  /** The cluster's outlier state (shared with other snapshots of the same data plane); undefined without outlier detection. */
  readonly outliers: ClusterOutliers | undefined;
  /** The selection in force (priority loads, panic), when the cluster has outlier detection or locality balancing. */
  readonly selection: PrioritySelector<EndpointHost> | undefined;
}

export function usable(e: SnapshotEndpoint): boolean {
  return (e.health === 'HEALTHY' || e.health === 'UNKNOWN') && !!e.address && e.port > 0 && e.port < 65536;
}

/** Endpoints that count in a locality level's size but get no traffic: down per the registry. */
function countedDown(e: SnapshotEndpoint): boolean {
  return (e.health === 'UNHEALTHY' || e.health === 'DRAINING') && !!e.address;
}

const NO_NODE: Pick<ProxyNode, 'locality' | 'labels'> = Object.freeze({ locality: Object.freeze({ region: '', zone: '', subzone: '' }), labels: Object.freeze({}) });
const NO_LOCALITY: LoadBalancer['locality'] = Object.freeze({ enabled: false, failover: [], distribute: [], failoverPriority: [] });

/**
 * `node`: the proxy's own locality and labels (snapshot `node`), which
 * locality-aware balancing ranks endpoints against; without it the
 * cluster balances as if locality were off.
 */
export function buildClusterTarget(cluster: Cluster, endpoints: ClusterEndpoints, lease: PoolLease, node?: Pick<ProxyNode, 'locality' | 'labels'>): ClusterTarget {
  const cp = cluster.connectionPool;
  const h2 = speaksHttp2(cluster.protocol);
  const pt = { tls: cluster.tls, service: cluster.service };
  const od = cluster.outlierDetection;
  const locality = node !== undefined && cluster.lb.locality.enabled;
  const eps = endpoints.endpoints.filter(usable);
  const store = outlierStoreFor(lease.pools);
  if (!od && !locality) {
    store.forget(cluster.name);
    const hosts = eps.map((e) => new EndpointHost(e, lease.acquire(e.address!, e.port, cp, h2, pt)));
    const balancer = clusterBalancer(cluster, hosts, lease.pools);
    return {
      cluster,
      hosts,
      balancer,
      hashKey: hashKeyReader(cluster.lb),
      breaker: lease.breaker(cluster),
      outliers: undefined,
      selection: undefined,
      pick: (key, tried) => balancer.pick(key, tried as readonly EndpointHost[]),
    };
  }
  const outliers = od ? store.cluster(cluster.name, od) : undefined;
  const ups = eps.map((e) => lease.acquire(e.address!, e.port, cp, h2, pt));
  const states = outliers?.members(ups.map((u) => u.address));
  const hosts = eps.map((e, i) => new EndpointHost(e, ups[i]!, outliers, states?.[i]));
  const make = balancerFactory(cluster, hosts, lease.pools);
  const balancer = make(hosts);
  const hostOf = new Map<SnapshotEndpoint, EndpointHost>(eps.map((e, i) => [e, hosts[i]!]));
  const counted = locality ? endpoints.endpoints.filter((e) => hostOf.has(e) || countedDown(e)) : eps;
  const levels: GroupHosts<EndpointHost>[][] = priorityLevels(counted, node ?? NO_NODE, locality ? cluster.lb.locality : NO_LOCALITY)
    .map((groups) => groups.map((g) => ({ hosts: g.members.flatMap((e) => hostOf.get(e) ?? []), total: g.members.length, weight: g.weight })));
  const ejected = (h: EndpointHost) => h.outlier?.ejected === true;
  const minHealth = od?.minHealthPercent ?? 0;
  let generation = outliers?.generation ?? 0;
  let selection = new PrioritySelector(levels, ejected, minHealth, make);
  // Rebuilt (by the next pick) whenever a host of the cluster is ejected or comes back.
  const current = (): PrioritySelector<EndpointHost> => {
    if (outliers && outliers.generation !== generation) {
      generation = outliers.generation;
      selection = new PrioritySelector(levels, ejected, minHealth, make);
    }
    return selection;
  };
  return {
    cluster,
    hosts,
    balancer,
    hashKey: hashKeyReader(cluster.lb),
    breaker: lease.breaker(cluster),
    outliers,
    get selection() { return current(); },
    // `remoteLocalities`: the route's retryRemoteLocalities, once the forwarder passes it (HostSet.pick takes two arguments today).
    pick: (key: string | undefined, tried: readonly Host[], remoteLocalities?: boolean) => current().pick(key, tried as readonly EndpointHost[], remoteLocalities),
  };
}
