/**
 * The `cors` stage: a route's CORS policy (VirtualService `corsPolicy`),
 * with the behaviour of Envoy's CORS filter, which Istio places right after
 * the fault filter, before the router:
 *
 * - a request without an `origin` header is not a CORS request: untouched;
 * - a preflight (OPTIONS with `origin` and `access-control-request-method`)
 *   from an allowed origin is answered by the proxy: 200 with
 *   `access-control-allow-origin` (the origin), `-allow-credentials`,
 *   `-allow-methods`, `-allow-headers` (`*` echoes what was asked),
 *   `-max-age`; it never reaches the upstream;
 * - a preflight from an origin not allowed goes upstream (FORWARD, the
 *   default) or is answered 200 without `access-control-allow-origin`
 *   (IGNORE; Envoy still sends the other preflight headers);
 * - any other request from an allowed origin goes on, and its response —
 *   the upstream's, or the proxy's own (a direct response, a redirect, an
 *   error) — gets `access-control-allow-origin`, `-allow-credentials` and
 *   `-expose-headers`. A response to an origin not allowed gets none.
 *
 * An origin is allowed when a matcher of `allowOrigins` accepts it, or
 * accepts the literal `*` (so `exact: "*"` or `regex: ".*"` allow every
 * origin, still answered with the origin itself, as Envoy does).
 *
 * The response headers are set on the downstream response before its head
 * is written; headers the upstream sends under the same names are written
 * over them (Envoy's filter would overwrite the upstream's instead).
 */
import type { CorsPolicy } from '../protocol/snapshot.js';
import { compileStringMatcher, type StringTest } from '../policy/string-match.js';
import { SnapshotError } from './errors.js';
import type { Stage, StageContext, Verdict } from './filter-chain.js';
import type { LocalReply } from './local-reply.js';

/** The downstream response, which the Exchange running the chain has: CORS headers for whatever answer follows go there. */
interface ResponseSink {
  readonly res?: { setHeader(name: string, value: string): unknown; readonly headersSent: boolean };
}

const one = (v: string | string[] | undefined): string | undefined => (typeof v === 'string' ? v : v?.join(','));

/** The stage for a route's CORS policy, or undefined when the route has none. */
export function corsStage(where: string, policy: CorsPolicy | undefined): Stage | undefined {
  if (!policy) return undefined;
  const tests: StringTest[] = policy.allowOrigins.map((m) => {
    try {
      return compileStringMatcher(m);
    } catch (err) {
      throw new SnapshotError(`corsPolicy allowOrigins ${m.kind} "${m.value}" does not compile: ${(err as Error).message}`);
    }
  });
  const allowsAny = tests.some((t) => t('*'));
  const allowed = (origin: string): boolean => {
    if (allowsAny) return true;
    for (let i = 0; i < tests.length; i++) if (tests[i]!(origin)) return true;
    return false;
  };
  const methods = policy.allowMethods.join(',');
  const headers = policy.allowHeaders.join(',');
  const expose = policy.exposeHeaders.join(',');
  const maxAge = policy.maxAgeSeconds !== undefined ? String(policy.maxAgeSeconds) : '';
  const credentials = policy.allowCredentials;
  const forwardUnmatched = policy.unmatchedPreflights === 'FORWARD';

  const preflight = (ctx: StageContext, origin: string | undefined): LocalReply => {
    const h: Record<string, string> = {};
    if (origin !== undefined) h['access-control-allow-origin'] = origin;
    if (credentials) h['access-control-allow-credentials'] = 'true';
    if (methods) h['access-control-allow-methods'] = methods === '*' ? one(ctx.headers['access-control-request-method']) ?? '' : methods;
    if (headers) {
      const asked = headers === '*' ? one(ctx.headers['access-control-request-headers']) : headers;
      if (asked) h['access-control-allow-headers'] = asked;
    }
    if (maxAge) h['access-control-max-age'] = maxAge;
    return { status: 200, body: '', headers: h };
  };

  return {
    // Istio's filter order is fault, then CORS, then the router: this stage comes after the route's fault stage, in the same phase.
    phase: 'fault',
    name: `cors(${where})`,
    run(ctx): Verdict {
      const origin = one(ctx.headers.origin);
      if (!origin) return undefined;
      const ok = allowed(origin);
      if (ctx.method === 'OPTIONS' && one(ctx.headers['access-control-request-method'])) {
        if (!ok && forwardUnmatched) return undefined;
        return preflight(ctx, ok ? origin : undefined);
      }
      if (!ok) return undefined;
      const res = (ctx as StageContext & ResponseSink).res;
      if (!res || res.headersSent) return undefined;
      res.setHeader('access-control-allow-origin', origin);
      if (credentials) res.setHeader('access-control-allow-credentials', 'true');
      if (expose) res.setHeader('access-control-expose-headers', expose);
      return undefined;
    },
  };
}
