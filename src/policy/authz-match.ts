/**
 * Value matchers of AuthorizationPolicy fields, built once per snapshot from
 * the compiled policy data, with Istio's translation of each field to Envoy
 * matchers: `exact`, `prefix*`, `*suffix` and `*` (present and non-empty);
 * `{*}` / `{**}` path templates (Envoy's URI-template character sets);
 * principal-derived tests (namespaces, service accounts, trust domains) with
 * every literal taken literally, so `api.reader` never matches `apiXreader`;
 * `iss/sub` request principals; JWT claims that are strings or lists.
 */
import { RE2JS } from 're2js';

export type StringTest = (value: string) => boolean;

const never: StringTest = () => false;

/** One Istio value pattern. `ignoreCase` for hosts. `*` matches any non-empty value. */
export function patternTest(pattern: string, ignoreCase = false): StringTest {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const norm = ignoreCase ? (s: string) => s.toLowerCase() : (s: string) => s;
  if (p === '*') return (s) => s !== '';
  if (p.startsWith('*')) { const suffix = p.slice(1); return (s) => norm(s).endsWith(suffix); }
  if (p.endsWith('*')) { const prefix = p.slice(0, -1); return (s) => norm(s).startsWith(prefix); }
  return ignoreCase ? (s) => s.length === p.length && s.toLowerCase() === p : (s) => s === p;
}

/** Any of several patterns; exact ones are looked up in a set. */
export function anyPattern(patterns: readonly string[], ignoreCase = false): StringTest {
  const exact = new Set<string>();
  const others: StringTest[] = [];
  for (const p of patterns) {
    if (p.includes('*')) others.push(patternTest(p, ignoreCase));
    else exact.add(ignoreCase ? p.toLowerCase() : p);
  }
  if (others.length === 0 && exact.size === 0) return never;
  if (others.length === 0) return ignoreCase ? (s) => exact.has(s.toLowerCase()) : (s) => exact.has(s);
  return (s) => {
    if (exact.size > 0 && exact.has(ignoreCase ? s.toLowerCase() : s)) return true;
    for (let i = 0; i < others.length; i++) if (others[i]!(s)) return true;
    return false;
  };
}

/** Envoy's `{*}`: one path segment; `{**}`: zero or more segments. */
const ONE_SEGMENT = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]+";
const ANY_SEGMENTS = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=/]*";

function quoteRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, (c) => `\\${c}`);
}

/** A `paths` pattern: a `{*}` / `{**}` template, or an Istio value pattern (case-sensitive). */
export function pathTest(pattern: string): StringTest {
  if (!pattern.includes('{*}') && !pattern.includes('{**}')) return patternTest(pattern);
  let re = '';
  for (const part of pattern.split(/(\{\*\*\}|\{\*\})/)) {
    re += part === '{**}' ? ANY_SEGMENTS : part === '{*}' ? ONE_SEGMENT : quoteRegex(part);
  }
  // Safe for V8's backtracking engine: {*} never crosses a `/`, and the kind allows one {**}, after any {*}.
  const compiled = new RegExp(`^${re}$`);
  return (s) => compiled.test(s);
}

const SPIFFE = 'spiffe://';
const SLASH = 0x2f;

/** `namespaces`: Istio's regex `.*` + `/ns/<namespace>/` + `.*` over the peer's SPIFFE ID; `*` in the value is the only wildcard. */
export function namespaceTest(ns: string): StringTest {
  if (!ns.includes('*')) {
    const needle = `/ns/${ns}/`;
    return (principal) => principal !== '' && (SPIFFE + principal).includes(needle);
  }
  const re = RE2JS.compile(`.*/ns/${ns.split('*').map(quoteRegex).join('.*')}/.*`);
  return (principal) => principal !== '' && re.matches(SPIFFE + principal);
}

/**
 * `serviceAccounts` (`namespace/account`): Istio's
 * `spiffe://.+/ns/<ns>/(.+/|)sa/<account>(/.+)?`, literals quoted.
 */
export function serviceAccountTest(value: string): StringTest {
  const slash = value.indexOf('/');
  const nsPart = `/ns/${value.slice(0, slash)}/`;
  const saPart = `sa/${value.slice(slash + 1)}`;
  return (principal) => {
    if (principal === '') return false;
    const s = SPIFFE + principal;
    for (let i = s.indexOf(nsPart, SPIFFE.length); i >= 0; i = s.indexOf(nsPart, i + 1)) {
      const rest = i + nsPart.length;
      for (let k = s.indexOf(saPart, rest); k >= 0; k = s.indexOf(saPart, k + 1)) {
        const between = k - rest;
        if (between !== 0 && !(between >= 2 && s.charCodeAt(k - 1) === SLASH)) continue;
        const after = k + saPart.length;
        if (after === s.length || (s.charCodeAt(after) === SLASH && s.length - after >= 2)) return true;
      }
    }
    return false;
  };
}

/** The trust domain of a principal (`td/ns/x/sa/y` → `td`); `''` for plaintext. */
export function trustDomainOf(principal: string): string {
  const slash = principal.indexOf('/');
  return slash < 0 ? principal : principal.slice(0, slash);
}

/** A validated JWT's issuer and subject. */
export interface TokenIdentity {
  readonly iss: string;
  readonly sub: string;
}

export type TokenTest = (t: TokenIdentity | undefined) => boolean;

/** `requestPrincipals` / `request.auth.principal`: `iss/sub` split at the last `/`, each side matched as Istio does. */
export function requestPrincipalTest(value: string): TokenTest {
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : '';
  const any: StringTest = (s) => s !== '';
  let matchIss: StringTest;
  let matchSub: StringTest;
  if (value === '*') { matchIss = any; matchSub = any; }
  else if (value.startsWith('*')) {
    if (found) { matchIss = iss === '*' ? any : patternTest(iss); matchSub = (s) => s === sub; }
    else { matchIss = any; matchSub = patternTest(value); }
  } else if (value.endsWith('*')) {
    if (found) { matchIss = (s) => s === iss; matchSub = sub === '*' ? any : patternTest(sub); }
    else { matchIss = patternTest(value); matchSub = any; }
  } else { matchIss = (s) => s === iss; matchSub = (s) => s === sub; }
  return (t) => t !== undefined && matchIss(t.iss) && matchSub(t.sub);
}

/** `request.auth.claims[a][b]` → `['a', 'b']`. */
export function claimPath(key: string): string[] {
  const out: string[] = [];
  const body = key.slice('request.auth.claims'.length);
  for (let i = 0; i < body.length;) {
    const close = body.indexOf(']', i);
    out.push(body.slice(i + 1, close));
    i = close + 1;
  }
  return out;
}

/** The string values of a claim: a string, or the strings of a list; `[]` when absent or of another type. */
export function claimStrings(claims: Readonly<Record<string, unknown>> | undefined, path: readonly string[]): readonly string[] {
  let v: unknown = claims;
  for (const p of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
    v = (v as Record<string, unknown>)[p];
  }
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}
