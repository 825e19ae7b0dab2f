/**
 * Name rules shared by the networking and security kinds, as Istio applies
 * them: DNS labels, hosts with a leading wildcard, `namespace/host` entries,
 * IP addresses and CIDR blocks, `exportTo` lists. Each check returns a
 * sentence saying what is wrong, or undefined when the value is fine.
 */
import { isIP } from 'node:net';
import type { z } from '../schema.js';

const LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)$/;

/** A DNS-1123 label: letters, digits and inner dashes, at most 63 characters. */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && LABEL.test(s);
}

/** An IPv4 or IPv6 address. */
export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** An IP address or a CIDR block (`203.0.113.4`, `203.0.113.0/24`, `2001:db8::/32`). */
export function isIpOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isIpAddress(s);
  const family = isIP(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** Problems with dot-separated labels (`prod.svc.cluster.local`); a trailing dot is allowed. */
function labelsError(domain: string, rest: string): string | undefined {
  const parts = rest.split('.');
  const top = parts[parts.length - 1]!;
  if (/^\d+$/.test(top)) return `"${domain}" is not a valid DNS name: its last label "${top}" is all digits`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    if (i === parts.length - 1 && label === '' && i > 0) return undefined;
    if (!isDnsLabel(label)) return `"${domain}" is not a valid DNS name: label "${label}" may hold only letters, digits and inner dashes`;
  }
  return undefined;
}

/** A fully qualified or short DNS name, no wildcard. */
export function fqdnError(name: string): string | undefined {
  if (name === '') return 'a host name must not be empty';
  if (name.length > 255) return `host name "${name.slice(0, 40)}…" is longer than 255 characters`;
  return labelsError(name, name);
}

/** A DNS name whose first label may be a wildcard (`*`, `*.example.com`, `*-api.example.com`). */
export function wildcardDomainError(name: string): string | undefined {
  if (name === '') return 'a host name must not be empty';
  if (name.length > 255) return `host name "${name.slice(0, 40)}…" is longer than 255 characters`;
  const dot = name.indexOf('.');
  const first = dot < 0 ? name : name.slice(0, dot);
  if (!WILDCARD_LABEL.test(first) || first.length > 63) {
    return `"${name}" is not a valid host: "${first}" must be a DNS label, and a wildcard may only start the first label (*.example.com)`;
  }
  return dot < 0 ? undefined : labelsError(name, name.slice(dot + 1));
}

/**
 * The host part of a Gateway or Sidecar host entry: `*` or a fully qualified
 * name, with a wildcard only as the whole first label. Gateways also take IPs.
 */
function listenerHostError(host: string, gateway: boolean): string | undefined {
  if (gateway && isIpAddress(host)) return undefined;
  if (host !== '*' && !host.includes('.')) return `"${host}" is a short name; write the fully qualified name (${host}.<namespace>.svc.cluster.local) or "*"`;
  if (host.includes('*') && host !== '*' && !host.startsWith('*.')) return `"${host}" has a partial wildcard; a wildcard must be the whole first label, as in *.example.com`;
  return wildcardDomainError(host);
}

/**
 * A `namespace/dnsName` host entry of a Gateway server or a Sidecar egress
 * listener. Gateways also accept a bare host (meaning any namespace); Sidecars
 * also accept `~` as the namespace.
 */
export function namespacedHostError(entry: string, opts: { gateway: boolean }): string | undefined {
  const slash = entry.indexOf('/');
  if (slash < 0) {
    if (opts.gateway) return listenerHostError(entry, true);
    return `host "${entry}" must be of the form namespace/dnsName, such as "./*", "istio-system/*" or "*/reviews.default.svc.cluster.local"`;
  }
  const ns = entry.slice(0, slash);
  const host = entry.slice(slash + 1);
  if (ns === '' || host === '') return `host "${entry}" needs both a namespace and a DNS name around the "/"`;
  const specialNs = ns === '*' || ns === '.' || (!opts.gateway && ns === '~');
  if (!specialNs && !isDnsLabel(ns)) {
    return `host "${entry}": "${ns}" is not a namespace; use a namespace name, "." (this namespace) or "*" (any namespace)`;
  }
  return listenerHostError(host, opts.gateway);
}

/**
 * Checks an `exportTo` list: each entry is `.`, `*` or a namespace name,
 * without repeats, and `*` stands alone. `allowNone` admits `~` (ServiceEntry).
 */
export function exportToIssues(
  exportTo: readonly string[] | undefined,
  ctx: z.RefinementCtx,
  path: readonly PropertyKey[],
  opts: { allowNone?: boolean } = {},
): void {
  if (!exportTo) return;
  const seen = new Set<string>();
  exportTo.forEach((e, i) => {
    const valid = e === '.' || e === '*' || (opts.allowNone && e === '~') || isDnsLabel(e);
    if (!valid) ctx.addIssue({ code: 'custom', path: [...path, i], message: `exportTo entry "${e}" must be ".", "*" or a namespace name` });
    else if (seen.has(e)) ctx.addIssue({ code: 'custom', path: [...path, i], message: `Duplicate value: exportTo lists "${e}" more than once` });
    seen.add(e);
  });
  if (exportTo.length > 1) {
    const alone = exportTo.findIndex((e) => e === '*' || e === '~');
    if (alone >= 0) ctx.addIssue({ code: 'custom', path: [...path, alone], message: `exportTo "${exportTo[alone]}" must be the only entry` });
  }
}

/** A `unix://` listener address: an absolute socket path or an abstract socket (`@name`). */
export function unixAddressError(addr: string): string | undefined {
  const path = addr.slice('unix://'.length);
  if (path === '') return 'a unix socket address needs a path after unix://';
  if (path.startsWith('@')) return undefined;
  if (!path.startsWith('/') || path.endsWith('/')) return `"${addr}" must name an absolute socket file path (unix:///var/run/app.sock) or an abstract socket (unix://@name)`;
  return undefined;
}
