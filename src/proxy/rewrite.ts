/**
 * A route's URI rewrite, compiled once per snapshot, with Istio's meaning:
 * `rewrite.uri` replaces the part of the path the route matched (the prefix
 * of a prefix match, the whole path of an exact or regex match, the leading
 * `/` when the route has no URI match); `uriRegexRewrite` replaces every
 * match of an RE2 pattern, `\1`-style groups as in Envoy. The query stays.
 */
import { RE2JS } from 're2js';
import type { ForwardAction, RouteMatch } from '../protocol/snapshot.js';
import { SnapshotError } from './errors.js';

/** Path with query in, path with query out. */
export type PathRewrite = (path: string) => string;

function splitQuery(p: string): [string, string] {
  const q = p.indexOf('?');
  return q < 0 ? [p, ''] : [p.slice(0, q), p.slice(q)];
}

/** Envoy's substitution syntax (`\1`, `\\`) in the `$1` syntax of String.prototype.replace. */
export function envoySubstitution(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '$') out += '$$';
    else if (c === '\\' && i + 1 < s.length && /[0-9]/.test(s[i + 1]!)) out += `$${s[++i]}`;
    else if (c === '\\' && s[i + 1] === '\\') { out += '\\'; i++; }
    else out += c;
  }
  return out;
}

function uriFor(uri: string, m: RouteMatch | undefined): PathRewrite {
  const u = m?.uri;
  if (u?.kind === 'prefix') { const n = u.value.length; return (p) => uri + p.slice(n); }
  if (u) return (p) => uri + splitQuery(p)[1];
  return (p) => uri + p.slice(1);
}

/**
 * Rewrites indexed by the applied match alternative + 1 (index 0: the route
 * has no match list), or undefined when the route does not rewrite the path.
 */
export function compileRewrites(matches: readonly RouteMatch[], rewrite: ForwardAction['rewrite']): readonly PathRewrite[] | undefined {
  if (!rewrite) return undefined;
  if (rewrite.uriRegex) {
    let re: RE2JS;
    try {
      re = RE2JS.compile(rewrite.uriRegex.match);
    } catch (err) {
      throw new SnapshotError(`uriRegexRewrite pattern "${rewrite.uriRegex.match}" does not compile: ${(err as Error).message}`);
    }
    const sub = envoySubstitution(rewrite.uriRegex.rewrite);
    const f: PathRewrite = (p) => { const [path, q] = splitQuery(p); return re.matcher(path).replaceAll(sub) + q; };
    return [f, ...matches.map(() => f)];
  }
  const uri = rewrite.uri;
  if (uri === undefined) return undefined;
  return [uriFor(uri, undefined), ...matches.map((m) => uriFor(uri, m))];
}
