/**
 * The inbound listener's answer to `CONNECT <service>:<port>`: an opaque TCP
 * connection from a peer's sidecar (tcp-connect.ts) for the local app. The
 * snapshot's inbound listener is picked by the target's port — only an exact
 * one, never the HTTP fallback — the request passes that listener's chain
 * (authorization will be a stage there), the proxy connects to
 * 127.0.0.1:<app port>, answers `200` and splices the two sockets.
 *
 * The listener's PeerAuthentication mode is checked first, as for requests
 * (inbound-listener.ts): plaintext to a STRICT port, or mTLS to a DISABLE
 * one, is refused by closing the connection. Over mTLS the tunnel's record
 * carries the peer's SPIFFE ID as its source identity.
 *
 * Other refusals are HTTP answers with a reason, then the connection closes:
 * 400 for a target that is not `host:port`, 404 NR for a port the workload
 * does not serve, 502 UF when the app refuses the connection, the chain's
 * own answer (403 from authorization), 503 before the first snapshot.
 */
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { PROXY_ERRORS, type ErrorKind } from './errors.js';
import type { ListenerContext } from './exchange.js';
import { authorizeTcp } from './inbound-security.js';
import { portOf } from './request-target.js';
import { peerOf } from './tls/peer.js';
import { splitAddress, Tunnel, type TunnelSet } from './tcp-tunnel.js';

export type ConnectListener = (req: IncomingMessage, socket: Socket, head: Buffer) => void;

/** The app refused the connection: a gateway's answer (502), with Envoy's flag for a connect failure. */
const APP_REFUSED: ErrorKind = { ...PROXY_ERRORS.CONNECT_FAILURE, status: 502 };

function refuseWith(t: Tunnel, kind: ErrorKind, detail?: string): void {
  t.refuse(kind.status, detail ? `${kind.message}: ${detail}` : kind.message, kind.flag);
}

/** The `connect` listener of the inbound listener's HTTP/1.1 server. */
export function inboundConnect(ctx: ListenerContext, tunnels: TunnelSet): ConnectListener {
  return (req, socket, head) => {
    const state = ctx.current();
    const authority = req.url ?? '';
    const t = new Tunnel('inbound', socket, ctx.host, tunnels, state?.snapshot.node.id ?? '', authority);
    if (!state) { refuseWith(t, PROXY_ERRORS.NO_SNAPSHOT); return; }
    t.destinationIdentity = state.snapshot.node.identity;
    const port = portOf(authority);
    if (port === undefined || Number.isNaN(port)) { refuseWith(t, PROXY_ERRORS.BAD_REQUEST, `CONNECT needs a target host:port, not "${authority.slice(0, 100)}"`); return; }
    const ir = state.inboundByPort.get(port);
    if (!ir) {
      const ports = [...state.inboundByPort.keys()].join(', ') || 'none';
      refuseWith(t, PROXY_ERRORS.NO_INBOUND_LISTENER, `${state.snapshot.node.id} serves no port ${port} (its ports: ${ports})`);
      return;
    }
    t.cluster = ir.listener.name;
    const peer = peerOf(req);
    t.sourceIdentity = peer.spiffeId;
    t.mtls = peer.tls;
    t.peerPrincipal = peer.principal;
    const mode = ir.listener.mtls;
    if ((mode === 'STRICT' && !peer.tls) || (mode === 'DISABLE' && peer.tls)) {
      ctx.host.metrics.mtlsRefused(peer.tls ? 'mtls_on_disable' : 'plaintext_on_strict');
      t.closeClient(0);
      return;
    }
    // A tunnel is TCP to authorization: the caller's identity, addresses and ports decide (HTTP-only rules do not apply, as in Istio).
    const d = authorizeTcp(ir.authorize, ir.listener, {
      ...(peer.principal ? { peerPrincipal: peer.principal } : {}),
      ...(socket.remoteAddress ? { remoteAddress: socket.remoteAddress } : {}),
      ...(socket.localAddress ? { localAddress: socket.localAddress } : {}),
    });
    if (d && !d.allowed) { refuseWith(t, PROXY_ERRORS.RBAC_DENIED, d.reason); return; }
    const app = ir.app.pick(undefined, [])!.address;
    toApp(t, app, head, state.snapshot.mesh.connectTimeoutMs);
  };
}

/** Connects to the local app; on success answers 200 and splices, else 502 UF with the reason. */
function toApp(t: Tunnel, address: string, head: Buffer, timeoutMs: number): void {
  const { host, port } = splitAddress(address);
  const app = connect({ host, port, allowHalfOpen: true, noDelay: true });
  const timer = setTimeout(() => app.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
  const onError = (err: Error) => {
    clearTimeout(timer);
    refuseWith(t, APP_REFUSED, `the app at ${address} did not accept the connection (${(err as NodeJS.ErrnoException).code ?? err.message})`);
  };
  app.once('error', onError);
  app.once('connect', () => {
    clearTimeout(timer);
    app.off('error', onError);
    if (t.downstream.destroyed) { app.destroy(); t.destroy(); return; }
    t.status = 200;
    t.upstream = address;
    t.downstream.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) app.write(head);
    t.splice(app);
  });
}
