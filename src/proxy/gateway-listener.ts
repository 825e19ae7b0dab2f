/**
 * A gateway listener: one per Gateway server port. Traffic from outside
 * passes the gateway chain (identity headers stripped), then is routed with
 * the snapshot's route table of the server port (the Host header picks the
 * virtual host) and forwarded like outbound traffic. What no route takes is
 * 404 NR: a gateway passes nothing through. With tracing on, a trace starts
 * here unless the request brings a context (trace-context.ts). The chain's
 * authn stage runs before routing, so route matches on JWT claims see the
 * claims of the token it verified (none without a valid token).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { RouteRequest } from '../policy/request.js';
import { PROXY_ERRORS } from './errors.js';
import { Exchange, type ListenerContext } from './exchange.js';
import { runChain } from './filter-chain.js';
import { normalizePath } from '../policy/path-normalize.js';
import { ensureRequestId, setForwarded, upstreamRequestHeaders } from './headers.js';
import { replyFor, sendLocalReply } from './local-reply.js';
import { traceRequest } from './trace-context.js';
import { requestTarget, type RequestTarget } from './request-target.js';
import { internalError, serveRoute } from './route-executor.js';

export function gatewayHandler(ctx: ListenerContext, serverPort: number): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const state = ctx.current();
    const ex = new Exchange('gateway', req, res, state, ctx.host);
    if (!state) { sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_SNAPSHOT)); return; }
    const parsed = requestTarget(req);
    if (typeof parsed === 'string') { ex.authority = req.headers.host ?? ''; sendLocalReply(ex, replyFor(PROXY_ERRORS.BAD_REQUEST, parsed)); return; }
    // As on the inbound side: the path is normalized before routing and authorization match on it, and forwarded so.
    const n = normalizePath(parsed.path, state.snapshot.mesh.pathNormalization);
    if (!n.ok) {
      ex.authority = parsed.authority;
      if (n.status === 307) sendLocalReply(ex, { status: 307, body: `${n.message}\n`, headers: { location: n.location } });
      else sendLocalReply(ex, replyFor(PROXY_ERRORS.PATH_REJECTED, n.message));
      return;
    }
    const t: RequestTarget = { ...parsed, port: serverPort, path: n.path + n.query };
    ex.authority = t.authority;
    ex.path = t.path;
    const h = (ex.headers = upstreamRequestHeaders(req.headers));
    h.host = t.authority;
    ex.requestId = ensureRequestId(h);
    traceRequest(ex, state.snapshot.mesh);
    setForwarded(h, ex.remoteAddress, t.scheme);
    runChain(state.gatewayChain(serverPort), ex, (v) => {
      if (v) { sendLocalReply(ex, v); return; }
      const rr: RouteRequest = {
        port: serverPort, host: t.authority, path: t.path, method: ex.method, scheme: t.scheme,
        headers: state.pseudoHeaders ? { ...req.headers, ':authority': t.authority } : req.headers,
        // The payload the authn stage verified (no second parse); only claim matches read it.
        claims: ex.requestAuth?.claims,
      };
      const d = state.router.route(rr);
      if (d.virtualHost) ex.virtualHost = d.virtualHost.name;
      if (!d.ok) { sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_ROUTE, d.detail)); return; }
      serveRoute(ex, state.plans.get(d.route)!, d.matchIndex, t);
    }, (err) => internalError(ex, err));
  };
}
