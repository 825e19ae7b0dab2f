/**
 * Pure "does this change affect this proxy?" predicates, in the manner of
 * Istio's push filters: a push goes only to proxies whose snapshot would
 * differ. They decide from the previous snapshot and the changed resources,
 * without compiling.
 */
import type { Resource } from '../api/resource.js';
import type { Snapshot } from '../protocol/snapshot.js';
import { hostMatches, resolveHost } from '../registry/host.js';

/** The hosts a changed resource can influence (resolved FQDNs, may be wildcards); undefined: any. */
export function affectedHosts(r: Resource, domainSuffix = 'cluster.local'): readonly string[] | undefined {
  const ns = r.metadata.namespace;
  const spec = (r.body as { spec?: { hosts?: string[]; host?: string } }).spec;
  switch (r.kind) {
    case 'VirtualService':
      return (spec?.hosts ?? []).map((h) => resolveHost(h, ns, domainSuffix));
    case 'DestinationRule':
      return spec?.host ? [resolveHost(spec.host, ns, domainSuffix)] : [];
    default:
      return undefined;
  }
}

/** The hosts a snapshot routes to or through: its virtual hosts' domains and its clusters' services. */
export function snapshotHosts(s: Snapshot): Set<string> {
  const out = new Set<string>();
  for (const t of s.outbound.http) for (const vh of t.virtualHosts) for (const d of vh.domains) out.add(d);
  for (const t of s.outbound.tcp) out.add(t.host);
  for (const c of s.clusters) out.add(c.service);
  for (const l of s.inbound) out.add(l.service);
  return out;
}

/**
 * Whether a change of `changed` (old and/or new versions of resources) can
 * alter the snapshot `previous`. Conservative: any other kind (MeshConfig,
 * Gateway, ServiceEntry, registry data) answers true.
 */
export function affectsProxy(previous: Snapshot, changed: readonly Resource[], hosts: Set<string> = snapshotHosts(previous)): boolean {
  for (const r of changed) {
    const hs = affectedHosts(r, previous.mesh.domainSuffix);
    if (hs === undefined) return true;
    for (const h of hs) {
      if (hosts.has(h)) return true;
      if (h.includes('*')) for (const x of hosts) if (hostMatches(h, x)) return true;
    }
    // A VirtualService whose hosts are new to this proxy still matters when it binds to its gateway.
    if (r.kind === 'VirtualService' && previous.node.kind === 'gateway') return true;
  }
  return false;
}
