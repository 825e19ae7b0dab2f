/**
 * The outbound listener: the app's calls, as an HTTP/1.1 forward proxy
 * (absolute-form, the app has HTTP_PROXY pointing here), by Host header, or
 * as h2c with prior knowledge by :authority (one port: listener-server.ts).
 * Request → router (the snapshot's, shared with `simulate()`) → route plan;
 * what the router cannot place goes, as simulate says, to the TCP service of
 * that port, through PASSTHROUGH (ALLOW_ANY), or nowhere: 502 (REGISTRY_ONLY).
 * With tracing on, the app's trace context (or a new trace) goes upstream
 * with this hop's client span as parent (trace-context.ts).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { hostOnly } from '../policy/route-table.js';
import type { RouteRequest } from '../policy/request.js';
import { PROXY_ERRORS } from './errors.js';
import { Exchange, type ListenerContext } from './exchange.js';
import { singleHost, type Host } from './hosts.js';
import { ensureRequestId, upstreamRequestHeaders } from './headers.js';
import { l4Plans } from './l4-plans.js';
import { replyFor, sendLocalReply } from './local-reply.js';
import { requestTarget, type RequestTarget } from './request-target.js';
import { forwardDirect, serveRoute } from './route-executor.js';
import { traceRequest } from './trace-context.js';
import { hostPort, Upstream } from './upstream-pools.js';

/** A fixed destination for every request of a listener (an upstream local port: upstream-listener.ts). */
export interface FixedTarget {
  /** `host:port` the requests are routed by and sent with as Host. */
  readonly authority: string;
  readonly port: number;
}

export function outboundHandler(ctx: ListenerContext, fixed?: FixedTarget): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const state = ctx.current();
    const ex = new Exchange('outbound', req, res, state, ctx.host);
    if (!state) { sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_SNAPSHOT)); return; }
    const t0 = requestTarget(req);
    const t = fixed && typeof t0 !== 'string' ? { ...t0, authority: fixed.authority, port: fixed.port } : t0;
    if (typeof t === 'string') { ex.authority = req.headers.host ?? ''; sendLocalReply(ex, replyFor(PROXY_ERRORS.BAD_REQUEST, t)); return; }
    ex.authority = t.authority;
    ex.path = t.path;
    ex.sourceIdentity = state.snapshot.node.identity;
    const h = (ex.headers = upstreamRequestHeaders(req.headers));
    h.host = t.authority;
    ex.requestId = ensureRequestId(h);
    traceRequest(ex, state.snapshot.mesh);
    if (h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = t.scheme;
    const rr: RouteRequest = {
      port: t.port, host: t.authority, path: t.path, method: ex.method, scheme: t.scheme,
      headers: state.pseudoHeaders ? { ...req.headers, ':authority': t.authority } : req.headers,
    };
    const d = state.router.route(rr);
    if (d.ok) {
      ex.virtualHost = d.virtualHost.name;
      serveRoute(ex, state.plans.get(d.route)!, d.matchIndex, t);
      return;
    }
    if (d.virtualHost) ex.virtualHost = d.virtualHost.name;
    if (d.reason === 'NO_ROUTE') { sendLocalReply(ex, replyFor(PROXY_ERRORS.NO_ROUTE, d.detail)); return; }
    if (d.reason === 'NO_ROUTE_TABLE') {
      const l4 = l4Plans(state);
      const tcp = l4.router.tcp(t.port, t.authority);
      if (tcp) { serveRoute(ex, l4.tcp(tcp), -1, t); return; }
    }
    if (state.passthrough) { passthrough(ex, ctx, t); return; }
    ex.cluster = 'BlackHoleCluster';
    sendLocalReply(ex, replyFor(PROXY_ERRORS.BLACKHOLE, `${d.detail}`));
  };
}

/** ALLOW_ANY: the request goes to the host and port it names, outside the mesh (Istio's PassthroughCluster). */
function passthrough(ex: Exchange, ctx: ListenerContext, t: RequestTarget): void {
  ex.cluster = 'PassthroughCluster';
  const bare = hostOnly(t.authority).replace(/^\[|\]$/g, '').toLowerCase();
  // A request for the proxy's own listener would come back to it, and again, for ever: refused.
  if (ctx.isOwnAddress?.(bare, t.port)) { sendLocalReply(ex, replyFor(PROXY_ERRORS.LOOP, `${t.authority} is this proxy's own listener`)); return; }
  const address = hostPort(bare, t.port);
  const host: Host = { upstream: new Upstream('passthrough', address, `http://${address}`, ctx.passthrough()), address, identity: '' };
  forwardDirect(ex, singleHost(host), t.path);
}

/** CONNECT (HTTPS through HTTP_PROXY) is not tunnelled yet: say so instead of hanging up. */
export function refuseConnect(_req: IncomingMessage, socket: Socket): void {
  const body = 'CONNECT tunnels are not supported by the Trellis outbound listener yet; call http:// URLs through it\n';
  socket.end(`HTTP/1.1 501 Not Implemented\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
