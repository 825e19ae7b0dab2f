/**
 * "Does match A take every request match B takes?" for VirtualService rules,
 * decided on the forms the proxies evaluate: HTTP matches as the compiler
 * emits them (`RouteMatch`: ignoreUriCase folded into the URI matcher,
 * gateway names as `namespace/name`, `{}` header matches as presence), with
 * string matchers tested by the data plane's own `compileStringMatcher`
 * where B pins a value. The answer errs towards "no": a regex covers only
 * an identical regex or exact values it accepts, so a reported overlap is
 * always real.
 */
import type { NamedMatcher, RouteMatch, StringMatcher } from '../../protocol/snapshot.js';
import { compileIpBlocks } from '../../policy/ip-match.js';
import { labelsMatch } from '../../policy/route-match.js';
import { compileStringMatcher } from '../../policy/string-match.js';

/** Whether every value `b` accepts is accepted by `a` (an absent matcher accepts everything). */
export function stringCovers(a: StringMatcher | undefined, b: StringMatcher | undefined): boolean {
  if (!a) return true;
  if (!b) return false;
  if (b.ignoreCase && !a.ignoreCase) return false;
  if (b.kind === 'exact') return compileStringMatcher(a)(b.value);
  if (b.kind === 'prefix') {
    if (a.kind !== 'prefix') return false;
    return a.ignoreCase ? b.value.toLowerCase().startsWith(a.value.toLowerCase()) : b.value.startsWith(a.value);
  }
  return a.kind === 'regex' && a.value === b.value;
}

/** Every condition of `as` is implied by the condition of the same name in `bs`. */
function namedCover(as: readonly NamedMatcher[], bs: readonly NamedMatcher[]): boolean {
  return as.every((a) => bs.some((b) => b.name === a.name && (a.match === undefined || (b.match !== undefined && stringCovers(a.match, b.match)))));
}

/** Every "must not match" of `as` is implied by one of `bs` (B forbids at least what A forbids). */
function withoutCover(as: readonly NamedMatcher[], bs: readonly NamedMatcher[]): boolean {
  return as.every((a) => bs.some((b) => b.name === a.name && (b.match === undefined || (a.match !== undefined && stringCovers(b.match, a.match)))));
}

/** `a`'s gateways (absent: any) include every gateway `b` may come through. */
function gatewaysCover(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (!a?.length) return true;
  return !!b?.length && b.every((g) => a.includes(g));
}

function same<T>(a: T | undefined, b: T | undefined): boolean {
  return a === undefined || a === b;
}

/** Whether the HTTP match `a` takes every request the HTTP match `b` takes. */
export function httpMatchCovers(a: RouteMatch, b: RouteMatch): boolean {
  return stringCovers(a.uri, b.uri)
    && stringCovers(a.scheme, b.scheme)
    && stringCovers(a.method, b.method)
    && stringCovers(a.authority, b.authority)
    && namedCover(a.headers, b.headers)
    && namedCover(a.queryParams, b.queryParams)
    && withoutCover(a.withoutHeaders, b.withoutHeaders)
    && same(a.port, b.port)
    && same(a.sourceNamespace, b.sourceNamespace)
    && labelsMatch(a.sourceLabels ?? {}, b.sourceLabels ?? {})
    && gatewaysCover(a.gateways, b.gateways);
}

/** A TCP or TLS match block with its gateways resolved to `namespace/name`. */
export interface L4MatchBlock {
  readonly port?: number;
  readonly destinationSubnets?: readonly string[];
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly sourceNamespace?: string;
  readonly sourceSubnet?: string;
  readonly gateways?: readonly string[];
  /** TLS only. */
  readonly sniHosts?: readonly string[];
}

function prefixLength(block: string): number {
  const slash = block.indexOf('/');
  if (slash >= 0) return Number(block.slice(slash + 1));
  return block.includes(':') ? 128 : 32;
}

/** Every subnet of `b` lies inside one of `a` (absent or empty `a`: any destination). */
function subnetsCover(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (!a?.length) return true;
  if (!b?.length) return false;
  return b.every((sb) => a.some((sa) => prefixLength(sa) <= prefixLength(sb) && compileIpBlocks([sa])(sb.split('/')[0])));
}

/**
 * Whether the L4 block `a` takes every connection `b` takes. SNI names are
 * compared by equality: the TLS router prefers an exact name to a wildcard
 * and a longer wildcard to a shorter one whatever their order, so only the
 * same name is decided by order.
 */
export function l4MatchCovers(a: L4MatchBlock, b: L4MatchBlock): boolean {
  if (a.sniHosts) {
    const names = new Set(a.sniHosts.map((h) => h.toLowerCase()));
    if (!(b.sniHosts ?? []).every((h) => names.has(h.toLowerCase()))) return false;
  }
  return same(a.port, b.port)
    && same(a.sourceNamespace, b.sourceNamespace)
    && same(a.sourceSubnet, b.sourceSubnet)
    && labelsMatch(a.sourceLabels ?? {}, b.sourceLabels ?? {})
    && subnetsCover(a.destinationSubnets, b.destinationSubnets)
    && gatewaysCover(a.gateways, b.gateways);
}
