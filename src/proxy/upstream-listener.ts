/**
 * A per-upstream local port (Consul-style upstreams; local mode has no
 * traffic capture): a listener on 127.0.0.1 for one service port, for apps
 * that speak TCP or cannot use HTTP_PROXY. What a connection becomes is
 * decided when it arrives, by the snapshot in force:
 *
 * - the service port is opaque TCP (`router.tcp(port, host)` has a route):
 *   tunnelled to a peer's inbound listener (tcp-connect.ts);
 * - it is HTTP: served by the outbound routing, every request as if sent to
 *   `http://<host>:<port>` (outboundHandler with a fixed target), HTTP/1.1 or h2c;
 * - neither (no snapshot, or no such service yet): the connection is closed,
 *   and the proxy's log says why once, until the port is served again.
 */
import { Server as NetServer, type Socket } from 'node:net';
import { PROXY_ERRORS, type ErrorKind } from './errors.js';
import type { ListenerContext } from './exchange.js';
import type { ProxyLimits } from './limits.js';
import { ProxyServer } from './listener-server.js';
import { outboundHandler, refuseConnect } from './outbound-listener.js';
import { tunnelTcp } from './tcp-connect.js';
import { Tunnel, type TunnelSet } from './tcp-tunnel.js';
import type { UpstreamPort } from './types.js';

export class UpstreamListener extends NetServer {
  /** `<host>:<port>` of the upstream, as configured. */
  readonly name: string;
  /** Serves the connections of an HTTP service port (it never listens itself). */
  readonly http: ProxyServer;
  #unserved: string | undefined;

  constructor(
    readonly ctx: ListenerContext,
    readonly upstream: UpstreamPort,
    readonly tunnels: TunnelSet,
    readonly log: ((line: string) => void) | undefined,
    limits?: ProxyLimits,
  ) {
    super({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });
    this.name = `${upstream.host}:${upstream.port}`;
    this.http = new ProxyServer(outboundHandler(ctx, { authority: this.name, port: upstream.port }), limits ? { direction: 'outbound', limits, ctx } : undefined);
    this.http.http1.on('connect', refuseConnect);
    this.on('connection', (socket: Socket) => this.#accept(socket));
  }

  #accept(socket: Socket): void {
    const { ctx, upstream } = this;
    const state = ctx.current();
    const tunnel = () => new Tunnel('outbound', socket, ctx.host, this.tunnels, state?.snapshot.node.id ?? '', this.name);
    if (!state) { this.#refuse(tunnel(), PROXY_ERRORS.NO_SNAPSHOT, 'the proxy has no configuration yet'); return; }
    const tcp = state.router.tcp(upstream.port, upstream.host);
    if (tcp) {
      this.#served();
      const t = tunnel();
      t.authority = `${tcp.host}:${tcp.port}`;
      t.sourceIdentity = state.snapshot.node.identity;
      tunnelTcp(t, state.tcpPlans.get(tcp)!);
      return;
    }
    if (state.router.virtualHost(upstream.port, upstream.host)) {
      this.#served();
      this.http.emit('connection', socket);
      return;
    }
    this.#refuse(tunnel(), PROXY_ERRORS.NO_ROUTE, `no service "${upstream.host}" with port ${upstream.port} in the configuration in force`);
  }

  #refuse(t: Tunnel, kind: ErrorKind, why: string): void {
    t.fail(kind);
    if (this.#unserved === why) return;
    this.#unserved = why;
    this.log?.(`upstream ${this.name} (local port ${this.localPort}): ${why}; closing its connections until a snapshot has it`);
  }

  #served(): void {
    if (this.#unserved === undefined) return;
    this.#unserved = undefined;
    this.log?.(`upstream ${this.name} (local port ${this.localPort}): served again`);
  }

  get localPort(): number {
    const a = this.address();
    return a && typeof a === 'object' ? a.port : this.upstream.localPort;
  }

  /** HTTP connections without a request in flight (stopListening and close() call it). */
  closeIdleConnections(): void {
    this.http.closeIdleConnections();
  }

  /** HTTP connections; the tunnels are the data plane's TunnelSet's to cut. */
  closeAllConnections(): void {
    this.http.closeAllConnections();
  }
}
