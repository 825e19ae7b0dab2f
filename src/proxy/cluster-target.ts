/**
 * A cluster as requests see it: its usable endpoints (HEALTHY or UNKNOWN,
 * with an address), each bound to a pooled upstream (keyed by the cluster's
 * TLS settings too: an ISTIO_MUTUAL cluster's pools originate mTLS with
 * secure naming against `tls.subjectAltNames`), and the load balancer of
 * the cluster's policy over them. Built once per snapshot.
 */
import { queryParam } from '../policy/request.js';
import { speaksHttp2 } from './h2-upstream.js';
import type { Cluster, ClusterEndpoints, LoadBalancer, SnapshotEndpoint } from '../protocol/snapshot.js';
import type { Host, HostSet } from './hosts.js';
import type { Headers } from './headers.js';
import { createBalancer, type Balancer, type LbHost } from './load-balancer.js';
import type { PoolLease, Upstream } from './upstream-pools.js';

export class EndpointHost implements Host, LbHost {
  readonly address: string;
  readonly identity: string;
  readonly weight: number;
  constructor(readonly endpoint: SnapshotEndpoint, readonly upstream: Upstream) {
    this.address = upstream.address;
    this.identity = endpoint.identity;
    this.weight = endpoint.weight > 0 ? endpoint.weight : 1;
  }
  get active(): number {
    return this.upstream.active;
  }
}

/** What a consistent-hash key is read from. */
export interface HashInput {
  readonly headers: Headers;
  readonly path: string;
  readonly remoteAddress: string | undefined;
}

export type HashKeyReader = (req: HashInput) => string | undefined;

export interface ClusterTarget extends HostSet {
  readonly cluster: Cluster;
  readonly hosts: readonly EndpointHost[];
  readonly balancer: Balancer<EndpointHost>;
  /** Reads the key CONSISTENT_HASH hashes; undefined for the other policies. */
  readonly hashKey: HashKeyReader | undefined;
}

export function usable(e: SnapshotEndpoint): boolean {
  return (e.health === 'HEALTHY' || e.health === 'UNKNOWN') && !!e.address && e.port > 0 && e.port < 65536;
}

function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const s = typeof header === 'string' ? header : header.join('; ');
  for (const part of s.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function hashKeyReader(lb: LoadBalancer): HashKeyReader | undefined {
  if (lb.policy !== 'CONSISTENT_HASH' || !lb.hashOn) return undefined;
  const { header, cookie, sourceIp, queryParameter } = lb.hashOn;
  if (header !== undefined) {
    const name = header.toLowerCase();
    return (r) => { const v = r.headers[name]; return v === undefined ? undefined : typeof v === 'string' ? v : v.join(','); };
  }
  if (cookie !== undefined) return (r) => cookieValue(r.headers.cookie, cookie);
  if (sourceIp) return (r) => r.remoteAddress;
  if (queryParameter !== undefined) return (r) => queryParam(r.path, queryParameter);
  return undefined;
}

export function buildClusterTarget(cluster: Cluster, endpoints: ClusterEndpoints, lease: PoolLease): ClusterTarget {
  const cp = cluster.connectionPool;
  const h2 = speaksHttp2(cluster.protocol);
  const pt = { tls: cluster.tls, service: cluster.service };
  const hosts = endpoints.endpoints.filter(usable).map((e) => new EndpointHost(e, lease.acquire(e.address!, e.port, cp, h2, pt)));
  const balancer = createBalancer<EndpointHost>(cluster.lb.policy, hosts, (h) => h.address);
  return {
    cluster,
    hosts,
    balancer,
    hashKey: hashKeyReader(cluster.lb),
    pick: (key, tried) => balancer.pick(key, tried as readonly EndpointHost[]),
  };
}
