/**
 * A registry as plain JSON and back: the control plane's admin API serves
 * `registryDump` at `/registry`, and `trellis analyze --live` rebuilds a
 * read-only Registry from it with `registryFromDump`, so the analyzers see
 * the running mesh's services, workloads and endpoints (registered instances
 * included) exactly as the control plane holds them.
 */
import type { Endpoint, Registry, Service, Workload } from './types.js';

export interface RegistryDump {
  readonly trustDomain: string;
  readonly domainSuffix: string;
  readonly namespaces: readonly string[];
  readonly services: readonly Service[];
  readonly workloads: readonly Workload[];
  /** Every service port's endpoints: `{ service, port, endpoints, hash }`. */
  readonly endpoints: readonly { readonly service: string; readonly port: number; readonly hash: string; readonly endpoints: readonly Endpoint[] }[];
}

export function registryDump(r: Registry): RegistryDump {
  const endpoints: RegistryDump['endpoints'][number][] = [];
  for (const s of r.services()) {
    for (const p of s.ports) endpoints.push({ service: s.hostname, port: p.port, hash: r.endpointsHash(s.hostname, p.port), endpoints: r.endpoints(s.hostname, p.port) });
  }
  return { trustDomain: r.trustDomain, domainSuffix: r.domainSuffix, namespaces: r.namespaces(), services: r.services(), workloads: r.workloads(), endpoints };
}

/** A read-only Registry over a dump (as `registryDump` made it, after JSON). Throws on a body of another shape. */
export function registryFromDump(d: RegistryDump): Registry {
  if (!d || typeof d !== 'object' || !Array.isArray(d.services) || !Array.isArray(d.workloads) || !Array.isArray(d.endpoints) || !Array.isArray(d.namespaces)) {
    throw new Error('not a registry dump: expected trustDomain, domainSuffix, namespaces, services, workloads and endpoints');
  }
  const byHost = new Map(d.services.map((s) => [s.hostname.toLowerCase(), s]));
  const eps = new Map(d.endpoints.map((e) => [`${e.service.toLowerCase()}|${e.port}`, e]));
  const EMPTY: readonly Endpoint[] = Object.freeze([]);
  return Object.freeze({
    trustDomain: d.trustDomain,
    domainSuffix: d.domainSuffix,
    services: () => d.services,
    service: (h: string) => byHost.get(h.toLowerCase()),
    endpoints: (h: string, port: number) => eps.get(`${h.toLowerCase()}|${port}`)?.endpoints ?? EMPTY,
    endpointsHash: (h: string, port: number) => eps.get(`${h.toLowerCase()}|${port}`)?.hash ?? '',
    workloads: () => d.workloads,
    workload: (name: string, namespace?: string) => {
      const n = name.replace(/#\d+$/, '');
      if (namespace !== undefined) return d.workloads.find((w) => w.name === n && w.namespace === namespace);
      const found = d.workloads.filter((w) => w.name === n || `${w.name}.${w.namespace}` === n);
      return found.length === 1 ? found[0] : undefined;
    },
    namespaces: () => d.namespaces,
  });
}
