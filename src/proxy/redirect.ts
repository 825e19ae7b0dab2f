/**
 * A route's redirect, compiled once per snapshot into a function that builds
 * the Location from the request. Envoy's meaning of each field: `uri`
 * replaces the whole path (the query stays unless `uri` has one),
 * `authority` the host, `port` the port; `derivePort` takes the request's
 * port or the scheme's default; a new `scheme` drops a port not set by the
 * redirect.
 */
import type { RedirectAction } from '../protocol/snapshot.js';

export interface RedirectInput {
  readonly scheme: string;
  /** As the caller sent it, maybe with `:port`. */
  readonly authority: string;
  readonly port: number;
  /** Path with query. */
  readonly path: string;
}

export type LocationBuilder = (r: RedirectInput) => string;

function splitAuthority(a: string): [string, number | undefined] {
  const end = a.startsWith('[') ? a.indexOf(']') + 1 : 0;
  const c = a.indexOf(':', end);
  if (c < 0) return [a, undefined];
  const port = Number(a.slice(c + 1));
  return [a.slice(0, c), Number.isInteger(port) && port > 0 ? port : undefined];
}

const defaultPort = (scheme: string): number => (scheme === 'https' ? 443 : 80);

export function compileRedirect(a: RedirectAction): LocationBuilder {
  const authorityHasPort = a.authority !== undefined && splitAuthority(a.authority)[1] !== undefined;
  return (r) => {
    const scheme = a.scheme ?? r.scheme;
    const [host, requestPort] = splitAuthority(r.authority);
    let port: number | undefined;
    if (a.port !== undefined) port = a.port;
    else if (a.derivePort === 'FROM_REQUEST_PORT') port = r.port;
    else if (a.derivePort === 'FROM_PROTOCOL_DEFAULT' || authorityHasPort || scheme !== r.scheme) port = undefined;
    else port = requestPort;
    if (port === defaultPort(scheme)) port = undefined;
    let path = r.path;
    if (a.uri !== undefined) {
      const q = r.path.indexOf('?');
      path = a.uri.includes('?') || q < 0 ? a.uri : a.uri + r.path.slice(q);
    }
    return `${scheme}://${a.authority ?? host}${port !== undefined ? `:${port}` : ''}${path}`;
  };
}
