/**
 * What a CONSISTENT_HASH cluster hashes, read from a request: a header, a
 * cookie, the source IP or a query parameter (Istio's consistentHash keys).
 * Built once per cluster when a snapshot is applied.
 *
 * Istio's httpCookie with a `ttl` also makes the cookie: a request that came
 * without it gets a value derived from its downstream connection (as Envoy
 * does: the remote and local addresses, hashed), is balanced on that value,
 * and its response carries `Set-Cookie` so the client keeps the same host
 * from then on.
 */
import { queryParam } from '../../policy/request.js';
import type { LoadBalancer } from '../../protocol/snapshot.js';
import type { HeaderEdit, Headers } from '../headers.js';
import { hash53, hex53 } from './hash.js';

/** What a consistent-hash key is read from (an Exchange is one). */
export interface HashInput {
  readonly headers: Headers;
  readonly path: string;
  readonly remoteAddress: string | undefined;
  /** The downstream connection; a generated cookie is derived from its addresses. */
  readonly req?: { readonly socket?: { readonly remotePort?: number | undefined; readonly localAddress?: string | undefined; readonly localPort?: number | undefined } | null };
}

/** A cookie made for a request that had none: the key to balance on, and the response edit that sets it. */
export interface MadeCookie {
  readonly key: string;
  readonly edit: HeaderEdit;
}

export interface CookieMaker {
  /** A new cookie for `req`; `base` is the route's own response edit (kept, run first). */
  make(req: HashInput, base: HeaderEdit | undefined): MadeCookie;
}

/** Reads the request's key; undefined when it has none (the balancer then picks at random). */
export interface HashKeyReader {
  (req: HashInput): string | undefined;
  /** Present when the key is a cookie the proxy makes for requests without it. */
  readonly cookie?: CookieMaker;
}

/** The value of cookie `name` in a Cookie header (quotes around it removed); undefined when absent or empty. */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const s = typeof header === 'string' ? header : header.join('; ');
  let at = 0;
  while (at < s.length) {
    while (s.charCodeAt(at) === 0x20 || s.charCodeAt(at) === 0x09) at++;
    let end = s.indexOf(';', at);
    if (end < 0) end = s.length;
    if (s.startsWith(name, at)) {
      let eq = at + name.length;
      while (s.charCodeAt(eq) === 0x20) eq++;
      if (s.charCodeAt(eq) === 0x3d /* = */) {
        let v0 = eq + 1;
        let v1 = end;
        while (v0 < v1 && s.charCodeAt(v0) === 0x20) v0++;
        while (v1 > v0 && s.charCodeAt(v1 - 1) === 0x20) v1--;
        if (v1 - v0 >= 2 && s.charCodeAt(v0) === 0x22 && s.charCodeAt(v1 - 1) === 0x22) { v0++; v1--; }
        return v1 > v0 ? s.slice(v0, v1) : undefined;
      }
    }
    at = end + 1;
  }
  return undefined;
}

/** The Set-Cookie value for a made cookie (Envoy's attributes: Max-Age unless a session cookie, Path, HttpOnly, then the configured ones). */
export function setCookieValue(name: string, value: string, c: NonNullable<NonNullable<LoadBalancer['hashOn']>['setCookie']>): string {
  let out = `${name}=${value}`;
  if (c.ttlSeconds > 0) out += `; Max-Age=${c.ttlSeconds}`;
  if (c.path) out += `; Path=${c.path}`;
  out += '; HttpOnly';
  for (const a of c.attributes) out += a.value !== undefined && a.value !== '' ? `; ${a.name}=${a.value}` : `; ${a.name}`;
  return out;
}

function cookieMaker(name: string, c: NonNullable<NonNullable<LoadBalancer['hashOn']>['setCookie']>): CookieMaker {
  return {
    make(req, base) {
      const sock = req.req?.socket;
      const key = hex53(hash53(`${req.remoteAddress ?? ''}:${sock?.remotePort ?? ''}|${sock?.localAddress ?? ''}:${sock?.localPort ?? ''}`));
      const header = setCookieValue(name, key, c);
      const edit: HeaderEdit = (h) => {
        base?.(h);
        const cur = h['set-cookie'];
        h['set-cookie'] = cur === undefined ? header : typeof cur === 'string' ? [cur, header] : [...cur, header];
      };
      return { key, edit };
    },
  };
}

/** The key reader of a cluster's balancer; undefined unless it is CONSISTENT_HASH with a key. */
export function hashKeyReader(lb: LoadBalancer): HashKeyReader | undefined {
  if (lb.policy !== 'CONSISTENT_HASH' || !lb.hashOn) return undefined;
  const { header, cookie, setCookie, sourceIp, queryParameter } = lb.hashOn;
  if (header !== undefined) {
    const name = header.toLowerCase();
    return (r) => { const v = r.headers[name]; return v === undefined ? undefined : typeof v === 'string' ? v : v.join(','); };
  }
  if (cookie !== undefined) {
    const read = (r: HashInput) => cookieValue(r.headers.cookie, cookie);
    return setCookie ? Object.assign(read, { cookie: cookieMaker(cookie, setCookie) }) : read;
  }
  if (sourceIp) return (r) => r.remoteAddress;
  if (queryParameter !== undefined) return (r) => (r.path.includes('?') ? queryParam(r.path, queryParameter) : undefined);
  return undefined;
}
