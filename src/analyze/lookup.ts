/**
 * What analyzers ask of the mesh again and again: the full name of a host as
 * a resource wrote it, the service a host names from a namespace (exportTo
 * honoured), the workloads a selector picks, whether a namespace exists.
 * Built on the registry's and compiler's own rules, so an analyzer resolves a
 * name exactly as the proxies' configuration does.
 */
import { visibility, visibleIn } from '../compile/config-index.js';
import { hostMatches, isWildcard, resolveHost } from '../registry/host.js';
import { selects } from '../registry/endpoints.js';
import type { Service, Workload } from '../registry/types.js';
import type { AnalysisContext } from './analyzer.js';

/** The fully qualified form of `host` written in a resource of `namespace`. */
export function fqdn(ctx: AnalysisContext, host: string, namespace: string): string {
  const known = new Set(ctx.registry.namespaces());
  return resolveHost(host, namespace, ctx.registry.domainSuffix, known);
}

/** Whether `service` may be seen from `namespace` (its exportTo). */
export function serviceVisible(service: Service, namespace: string): boolean {
  return visibleIn(visibility(service.exportTo, service.namespace), namespace);
}

/**
 * The services a host (as written in a resource of `namespace`) names and
 * that namespace can see: the exact service first, else wildcard
 * ServiceEntries covering it; for a wildcard host, every visible service it
 * covers.
 */
export function servicesFor(ctx: AnalysisContext, host: string, namespace: string): Service[] {
  const h = fqdn(ctx, host, namespace);
  const visible = (s: Service) => serviceVisible(s, namespace);
  if (isWildcard(h)) return ctx.registry.services().filter((s) => visible(s) && hostMatches(h, s.hostname));
  const exact = ctx.registry.service(h);
  if (exact && visible(exact)) return [exact];
  return ctx.registry.services().filter((s) => visible(s) && isWildcard(s.hostname) && hostMatches(s.hostname, h));
}

/** Workloads of `namespace` (every namespace when undefined) whose labels the selector picks; `{}` picks all. */
export function workloadsSelected(ctx: AnalysisContext, selector: Readonly<Record<string, string>> | undefined, namespace?: string): Workload[] {
  return ctx.registry.workloads().filter((w) => (namespace === undefined || w.namespace === namespace) && selects(selector ?? {}, w.labels));
}

/** Whether the mesh knows the namespace (a Namespace resource, or a service or workload in it). */
export function namespaceExists(ctx: AnalysisContext, namespace: string): boolean {
  return ctx.registry.namespaces().includes(namespace);
}
