/**
 * Request path normalization before routing and authorization, with the
 * semantics of Istio's `MeshConfig.pathNormalization` modes (which Istio maps
 * to Envoy's `normalize_path`, `merge_slashes` and
 * `path_with_escaped_slashes_action`):
 *
 * | mode                     | RFC 3986 normalization | merge slashes | %2F %5C   |
 * |--------------------------|------------------------|---------------|-----------|
 * | NONE                     | no                     | no            | kept      |
 * | BASE                     | yes                    | no            | kept      |
 * | MERGE_SLASHES            | yes                    | yes           | kept      |
 * | DECODE_AND_MERGE_SLASHES | yes                    | yes           | decoded   |
 *
 * In every mode the fragment (`#…`) is dropped and the query (`?…`) is set
 * aside: it is never normalized, never seen by path rules, and forwarded
 * unchanged after the normalized path, so the backend receives exactly the
 * path that was authorized. The steps, in Envoy's order: decode escaped
 * slashes once; normalize (dot segments, including `%2e`; `\` → `/`; decode
 * the escapes of unreserved characters `A-Z a-z 0-9 - . _ ~`; escape raw
 * characters that may not appear in a path; `%00` is an error); merge
 * slashes. Other escapes keep their original spelling (`%2a` stays `%2a`).
 *
 * One pass over the characters, no regular expression; a path with nothing
 * to normalize is returned as it came.
 */
import type { PathNormalization } from '../protocol/snapshot.js';

/** Envoy's `path_with_escaped_slashes_action`: what to do with `%2F %2f %5C %5c` in a path. */
export type EscapedSlashesAction = 'KEEP_UNCHANGED' | 'REJECT_REQUEST' | 'UNESCAPE_AND_REDIRECT' | 'UNESCAPE_AND_FORWARD';

/** The three switches a mode sets. Use `pathOptions()` to get them for a mode. */
export interface PathOptions {
  readonly normalize: boolean;
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashesAction;
}

/** The outcome: the path to match and forward, or why the request is refused (400) or redirected (307). */
export type NormalizedPath =
  | { readonly ok: true; readonly path: string; /** `''` or `?…`, as received. */ readonly query: string }
  | { readonly ok: false; readonly status: 400; readonly reason: 'invalid-path' | 'escaped-slash'; readonly message: string }
  | { readonly ok: false; readonly status: 307; readonly reason: 'redirect'; /** Normalized path and query. */ readonly location: string; readonly message: string };

const MODES: Readonly<Record<PathNormalization, PathOptions>> = Object.freeze({
  NONE: Object.freeze({ normalize: false, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED' }),
  BASE: Object.freeze({ normalize: true, mergeSlashes: false, escapedSlashes: 'KEEP_UNCHANGED' }),
  MERGE_SLASHES: Object.freeze({ normalize: true, mergeSlashes: true, escapedSlashes: 'KEEP_UNCHANGED' }),
  DECODE_AND_MERGE_SLASHES: Object.freeze({ normalize: true, mergeSlashes: true, escapedSlashes: 'UNESCAPE_AND_FORWARD' }),
});

/**
 * The switches of a mode, optionally overridden per proxy (Istio's
 * `ProxyConfig.connectionSettings`: `httpMergeSlashes`,
 * `httpPathWithEscapedSlashesAction`).
 */
export function pathOptions(mode: PathNormalization, overrides: Partial<PathOptions> = {}): PathOptions {
  const base = MODES[mode];
  if (overrides.mergeSlashes === undefined && overrides.escapedSlashes === undefined && overrides.normalize === undefined) return base;
  return Object.freeze({ ...base, ...overrides });
}

// Character classes of a path, per ASCII code (Chromium's path table, as Envoy uses it).
const PASS = 0;
const SPECIAL = 1;
const ESCAPE = 2 | SPECIAL;
const UNESCAPE = 4;
const INVALID = 8 | SPECIAL;

const CLASS = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) CLASS[c] = ESCAPE;
CLASS[0] = INVALID;
for (let c = 0x20; c < 0x7f; c++) CLASS[c] = PASS;
for (const ch of ' "#%<>?\\^`{|}') CLASS[ch.charCodeAt(0)] = ESCAPE;
for (let c = 0x30; c <= 0x39; c++) CLASS[c] = UNESCAPE;
for (let c = 0x41; c <= 0x5a; c++) CLASS[c] = UNESCAPE;
for (let c = 0x61; c <= 0x7a; c++) CLASS[c] = UNESCAPE;
for (const ch of '-_~') CLASS[ch.charCodeAt(0)] = UNESCAPE;
CLASS[0x2e] = SPECIAL; // '.'
CLASS[0x7f] = ESCAPE;

const HEX = '0123456789ABCDEF';
const UTF8 = new TextEncoder();
const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const PERCENT = 0x25;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** The byte of a valid `%HH` at `i`, or -1. */
function escapedAt(s: string, i: number): number {
  if (i + 3 > s.length) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

/** 1 for `.`, 3 for `%2e` / `%2E`, else 0. */
function dotAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x2e) return 1;
  if (c === PERCENT && i + 3 <= s.length && s.charCodeAt(i + 1) === 0x32 && (s.charCodeAt(i + 2) | 0x20) === 0x65) return 3;
  return 0;
}

const isSlash = (c: number) => c === SLASH || c === BACKSLASH;
const escapeByte = (b: number) => `%${HEX[b >> 4]}${HEX[b & 15]}`;

/** Percent-escapes of the UTF-8 bytes of the code point at `i` (≥ 0x80); undefined for a lone surrogate. */
function escapeCodePoint(s: string, i: number): { text: string; width: number } | undefined {
  const cp = s.codePointAt(i)!;
  if (cp >= 0xd800 && cp <= 0xdfff) return undefined;
  const bytes = UTF8.encode(String.fromCodePoint(cp));
  let text = '';
  for (const b of bytes) text += escapeByte(b);
  return { text, width: cp > 0xffff ? 2 : 1 };
}

/**
 * Chromium's path canonicalization (Envoy's `normalize_path`); undefined when
 * the path holds a character that may not be in a URL (`%00`).
 */
function canonicalize(p: string): string | undefined {
  let out = '';
  let lastInvalidPercent = -10;
  const end = p.length;
  for (let i = 0; i < end; i++) {
    const c = p.charCodeAt(i);
    const flags = c < 0x80 ? CLASS[c]! : ESCAPE;
    if (!(flags & SPECIAL)) { out += p[i]; continue; }
    const dot = dotAt(p, i);
    if (dot > 0) {
      if (out.charCodeAt(out.length - 1) !== SLASH) { out += '.'; i += dot - 1; continue; }
      const after = i + dot;
      if (after === end) { i = end; continue; } // "/." at the end: the current directory
      if (isSlash(p.charCodeAt(after))) { i = after; continue; } // "/./"
      const second = dotAt(p, after);
      if (second > 0 && (after + second === end || isSlash(p.charCodeAt(after + second)))) {
        if (out.length > 1) out = out.slice(0, out.lastIndexOf('/', out.length - 2) + 1);
        i = after + second === end ? end : after + second;
        continue;
      }
      out += '.';
      i += dot - 1;
    } else if (c === BACKSLASH) {
      out += '/';
    } else if (c === PERCENT) {
      const v = escapedAt(p, i);
      if (v < 0) { lastInvalidPercent = out.length; out += '%'; continue; }
      const vflags = v < 0x80 ? CLASS[v]! : ESCAPE;
      if (vflags & UNESCAPE) {
        out += String.fromCharCode(v);
        if (lastInvalidPercent >= out.length - 3) out = nestedEscapes(p, i + 3, out, lastInvalidPercent);
      } else {
        out += p.slice(i, i + 3);
        if (vflags === INVALID) return undefined;
      }
      i += 2;
    } else if (flags === INVALID) {
      return undefined;
    } else if (c < 0x80) {
      out += escapeByte(c);
    } else {
      const e = escapeCodePoint(p, i);
      if (!e) return undefined;
      out += e.text;
      i += e.width - 1;
    }
  }
  return out;
}

/**
 * An unescaped character right after a `%` that began no escape may make a
 * new escape (`%%30` → `%0`…): Chromium turns that `%` into `%25` so the
 * output cannot be decoded into something else later.
 */
function nestedEscapes(p: string, next: number, out: string, pct: number): string {
  let candidate = out;
  if (pct === out.length - 2) {
    if (next >= p.length || p.charCodeAt(next) >= 0x80) return out;
    candidate += p[next];
  }
  if (candidate.charCodeAt(pct) !== PERCENT || escapedAt(candidate, pct) < 0) return out;
  return `${out.slice(0, pct)}%25${out.slice(pct + 1)}`;
}

/** `//a///b/` → `/a/b/` (Envoy's merge_slashes). */
function mergeSlashes(p: string): string {
  if (!p.includes('//')) return p;
  let out = '';
  for (let i = 0; i < p.length; i++) {
    if (p.charCodeAt(i) === SLASH && out.charCodeAt(out.length - 1) === SLASH) continue;
    out += p[i];
  }
  return out;
}

/** Whether `p` contains `%2F %2f %5C %5c`. */
function hasEscapedSlash(p: string): boolean {
  for (let i = p.indexOf('%'); i >= 0 && i + 2 < p.length; i = p.indexOf('%', i + 1)) {
    const a = p.charCodeAt(i + 1);
    const b = p.charCodeAt(i + 2) | 0x20;
    if ((a === 0x32 && b === 0x66) || (a === 0x35 && b === 0x63)) return true;
  }
  return false;
}

/** `%2F %2f` → `/`, `%5C %5c` → `\`, once (no double decoding). */
function unescapeSlashes(p: string): string {
  let out = '';
  let from = 0;
  for (let i = p.indexOf('%'); i >= 0 && i + 2 < p.length; i = p.indexOf('%', i + 1)) {
    const a = p.charCodeAt(i + 1);
    const b = p.charCodeAt(i + 2) | 0x20;
    const ch = a === 0x32 && b === 0x66 ? '/' : a === 0x35 && b === 0x63 ? '\\' : undefined;
    if (ch === undefined) continue;
    out += p.slice(from, i) + ch;
    from = i + 3;
    i += 2;
  }
  return from === 0 ? p : out + p.slice(from);
}

/** Whether the canonicalization pass could change `p`: it holds `%`, `\`, `.`, or a character to escape. */
function needsCanonical(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c >= 0x80 || CLASS[c]! & SPECIAL) return true;
  }
  return false;
}

/**
 * Normalizes a request target (`/path?query#fragment`, origin form) per the
 * mode or options. The path must begin with `/` (an absolute-form target is
 * reduced to its path by the listener first; `OPTIONS *` is not a path).
 */
export function normalizePath(target: string, mode: PathNormalization | PathOptions): NormalizedPath {
  const o = typeof mode === 'string' ? MODES[mode] : mode;
  const hash = target.indexOf('#');
  const noFragment = hash < 0 ? target : target.slice(0, hash);
  const q = noFragment.indexOf('?');
  let path = q < 0 ? noFragment : noFragment.slice(0, q);
  const query = q < 0 ? '' : noFragment.slice(q);
  if (path.charCodeAt(0) !== SLASH) {
    return { ok: false, status: 400, reason: 'invalid-path', message: `the request path must begin with "/": ${JSON.stringify(path.slice(0, 64))}` };
  }
  let redirect = false;
  if (o.escapedSlashes !== 'KEEP_UNCHANGED' && hasEscapedSlash(path)) {
    if (o.escapedSlashes === 'REJECT_REQUEST') {
      return { ok: false, status: 400, reason: 'escaped-slash', message: 'the request path contains an escaped slash (%2F or %5C), which this proxy refuses' };
    }
    path = unescapeSlashes(path);
    redirect = o.escapedSlashes === 'UNESCAPE_AND_REDIRECT';
  }
  if (o.normalize && needsCanonical(path)) {
    const c = canonicalize(path);
    if (c === undefined) return { ok: false, status: 400, reason: 'invalid-path', message: 'the request path contains a character that is not allowed in a URL (such as %00)' };
    path = c;
  }
  if (o.mergeSlashes) path = mergeSlashes(path);
  if (redirect) return { ok: false, status: 307, reason: 'redirect', location: path + query, message: 'the request path contained escaped slashes; redirecting to the unescaped path' };
  return { ok: true, path, query };
}
