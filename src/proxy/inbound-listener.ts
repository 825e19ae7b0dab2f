/**
 * The inbound listener: requests from peers' proxies for the local app. The
 * snapshot's inbound listener is picked by the Host header's port (or the
 * only one there is; 404 NR otherwise); the request passes the listener's
 * chain (identity headers stripped now; mTLS identity, authorization and
 * rate limits slot in as stages) and goes to 127.0.0.1:<app port>, with
 * x-forwarded-for/-proto set and x-request-id kept or created.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { PROXY_ERRORS } from './errors.js';
import { Exchange } from './exchange.js';
import { runChain } from './filter-chain.js';
import { ensureRequestId, setForwarded, upstreamRequestHeaders } from './headers.js';
import type { ListenerContext } from './listener-context.js';
import { replyFor, sendLocalReply } from './local-reply.js';
import { portOf } from './request-target.js';
import { forwardDirect, internalError } from './route-executor.js';

export function inboundHandler(ctx: ListenerContext): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const state = ctx.current();
    const ex = new Exchange('inbound', req, res, state, ctx.host);
    const authority = req.headers.host ?? '';
    ex.authority = authority;
    if (!state) { sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_SNAPSHOT)); return; }
    const port = portOf(authority) ?? 80;
    const ir = state.inboundByPort.get(port) ?? state.inboundOnly;
    if (!ir) {
      const ports = [...state.inboundByPort.keys()].join(', ') || 'none';
      sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_INBOUND_LISTENER, `${state.snapshot.node.id} serves no port ${port} (its ports: ${ports})`));
      return;
    }
    ex.cluster = ir.listener.name;
    const h = (ex.headers = upstreamRequestHeaders(req.headers));
    ex.requestId = ensureRequestId(h);
    setForwarded(h, ex.remoteAddress, 'http');
    runChain(ir.chain, ex, (v) => (v ? sendLocalReply(ex, v) : forwardDirect(ex, ir.app, ex.path)), (err) => internalError(ex, err));
  };
}
