/**
 * `virtualservice.destination-hosts` (Istio's DestinationHostAnalyzer): every
 * route and mirror destination names a service the VirtualService's
 * namespaces can see, on a port it has; a multi-port destination names its
 * port; and a gateway route does not silently bypass a subset split that the
 * mesh's VirtualService for the same host makes.
 */
import { isWildcard } from '../../registry/host.js';
import type { Service } from '../../registry/types.js';
import type { AnalysisContext, Analyzer } from '../analyzer.js';
import { fqdn, servicesFor } from '../lookup.js';
import { boundToMesh, destinationsOf, indexedVirtualServices, indexOf, listOf, scopesOf, type DestinationAt, type VsResource } from './vs-common.js';

interface Resolved {
  readonly host: string;
  readonly services: readonly Service[];
}

/** The services a destination names, seen from the first namespace the VirtualService applies in that sees one. */
function resolve(ctx: AnalysisContext, vs: VsResource, host: string): Resolved {
  const full = fqdn(ctx, host, vs.metadata.namespace);
  for (const scope of scopesOf(vs)) {
    const services = servicesFor(ctx, full, scope);
    if (services.length) return { host: full, services };
  }
  return { host: full, services: [] };
}

function notFoundHint(ctx: AnalysisContext, vs: VsResource, host: string): string {
  const scopes = listOf(scopesOf(vs));
  const where = vs.body.spec.exportTo?.length ? `namespace ${scopes}, where this VirtualService applies (its exportTo)` : `namespace ${scopes}`;
  const svc = ctx.registry.service(host);
  if (svc) {
    return ` for ${where}: ${svc.source} exports it only to ${listOf(svc.exportTo)}; export it there or route to a host that namespace can see`;
  }
  return ` as seen from ${where} (resolved to ${host}): no Service or ServiceEntry has that name; fix the host or add a ServiceEntry for it`;
}

function checkDestination(ctx: AnalysisContext, vs: VsResource, d: DestinationAt): void {
  const written = d.destination.host;
  const r = resolve(ctx, vs, written);
  const what = d.kind === 'mirror' ? 'mirror host' : 'host';
  if (r.services.length === 0) {
    ctx.report('ReferencedResourceNotFound', { what, name: written, hint: notFoundHint(ctx, vs, r.host) }, { resource: vs, field: [...d.path, 'host'] });
    return;
  }
  if (isWildcard(r.host)) return; // a wildcard destination names many services: no one port list applies
  const svc = r.services[0]!;
  const ports = svc.ports.map((p) => p.port);
  const number = d.destination.port?.number;
  if (number === undefined) {
    if (ports.length > 1) ctx.report('VirtualServiceDestinationPortSelectorRequired', { host: written, ports: ports.join(', ') }, { resource: vs, field: d.path });
    return;
  }
  if (ports.length > 0 && !ports.includes(number)) {
    ctx.report('ReferencedResourceNotFound', {
      what: `${what} port`, name: `${written}:${number}`,
      hint: `: ${svc.source} has ${ports.length === 1 ? 'port' : 'ports'} ${ports.join(', ')}; use one of them`,
    }, { resource: vs, field: [...d.path, 'port', 'number'] });
  }
}

/** Mesh VirtualServices that split traffic to a host of theirs by subset: host → the VirtualServices. */
function subsetSplits(ctx: AnalysisContext): Map<string, VsResource[]> {
  const out = new Map<string, VsResource[]>();
  for (const ivs of indexedVirtualServices(indexOf(ctx))) {
    if (!boundToMesh(ivs)) continue;
    const ns = ivs.res.metadata.namespace;
    for (const d of destinationsOf(ivs.res)) {
      if (d.kind !== 'route' || d.protocol !== 'http' || !d.destination.subset) continue;
      const host = fqdn(ctx, d.destination.host, ns);
      if (!ivs.hosts.includes(host)) continue;
      const list = out.get(host) ?? [];
      if (!list.includes(ivs.res)) list.push(ivs.res);
      out.set(host, list);
    }
  }
  return out;
}

/** Gateway routes without a subset to a host whose mesh VirtualService splits it by subset. */
function checkGatewayBypass(ctx: AnalysisContext): void {
  const splits = subsetSplits(ctx);
  if (splits.size === 0) return;
  for (const ivs of indexedVirtualServices(indexOf(ctx))) {
    if (!ivs.gateways.some((g) => g !== 'mesh')) continue;
    for (const d of destinationsOf(ivs.res)) {
      if (d.kind !== 'route' || d.protocol !== 'http' || d.destination.subset) continue;
      const host = fqdn(ctx, d.destination.host, ivs.res.metadata.namespace);
      const others = (splits.get(host) ?? []).filter((v) => v !== ivs.res);
      if (others.length === 0) continue;
      ctx.report('IngressRouteRulesNotAffected', { host, other: listOf(others.map((v) => v.ref)) }, { resource: ivs.res, field: [...d.path, 'host'] });
    }
  }
}

export const destinationHostsAnalyzer: Analyzer = {
  name: 'virtualservice.destination-hosts',
  description: 'Route and mirror destinations name a service their VirtualService can see, on a port it has (and name the port when it has several); gateway routes do not bypass a mesh subset split.',
  reads: ['VirtualService', 'Service', 'ServiceEntry'],
  messages: ['ReferencedResourceNotFound', 'VirtualServiceDestinationPortSelectorRequired', 'IngressRouteRulesNotAffected'],
  istio: ['virtualservice.DestinationHostAnalyzer'],
  run(ctx) {
    for (const vs of ctx.ofKind('VirtualService')) {
      for (const d of destinationsOf(vs)) checkDestination(ctx, vs, d);
    }
    checkGatewayBypass(ctx);
  },
};
