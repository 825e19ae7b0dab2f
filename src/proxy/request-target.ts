/**
 * Where a request is going, read from the request line and the Host header
 * as an HTTP/1.1 forward proxy must: an absolute-form URI
 * (`GET http://accounts:8080/x`) names scheme, authority and path itself; an
 * origin-form request (`GET /x`) is routed by its Host header. The port is
 * the URI's, else the Host header's, else the scheme's default (80 for http,
 * as `simulate()` has it).
 */
import type { IncomingMessage } from 'node:http';

export interface RequestTarget {
  readonly scheme: string;
  /** `host[:port]` as the caller sent it. */
  readonly authority: string;
  readonly port: number;
  /** Origin-form: path and query. */
  readonly path: string;
}

/** The explicit port of an authority, undefined when it has none, NaN when it is not a port. */
export function portOf(authority: string): number | undefined {
  const end = authority.startsWith('[') ? authority.indexOf(']') + 1 : 0;
  const c = authority.indexOf(':', end);
  if (c < 0 || c === authority.length - 1) return undefined;
  const s = authority.slice(c + 1);
  const p = /^\d{1,5}$/.test(s) ? Number(s) : NaN;
  return p > 0 && p < 65536 ? p : NaN;
}

/** The target of a request, or a reason it has none a proxy can use. */
export function requestTarget(req: IncomingMessage): RequestTarget | string {
  const url = req.url ?? '/';
  // HTTP/2 names the authority in :authority (a Host header may be there too).
  const host = req.headers.host ?? (req.headers[':authority'] as string | undefined);
  let scheme = 'http';
  let authority: string;
  let path: string;
  let uriPort: number | undefined;
  if (url.charCodeAt(0) === 47 /* / */) {
    if (!host) return 'the request has no Host header';
    authority = host;
    path = url;
  } else {
    const sep = url.indexOf('://');
    if (sep <= 0) return `the request target "${url.slice(0, 100)}" is neither a path nor an absolute URI`;
    scheme = url.slice(0, sep).toLowerCase();
    const rest = url.slice(sep + 3);
    let end = rest.length;
    for (const ch of ['/', '?', '#']) { const i = rest.indexOf(ch); if (i >= 0 && i < end) end = i; }
    authority = rest.slice(0, end);
    if (!authority) return 'the absolute URI has no host';
    path = rest.slice(end) || '/';
    if (path[0] !== '/') path = `/${path}`;
    uriPort = portOf(authority);
  }
  if (Number.isNaN(uriPort)) return `the URI's authority "${authority}" has an invalid port`;
  const hostPort = host !== undefined ? portOf(host) : undefined;
  if (uriPort === undefined && Number.isNaN(hostPort)) return `the Host header "${host}" has an invalid port`;
  const port = uriPort ?? hostPort ?? (scheme === 'https' ? 443 : 80);
  return { scheme, authority, port, path };
}
