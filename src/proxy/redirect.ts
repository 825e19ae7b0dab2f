/**
 * A route's redirect, compiled once per snapshot into a function that builds
 * the Location from the request, with Envoy's meaning of each field: `uri`
 * replaces the whole path (the query stays unless `uri` has one);
 * `authority` replaces the request's whole authority, port included;
 * `port` sets the port; `derivePort` takes the request's port
 * (FROM_REQUEST_PORT) or the scheme's default (FROM_PROTOCOL_DEFAULT, as
 * Istio documents it); a new `scheme` keeps the request's port unless it was
 * the old scheme's default (`http://a:80` → `https://a`, `http://a:8080` →
 * `https://a:8080`). A port that is the scheme's default is left out.
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
  const [newHost, newHostPort] = a.authority !== undefined ? splitAuthority(a.authority) : [undefined, undefined];
  return (r) => {
    const scheme = a.scheme ?? r.scheme;
    let host: string;
    let port: number | undefined;
    if (newHost !== undefined) {
      host = newHost;
      port = newHostPort;
    } else {
      const [requestHost, requestPort] = splitAuthority(r.authority);
      host = requestHost;
      port = scheme !== r.scheme && requestPort === defaultPort(r.scheme) ? undefined : requestPort;
    }
    if (a.port !== undefined) port = a.port;
    else if (a.derivePort === 'FROM_REQUEST_PORT') port = r.port;
    else if (a.derivePort === 'FROM_PROTOCOL_DEFAULT') port = undefined;
    if (port === defaultPort(scheme)) port = undefined;
    let path = r.path;
    if (a.uri !== undefined) {
      const q = r.path.indexOf('?');
      path = a.uri.includes('?') || q < 0 ? a.uri : a.uri + r.path.slice(q);
    }
    return `${scheme}://${host}${port !== undefined ? `:${port}` : ''}${path}`;
  };
}
