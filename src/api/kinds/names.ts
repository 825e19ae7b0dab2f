/**
 * Name rules shared by the kinds and by metadata, each defined once, as
 * Istio and Kubernetes apply them: DNS labels and subdomains, DNS names and
 * hosts with a leading wildcard, `namespace/host` entries, IP addresses and
 * CIDR blocks, `exportTo` lists, label maps and selectors. A `…Error` check
 * returns a sentence saying what is wrong, or undefined when the value is
 * fine; an `…Issues` check adds zod issues at the paths it is given.
 */
import { isIP } from 'node:net';
import type { z } from '../schema.js';

/** Istio's DNS-1123 label: letters of either case, digits, inner dashes. */
const LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
/** Istio's first label of a host: `*`, or a label with an optional `*` or `*-` before it. */
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)$/;
/** Kubernetes's DNS-1123 label: lowercase letters, digits, inner dashes. */
const LOWERCASE_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes's DNS-1123 subdomain: lowercase labels joined by dots. */
const LOWERCASE_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A Kubernetes label name or value: letters, digits, `-`, `_` and `.`, alphanumeric at both ends. */
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** A DNS-1123 label as Istio checks it (port names, subset names, namespaces in hosts): letters of either case, digits and inner dashes, at most 63 characters. */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && LABEL.test(s);
}

/** A Kubernetes DNS-1123 label (namespaces, Service port names, App names): lowercase, at most 63 characters. */
export function isLowercaseDnsLabel(s: string): boolean {
  return s.length <= 63 && LOWERCASE_LABEL.test(s);
}

/** A Kubernetes DNS-1123 subdomain (resource names, service accounts): lowercase labels joined by dots, at most 253 characters. */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && LOWERCASE_SUBDOMAIN.test(s);
}

/** An IPv4 or IPv6 address. */
export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** A CIDR block (`203.0.113.0/24`, `2001:db8::/32`): an address, a slash, and at most 32 or 128 bits. */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** An IP address or a CIDR block (`203.0.113.4`, `203.0.113.0/24`, `2001:db8::/32`). */
export function isIpOrCidr(s: string): boolean {
  return s.includes('/') ? isCidr(s) : isIpAddress(s);
}

/**
 * Whether every dot-separated part of `domain` is a DNS label; a trailing dot
 * (`istio.io.`) is allowed. Istio's trust domain rule, and the label rule of
 * its DNS names.
 */
export function isDnsLabels(domain: string): boolean {
  const parts = domain.split('.');
  return domain !== '' && parts.every((p, i) => isDnsLabel(p) || (p === '' && i === parts.length - 1 && i > 0));
}

/** Problems with the dot-separated labels `rest` of `domain` (Istio's `ValidateDNS1123Labels`). */
function labelsError(domain: string, rest: string): string | undefined {
  const parts = rest.split('.');
  const top = parts[parts.length - 1]!;
  if (/^\d+$/.test(top)) return `"${domain}" is not a valid DNS name: its last label "${top}" is all digits`;
  if (isDnsLabels(rest)) return undefined;
  const label = parts.find((p, i) => !isDnsLabel(p) && !(p === '' && i === parts.length - 1 && i > 0))!;
  return `"${domain}" is not a valid DNS name: label "${label}" may hold only letters, digits and inner dashes`;
}

/** A fully qualified or short DNS name, no wildcard (Istio's `ValidateFQDN`). */
export function fqdnError(name: string): string | undefined {
  if (name === '') return 'a host name must not be empty';
  if (name.length > 255) return `host name "${name.slice(0, 40)}…" is longer than 255 characters`;
  return labelsError(name, name);
}

/** A DNS name whose first label may be a wildcard (`*`, `*.example.com`, `*-api.example.com`; Istio's `ValidateWildcardDomain`). */
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
 * Checks an `exportTo` list as Istio does: each entry is `.`, `*` or a
 * namespace name, without repeats; `*` stands alone (reported at its entry).
 * `allowNone` (ServiceEntry) also admits `~`, which must stand alone too
 * (reported at the list).
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
    if (!valid) ctx.addIssue({ code: 'custom', path: [...path, i], message: `exportTo entry "${e}" must be ".", "*"${opts.allowNone ? ', "~"' : ''} or a namespace name` });
    else if (seen.has(e)) ctx.addIssue({ code: 'custom', path: [...path, i], message: `Duplicate value: exportTo lists "${e}" more than once` });
    seen.add(e);
  });
  if (exportTo.length < 2) return;
  const all = exportTo.indexOf('*');
  if (all >= 0) ctx.addIssue({ code: 'custom', path: [...path, all], message: 'exportTo "*" must be the only entry' });
  if (opts.allowNone && exportTo.includes('~')) {
    ctx.addIssue({ code: 'custom', path: [...path], message: 'cannot export to no one ("~") and to someone at the same time' });
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

/** Checks a map of Kubernetes labels: keys `[prefix/]name`, values at most 63 characters. */
export function labelIssues(map: Readonly<Record<string, string>> | undefined, ctx: z.RefinementCtx, path: readonly PropertyKey[]): void {
  for (const [k, v] of Object.entries(map ?? {})) {
    const slash = k.lastIndexOf('/');
    const prefix = slash < 0 ? undefined : k.slice(0, slash);
    const name = slash < 0 ? k : k.slice(slash + 1);
    const keyOk = name.length <= 63 && LABEL_NAME.test(name) && (prefix === undefined || isDnsSubdomain(prefix));
    if (!keyOk) ctx.addIssue({ code: 'custom', path: [...path, k], message: `label key "${k}" is invalid: use [prefix/]name, where name is at most 63 letters, digits, "-", "_" or "." and prefix a DNS subdomain` });
    if (v.length > 63 || (v !== '' && !LABEL_NAME.test(v))) {
      ctx.addIssue({ code: 'custom', path: [...path, k], message: `label value "${v}" is invalid: at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit` });
    }
  }
}

/** Istio's rule for the labels of a workload selector: no empty key, no `*` in a key or a value. */
export function selectorIssues(map: Readonly<Record<string, string>> | undefined, ctx: z.RefinementCtx, path: readonly PropertyKey[]): void {
  for (const [k, v] of Object.entries(map ?? {})) {
    if (k === '') ctx.addIssue({ code: 'custom', path: [...path, k], message: 'empty key is not supported in selector: name the label' });
    if (k.includes('*') || v.includes('*')) {
      ctx.addIssue({ code: 'custom', path: [...path, k], message: `wildcard is not supported in selector: "${k}=${v}"; a selector matches exact label values` });
    }
  }
}
