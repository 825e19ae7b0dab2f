/**
 * `virtualservice.conflicting-mesh-hosts` (Istio's
 * ConflictingMeshGatewayHostsAnalyzer): two VirtualServices bound to the
 * mesh claim the same host where a namespace sees both. A sidecar takes one
 * VirtualService per host (`meshVsFor`: exact hosts first, then wildcards,
 * each in load order), so the other's routes for that host are lost. Hosts
 * conflict when they are the same name, or both wildcards that overlap (the
 * wildcard that loads first wins the names both cover); an exact host beside
 * a wildcard that covers it is not a conflict, the exact one wins by design.
 */
import type { IndexedVs, Visibility } from '../../compile/config-index.js';
import { hostsOverlap, isWildcard } from '../../registry/host.js';
import type { Analyzer } from '../analyzer.js';
import { boundToMesh, indexedVirtualServices, indexOf, listOf } from './vs-common.js';

function meet(a: Visibility, b: Visibility): boolean {
  if (a.all) return b.all || b.namespaces.size > 0;
  if (b.all) return a.namespaces.size > 0;
  for (const ns of a.namespaces) if (b.namespaces.has(ns)) return true;
  return false;
}

function clash(a: string, b: string): boolean {
  if (a === b) return true;
  return isWildcard(a) && isWildcard(b) && hostsOverlap(a, b);
}

export const conflictingMeshHostsAnalyzer: Analyzer = {
  name: 'virtualservice.conflicting-mesh-hosts',
  description: 'No two VirtualServices bound to the mesh claim the same host in a namespace that sees both.',
  reads: ['VirtualService'],
  messages: ['ConflictingMeshGatewayVirtualServiceHosts'],
  istio: ['virtualservice.ConflictingMeshGatewayHostsAnalyzer'],
  run(ctx) {
    const mesh = indexedVirtualServices(indexOf(ctx)).filter(boundToMesh);
    for (const a of mesh) {
      const hosts: string[] = [];
      const others = new Set<IndexedVs>();
      let first = -1;
      a.hosts.forEach((h, i) => {
        const rivals = mesh.filter((b) => b !== a && meet(a.visibleTo, b.visibleTo) && b.hosts.some((bh) => clash(h, bh)));
        if (rivals.length === 0) return;
        if (first < 0) first = i;
        hosts.push(h);
        for (const b of rivals) others.add(b);
      });
      if (first < 0) continue;
      ctx.report('ConflictingMeshGatewayVirtualServiceHosts', {
        host: hosts.length === 1 ? `host ${hosts[0]}` : `hosts ${listOf(hosts)}`,
        others: listOf([...others].map((b) => b.res.ref)),
      }, { resource: a.res, field: ['spec', 'hosts', first] });
    }
  },
};
