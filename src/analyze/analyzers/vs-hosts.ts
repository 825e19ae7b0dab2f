/**
 * `virtualservice.hosts-without-service` (Trellis-only): a mesh-bound
 * VirtualService host that no service of the registry has. The compiler
 * builds a sidecar's virtual hosts from the registry's services and gives
 * each the VirtualService for its hostname (`meshVsFor`: the exact host,
 * else a wildcard host that covers it), so a VirtualService host that is not
 * a service's hostname (or, for a wildcard, covers none) shapes no traffic
 * at a sidecar. Istio makes a virtual host for any VirtualService host; here
 * the rules are silently unused, so it is said. A host that only a wildcard
 * ServiceEntry covers is named as such: that ServiceEntry's own virtual host
 * takes the requests, without these rules.
 */
import { hostMatches, isWildcard } from '../../registry/host.js';
import type { Analyzer } from '../analyzer.js';
import { boundToMesh, indexedVirtualServices, indexOf } from './vs-common.js';

export const hostsWithoutServiceAnalyzer: Analyzer = {
  name: 'virtualservice.hosts-without-service',
  description: 'Hosts of mesh-bound VirtualServices that are the hostname of no service (or, for a wildcard, cover none): sidecars never apply those rules.',
  reads: ['VirtualService', 'Service', 'ServiceEntry'],
  messages: ['VirtualServiceHostNotAService'],
  run(ctx) {
    const index = indexOf(ctx);
    const services = ctx.registry.services();
    for (const v of indexedVirtualServices(index)) {
      if (!boundToMesh(v)) continue;
      v.hosts.forEach((host, i) => {
        if (host === '*') return; // refused at load for mesh-bound VirtualServices
        const applies = isWildcard(host) ? services.some((s) => hostMatches(host, s.hostname)) : ctx.registry.service(host) !== undefined;
        if (applies) return;
        const wildcard = isWildcard(host) ? undefined : services.find((s) => isWildcard(s.hostname) && hostMatches(s.hostname, host));
        const why = wildcard
          ? `only the wildcard ${wildcard.source} (${wildcard.hostname}) covers it, and that ServiceEntry's own routes take its requests`
          : isWildcard(host) ? 'it covers no service hostname' : 'no Service or ServiceEntry has that hostname';
        ctx.report('VirtualServiceHostNotAService', { host, why }, { resource: v.res, field: ['spec', 'hosts', i] });
      });
    }
  },
};
