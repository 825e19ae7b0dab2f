/**
 * Host names: how a name written in configuration (`reviews`,
 * `reviews.prod`, `*.example.com`) becomes the hostname the registry knows,
 * and how wildcard hosts match. Every comparison is case-insensitive.
 */

/** Known namespaces: a set, or a predicate. */
export type NamespaceSet = ReadonlySet<string> | ((namespace: string) => boolean);

function isNamespace(namespaces: NamespaceSet | undefined, ns: string): boolean {
  if (!namespaces) return false;
  return typeof namespaces === 'function' ? namespaces(ns) : namespaces.has(ns);
}

/**
 * The fully qualified form of `host` as written in a resource of `namespace`
 * (Istio's short-name rule, plus Kubernetes' DNS search path):
 *
 * - `reviews` → `reviews.<namespace>.svc.<suffix>`;
 * - `reviews.prod`, when `prod` is one of `namespaces` →
 *   `reviews.prod.svc.<suffix>` (without `namespaces`, a two-label name is
 *   taken as written, as Istio does);
 * - `reviews.prod.svc` → `reviews.prod.svc.<suffix>`;
 * - anything else (an FQDN, `*`, `*.example.com`) stays as written.
 *
 * The result is lowercase, without a trailing dot.
 *
 * @example resolveHost('reviews', 'default') // 'reviews.default.svc.cluster.local'
 */
export function resolveHost(host: string, namespace: string, domainSuffix = 'cluster.local', namespaces?: NamespaceSet): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h.includes('*')) return h;
  const labels = h.split('.');
  if (labels.length === 1) return `${h}.${namespace}.svc.${domainSuffix}`;
  if (labels.length === 2 && isNamespace(namespaces, labels[1]!)) return `${h}.svc.${domainSuffix}`;
  if (labels.length === 3 && labels[2] === 'svc') return `${h}.${domainSuffix}`;
  return h;
}

/** Whether `host` is a wildcard (`*`, `*.example.com`, `*x.com`). */
export function isWildcard(host: string): boolean {
  return host.startsWith('*');
}

/**
 * Whether `pattern` covers `host`. `*` covers everything; `*.example.com`
 * covers `a.example.com` and `a.b.example.com` but not `example.com`; a
 * concrete pattern covers only the same name. A partial wildcard `*x.com`
 * covers names ending in `x.com` (Istio's suffix rule). When `host` is itself a
 * wildcard, it is covered only by a pattern at least as wide
 * (`*.example.com` covers `*.a.example.com`).
 */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (p === h || p === '*') return true;
  if (!isWildcard(p)) return false;
  const suffix = p.slice(1);
  if (isWildcard(h)) return h.slice(1).endsWith(suffix);
  return h.length > suffix.length && h.endsWith(suffix);
}

/** Whether some name is matched by both hosts (either covers the other). */
export function hostsOverlap(a: string, b: string): boolean {
  return hostMatches(a, b) || hostMatches(b, a);
}

/**
 * The names a caller may use for a cluster service, shortest first:
 * `reviews` (only from the service's own namespace), `reviews.default`,
 * `reviews.default.svc`, `reviews.default.svc.cluster.local`. Used for the
 * domains of a virtual host. A hostname outside the cluster suffix
 * (`api.example.com`, a wildcard) has only itself.
 *
 * `callerNamespace` defaults to the service's namespace.
 */
export function shortNames(fqdn: string, callerNamespace?: string, domainSuffix = 'cluster.local'): string[] {
  const h = fqdn.toLowerCase();
  const tail = `.svc.${domainSuffix}`;
  if (isWildcard(h) || !h.endsWith(tail)) return [h];
  const parts = h.slice(0, -tail.length).split('.');
  if (parts.length !== 2) return [h];
  const [name, ns] = parts as [string, string];
  const out = [`${name}.${ns}`, `${name}.${ns}.svc`, h];
  if (callerNamespace === undefined || callerNamespace === ns) out.unshift(name);
  return out;
}

/** `{ name, namespace }` of a cluster hostname `name.ns.svc.<suffix>`, or undefined. */
export function splitClusterHost(fqdn: string, domainSuffix = 'cluster.local'): { name: string; namespace: string } | undefined {
  const tail = `.svc.${domainSuffix}`;
  if (!fqdn.endsWith(tail)) return undefined;
  const parts = fqdn.slice(0, -tail.length).split('.');
  return parts.length === 2 ? { name: parts[0]!, namespace: parts[1]! } : undefined;
}
