/**
 * The registry source for configuration files: Kubernetes Services, Pods,
 * Deployments, Namespaces and ServiceAccounts; Istio ServiceEntries and
 * WorkloadEntries; and the local-mode App manifest. Services are listed in
 * that order (Kubernetes, App, ServiceEntry), so a Kubernetes Service wins a
 * hostname shared with a ServiceEntry.
 */
import type { ConfigSet } from '../../api/config-set.js';
import type { Position } from '../../api/diagnostic.js';
import type { RegistrySource, Service, StaticEndpoint, Workload } from '../types.js';
import { fromApp } from './app.js';
import { fromServiceEntry, fromWorkloadEntry } from './istio.js';
import { fromDeployment, fromPod, fromService, type ConvertOptions } from './kubernetes.js';
import { deepFreeze } from './make.js';

export interface ConfigSourceOptions {
  /** Trust domain of the identities; `cluster.local` by default. */
  readonly trustDomain?: string;
  /** Cluster domain suffix of service hostnames; `cluster.local` by default. */
  readonly domainSuffix?: string;
  /** Name of the source in messages; `config` by default. */
  readonly name?: string;
}

/** A registry source reading a configuration set. The set is read once, when the source is made. */
export function configSource(config: ConfigSet, opts: ConfigSourceOptions = {}): RegistrySource {
  const o: ConvertOptions = { trustDomain: opts.trustDomain ?? 'cluster.local', domainSuffix: opts.domainSuffix ?? 'cluster.local' };
  const services: Service[] = [];
  const workloads: Workload[] = [];
  const statics: StaticEndpoint[] = [];

  for (const r of config.ofKind('Service')) {
    const { service, statics: s } = fromService(r, o);
    services.push(service);
    statics.push(...s);
  }
  for (const r of config.ofKind('App')) {
    const app = fromApp(r, o);
    services.push(...app.services);
    workloads.push(...app.workloads);
  }
  for (const r of config.ofKind('ServiceEntry')) {
    const se = fromServiceEntry(r, o);
    services.push(...se.services);
    statics.push(...se.statics);
  }
  for (const r of config.ofKind('Deployment')) workloads.push(fromDeployment(r, o));
  for (const r of config.ofKind('Pod')) workloads.push(fromPod(r, o));
  for (const r of config.ofKind('WorkloadEntry')) workloads.push(fromWorkloadEntry(r, o));

  const namespaces = new Set<string>();
  for (const r of config.ofKind('Namespace')) namespaces.add(r.metadata.name);
  for (const r of config.ofKind('ServiceAccount')) namespaces.add(r.metadata.namespace);

  const positions = new Map<string, Position>(config.resources.map((r) => [r.ref, r.position]));
  const frozen = {
    services: deepFreeze(services),
    workloads: deepFreeze(workloads),
    statics: deepFreeze(statics),
    namespaces: Object.freeze([...namespaces].sort()),
  };
  return Object.freeze({
    name: opts.name ?? 'config',
    services: () => frozen.services,
    workloads: () => frozen.workloads,
    staticEndpoints: () => frozen.statics,
    namespaces: () => frozen.namespaces,
    positionOf: (source: string) => positions.get(source),
  });
}
