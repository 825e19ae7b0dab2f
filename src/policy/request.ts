/**
 * The facts about a request that routing decisions read. The proxy fills it
 * from the live request; `simulate()` and the analyzers fill it from a
 * description. Header names are lowercase.
 */
export interface RouteRequest {
  /** The destination port the caller asked for (80 when absent from an http URL). */
  readonly port: number;
  /** Host or authority as sent; may carry `:port`; compared case-insensitively. */
  readonly host: string;
  /** Path with optional `?query`; matching uses the path only, `queryParams` the query. */
  readonly path: string;
  readonly method: string;
  readonly scheme: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The caller's namespace, when known (gateways); sidecars use their own. */
  readonly sourceNamespace?: string;
  /** For gateways: the Gateway (`ns/name`) the request arrived through. */
  readonly gateway?: string;
  /**
   * The payload of the JWT that this proxy's RequestAuthentication verified
   * before routing (gateways), as the authn stage left it (space-delimited
   * claims as lists); absent when the request carried no valid token. Route
   * matches on `@request.auth.claims.*` read only this, never a header.
   */
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

export function headerValue(req: RouteRequest, name: string): string | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

/** The path without its query string and fragment. */
export function pathOnly(path: string): string {
  let end = path.length;
  const q = path.indexOf('?');
  if (q >= 0) end = q;
  const h = path.indexOf('#');
  if (h >= 0 && h < end) end = h;
  return end === path.length ? path : path.slice(0, end);
}

/** Value of one query parameter (first occurrence), decoded; undefined when absent. */
export function queryParam(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  const h = path.indexOf('#', q);
  const params = new URLSearchParams(path.slice(q + 1, h < 0 ? undefined : h));
  return params.get(name) ?? undefined;
}
