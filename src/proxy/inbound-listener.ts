/**
 * The inbound listener: requests from peers' proxies for the local app. The
 * snapshot's inbound listener is picked by the Host header's port (else the
 * only one, or the first when all lead to the same app port; 404 NR otherwise); the request passes the listener's
 * chain (identity headers stripped now; mTLS identity, authorization and
 * rate limits slot in as stages) and goes to 127.0.0.1:<app port>, with
 * x-forwarded-for/-proto set and x-request-id kept or created; with tracing
 * on, the app gets the trace context with this hop's (server) span as parent.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { PROXY_ERRORS } from './errors.js';
import { Exchange, type ListenerContext } from './exchange.js';
import { runChain } from './filter-chain.js';
import { ensureRequestId, setForwarded, upstreamRequestHeaders } from './headers.js';
import { replyFor, sendLocalReply } from './local-reply.js';
import { traceRequest } from './trace-context.js';
import { portOf, requestTarget } from './request-target.js';
import { forwardDirect, internalError } from './route-executor.js';

export function inboundHandler(ctx: ListenerContext): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const state = ctx.current();
    const ex = new Exchange('inbound', req, res, state, ctx.host);
    ex.authority = req.headers.host ?? '';
    if (!state) { sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_SNAPSHOT)); return; }
    const t = requestTarget(req);
    if (typeof t === 'string') { sendLocalReply(ex, replyFor(PROXY_ERRORS.BAD_REQUEST, t)); return; }
    ex.authority = t.authority;
    ex.path = t.path;
    const port = portOf(t.authority) ?? 80;
    const ir = state.inboundByPort.get(port) ?? state.inboundFallback;
    if (!ir) {
      const ports = [...state.inboundByPort.keys()].join(', ') || 'none';
      sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_INBOUND_LISTENER, `${state.snapshot.node.id} serves no port ${port} (its ports: ${ports})`));
      return;
    }
    ex.cluster = ir.listener.name;
    const h = (ex.headers = upstreamRequestHeaders(req.headers));
    h.host = t.authority;
    ex.requestId = ensureRequestId(h);
    traceRequest(ex, state.snapshot.mesh);
    setForwarded(h, ex.remoteAddress, 'http');
    runChain(ir.chain, ex, (v) => (v ? sendLocalReply(ex, v) : forwardDirect(ex, ir.app, ex.path)), (err) => internalError(ex, err));
  };
}
