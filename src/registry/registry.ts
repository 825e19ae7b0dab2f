/**
 * The registry: merges the services and workloads of its sources and derives
 * the endpoints of every service port. Built once and immutable; a change
 * builds a new registry (pass the old one as `previous` to keep the identity
 * of everything that did not change).
 */
import type { Diagnostic } from '../api/diagnostic.js';
import { contentHash } from '../api/validate.js';
import { registryDiagnostic } from './diagnostics.js';
import { compareEndpoints, selectedEndpoints } from './endpoints.js';
import { overlayLive, type LiveInstances } from './live.js';
import type { Endpoint, Registry, RegistrySource, Service, StaticEndpoint, Workload } from './types.js';

export interface RegistryOptions {
  /** Trust domain of identities; `cluster.local` by default. */
  readonly trustDomain?: string;
  /** Cluster domain suffix; `cluster.local` by default. */
  readonly domainSuffix?: string;
  /** The registry this one replaces: unchanged services, workloads and endpoint lists keep their object identity. */
  readonly previous?: Registry;
  /**
   * Registered instances by `Endpoint.instance`: their endpoints take address,
   * port and health from the registration (see live.ts). Endpoints a source
   * lists directly (ServiceEntry endpoints) are not affected.
   */
  readonly instances?: LiveInstances;
}

/** A registry and what was found while building it (duplicate hostnames, unresolved named ports). */
export interface RegistryBuild {
  readonly registry: Registry;
  readonly diagnostics: readonly Diagnostic[];
}

const EMPTY: readonly Endpoint[] = Object.freeze([]);
const EMPTY_HASH = contentHash([]);

/**
 * Builds a registry from sources, in order. A hostname (or a workload
 * `name.namespace`) declared twice keeps its first declaration; the later one
 * is reported and ignored, never merged.
 */
export function createRegistry(sources: readonly RegistrySource[], opts: RegistryOptions = {}): RegistryBuild {
  const diagnostics: Diagnostic[] = [];
  const positionOf = (source: string) => {
    for (const s of sources) {
      const p = s.positionOf?.(source);
      if (p) return p;
    }
    return undefined;
  };

  const services = new Map<string, Service>();
  const workloads = new Map<string, Workload>();
  const namespaces = new Set<string>();
  const statics: StaticEndpoint[] = [];
  for (const src of sources) {
    for (const s of src.services()) {
      const first = services.get(s.hostname);
      if (first) {
        diagnostics.push(registryDiagnostic('DuplicateServiceHost', { host: s.hostname, first: first.source, resource: s.source }, s.source, positionOf(s.source)));
        continue;
      }
      services.set(s.hostname, reuse(s, opts.previous?.service(s.hostname)));
    }
    for (const w of src.workloads()) {
      const key = `${w.name}.${w.namespace}`;
      const first = workloads.get(key);
      if (first) {
        diagnostics.push(registryDiagnostic('DuplicateWorkload', { workload: key, first: first.source, resource: w.source }, w.source, positionOf(w.source)));
        continue;
      }
      workloads.set(key, reuse(w, opts.previous?.workload(w.name, w.namespace)));
    }
    statics.push(...src.staticEndpoints());
    for (const ns of src.namespaces?.() ?? []) namespaces.add(ns);
  }

  const workloadList = freeze([...workloads.values()].sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name)));
  const staticByPort = new Map<string, Endpoint[]>();
  for (const e of statics) {
    const svc = services.get(e.service);
    if (!svc || (e.source !== undefined && e.source !== svc.source)) continue;
    const { service: _s, servicePort: _p, source: _src, ...endpoint } = e;
    const k = key(e.service, e.servicePort);
    const list = staticByPort.get(k);
    if (list) list.push(endpoint);
    else staticByPort.set(k, [endpoint]);
  }

  const byNamespace = new Map<string, Workload[]>();
  for (const w of workloadList) {
    const list = byNamespace.get(w.namespace);
    if (list) list.push(w);
    else byNamespace.set(w.namespace, [w]);
  }
  const endpointLists = new Map<string, { list: readonly Endpoint[]; hash: string }>();
  for (const svc of services.values()) {
    namespaces.add(svc.namespace);
    for (const sp of svc.ports) {
      const k = key(svc.hostname, sp.port);
      const list = [...(staticByPort.get(k) ?? [])];
      const selected = selectedEndpoints(svc, sp, byNamespace.get(svc.namespace) ?? [], (w) => {
        diagnostics.push(registryDiagnostic('UnresolvedTargetPort', { port: sp.port, service: svc.hostname, targetPort: String(sp.targetPort), workload: `${w.name}.${w.namespace}` }, svc.source, positionOf(svc.source)));
      });
      for (const e of selected) list.push(overlayLive(e, opts.instances));
      list.sort(compareEndpoints);
      const hash = contentHash(list);
      const before = opts.previous?.endpoints(svc.hostname, sp.port);
      const prev = before && opts.previous!.endpointsHash(svc.hostname, sp.port) === hash ? before : undefined;
      endpointLists.set(k, { list: prev ?? freeze(reuseEndpoints(list, before)), hash });
    }
  }
  for (const w of workloadList) namespaces.add(w.namespace);

  const registry = new BuiltRegistry({
    services: freeze([...services.values()].sort((a, b) => cmp(a.hostname, b.hostname))),
    byHost: services,
    workloads: workloadList,
    endpoints: endpointLists,
    namespaces: freeze([...namespaces].sort()),
    trustDomain: opts.trustDomain ?? 'cluster.local',
    domainSuffix: opts.domainSuffix ?? 'cluster.local',
  });
  return Object.freeze({ registry, diagnostics: Object.freeze(diagnostics) });
}

interface Parts {
  readonly services: readonly Service[];
  readonly byHost: ReadonlyMap<string, Service>;
  readonly workloads: readonly Workload[];
  readonly endpoints: ReadonlyMap<string, { list: readonly Endpoint[]; hash: string }>;
  readonly namespaces: readonly string[];
  readonly trustDomain: string;
  readonly domainSuffix: string;
}

class BuiltRegistry implements Registry {
  readonly trustDomain: string;
  readonly domainSuffix: string;
  readonly #p: Parts;
  readonly #byKey = new Map<string, Workload>();
  readonly #byName = new Map<string, Workload[]>();

  constructor(p: Parts) {
    this.#p = p;
    this.trustDomain = p.trustDomain;
    this.domainSuffix = p.domainSuffix;
    for (const w of p.workloads) {
      this.#byKey.set(`${w.name}.${w.namespace}`, w);
      const same = this.#byName.get(w.name);
      if (same) same.push(w);
      else this.#byName.set(w.name, [w]);
    }
    Object.freeze(this);
  }

  services(): readonly Service[] {
    return this.#p.services;
  }

  service(hostname: string): Service | undefined {
    return this.#p.byHost.get(hostname.toLowerCase());
  }

  endpoints(hostname: string, port: number): readonly Endpoint[] {
    return this.#p.endpoints.get(key(hostname.toLowerCase(), port))?.list ?? EMPTY;
  }

  endpointsHash(hostname: string, port: number): string {
    return this.#p.endpoints.get(key(hostname.toLowerCase(), port))?.hash ?? EMPTY_HASH;
  }

  workloads(): readonly Workload[] {
    return this.#p.workloads;
  }

  /**
   * A workload by `name` and `namespace`; without a namespace, `name` may be
   * `name.namespace`, or a name unique across namespaces. An instance suffix
   * (`#1`) is ignored. Ambiguous (several matches) or unknown: undefined.
   */
  workload(name: string, namespace?: string): Workload | undefined {
    const n = name.replace(/#\d+$/, '');
    if (namespace !== undefined) return this.#byKey.get(`${n}.${namespace}`);
    const found = new Set<Workload>(this.#byName.get(n) ?? []);
    const dot = n.lastIndexOf('.');
    if (dot > 0) {
      const w = this.#byKey.get(n);
      if (w) found.add(w);
    }
    return found.size === 1 ? [...found][0] : undefined;
  }

  namespaces(): readonly string[] {
    return this.#p.namespaces;
  }
}

function key(host: string, port: number): string {
  return `${host}|${port}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function reuse<T extends { readonly hash: string }>(next: T, prev: T | undefined): T {
  return prev && prev.hash === next.hash ? prev : freezeDeep(next);
}

/**
 * The endpoints of a changed list, frozen, where each endpoint equal to one of
 * the previous list (same instance, same content) is that previous object.
 */
function reuseEndpoints(list: Endpoint[], before: readonly Endpoint[] | undefined): Endpoint[] {
  if (!before?.length) return list.map(freezeDeep);
  const byInstance = new Map<string, Endpoint>();
  for (const e of before) byInstance.set(`${e.instance}|${e.address ?? ''}|${e.port}`, e);
  return list.map((e) => {
    const old = byInstance.get(`${e.instance}|${e.address ?? ''}|${e.port}`);
    return old && sameEndpoint(old, e) ? old : freezeDeep(e);
  });
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.health === b.health && a.weight === b.weight && a.identity === b.identity && a.serviceAccount === b.serviceAccount
    && a.workload === b.workload && a.namespace === b.namespace
    && (a.labels === b.labels || contentHash(a.labels) === contentHash(b.labels))
    && (a.locality === b.locality || contentHash(a.locality) === contentHash(b.locality));
}

function freeze<T>(list: T[]): readonly T[] {
  return Object.freeze(list);
}

/** Freezes a plain value and everything in it, even below an already frozen object. */
function freezeDeep<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) freezeDeep(x);
    Object.freeze(v);
  }
  return v;
}
