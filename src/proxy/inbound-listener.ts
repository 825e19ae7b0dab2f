/**
 * The inbound listener: requests from peers' proxies for the local app. The
 * snapshot's inbound listener is picked by the Host header's port (else the
 * only one, or the first when all lead to the same app port; 404 NR otherwise); the listener's
 * PeerAuthentication mode is enforced (STRICT: a plaintext request is refused
 * by closing its connection — an HTTP/2 stream is reset — as Envoy does;
 * DISABLE: an mTLS one is, since the port is plaintext only; PERMISSIVE, or
 * no mode: both pass); the request passes the listener's
 * chain (identity headers stripped now; authorization and
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
import { peerOf } from './tls/peer.js';
import { normalizePath } from '../policy/path-normalize.js';

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
    const peer = peerOf(req);
    ex.mtls = peer.tls;
    ex.peerPrincipal = peer.principal;
    ex.sourceIdentity = peer.spiffeId;
    const mode = ir.listener.mtls;
    if ((mode === 'STRICT' && !peer.tls) || (mode === 'DISABLE' && peer.tls)) {
      ctx.host.metrics.mtlsRefused(peer.tls ? 'mtls_on_disable' : 'plaintext_on_strict');
      ex.destroyDownstream();
      return;
    }
    // The path is normalized (MeshConfig pathNormalization) before anything matches on it, and the app gets exactly that path.
    const n = normalizePath(t.path, state.snapshot.mesh.pathNormalization);
    if (!n.ok) {
      if (n.status === 307) sendLocalReply(ex, { status: 307, body: `${n.message}\n`, headers: { location: n.location } });
      else sendLocalReply(ex, replyFor(PROXY_ERRORS.PATH_REJECTED, n.message));
      return;
    }
    ex.path = n.path + n.query;
    ex.localAddress = req.socket.localAddress;
    const h = (ex.headers = upstreamRequestHeaders(req.headers));
    h.host = t.authority;
    ex.requestId = ensureRequestId(h);
    traceRequest(ex, state.snapshot.mesh);
    setForwarded(h, ex.remoteAddress, 'http');
    runChain(ir.chain, ex, (v) => {
      if (v) { sendLocalReply(ex, v); return; }
      // The app learns its verified caller as Istio's sidecars tell it (SANITIZE_SET: the caller's own header was stripped by the chain).
      if (peer.spiffeId) h['x-forwarded-client-cert'] = `By=${state.snapshot.node.identity};Hash=${peer.hash ?? ''};URI=${peer.spiffeId}`;
      forwardDirect(ex, ir.app, ex.path);
    }, (err) => internalError(ex, err));
  };
}
