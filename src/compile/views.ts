/**
 * Per-service slices of a proxy's view, and what a configuration change
 * dirties. A slice holds everything one service contributes to an outbound
 * view: its virtual hosts (or TCP routes) per port, and its clusters with
 * their endpoint lists. Clusters of a service depend only on that service, its
 * DestinationRule and its endpoints (a cluster for the default subset and one
 * per DestinationRule subset, as Istio builds them); a route naming a subset
 * the DestinationRule lacks names a cluster that does not exist (503, NC).
 */
import type { ConfigSet } from '../api/config-set.js';
import type { Resource } from '../api/resource.js';
import type { Cluster, ClusterEndpoints, TcpRoute, VirtualHost } from '../protocol/snapshot.js';
import { hostMatches, resolveHost, type NamespaceSet } from '../registry/host.js';
import type { Registry } from '../registry/types.js';

export interface RouteSlice {
  readonly vhosts: readonly VirtualHost[];
  readonly tcp: readonly TcpRoute[];
}

export interface ClusterSlice {
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterEndpoints[];
}

export interface ServiceSlice {
  readonly routes: RouteSlice;
  readonly clusters: ClusterSlice;
}

/**
 * The service hostnames whose slices a change from `before` to `after` can
 * alter, or undefined when the change is of a kind that can alter anything
 * (then every slice is recomputed, through the memos).
 */
export function dirtyHosts(before: ConfigSet, after: ConfigSet, registry: Registry, suffix: string, namespaces: NamespaceSet): Set<string> | undefined {
  const changed: Resource[] = [];
  const old = new Map<string, Resource>();
  for (const r of before.resources) old.set(r.key, r);
  for (const r of after.resources) {
    const o = old.get(r.key);
    if (o === undefined) changed.push(r);
    else {
      if (o.hash !== r.hash) changed.push(o, r);
      old.delete(r.key);
    }
  }
  for (const o of old.values()) changed.push(o);
  const dirty = new Set<string>();
  for (const r of changed) {
    const ns = r.metadata.namespace;
    let hosts: readonly string[];
    if (r.kind === 'VirtualService') hosts = ((r.body as { spec: { hosts?: readonly string[] } }).spec.hosts ?? []);
    else if (r.kind === 'DestinationRule') hosts = [(r.body as { spec: { host: string } }).spec.host];
    else return undefined;
    for (const h of hosts) {
      const fqdn = resolveHost(h, ns, suffix, namespaces);
      if (fqdn.includes('*')) {
        for (const s of registry.services()) if (hostMatches(fqdn, s.hostname)) dirty.add(s.hostname);
      } else dirty.add(fqdn);
    }
  }
  return dirty;
}
