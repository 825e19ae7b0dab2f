/**
 * A per-upstream local port (Consul-style upstreams; local mode has no
 * traffic capture): a listener on 127.0.0.1 for one service port, for apps
 * that speak TCP or cannot use HTTP_PROXY. What a connection becomes is
 * decided when it arrives, by the snapshot in force:
 *
 * - the service port is TLS or HTTPS: the ClientHello is peeked (sni.ts,
 *   bounded in bytes and time; what is not a ClientHello is closed, flag
 *   DPE, and logged once per kind) and its SNI (the upstream's host when it
 *   sends none) picks the TLS route; what no route names takes the
 *   destination's tcp rules, else PASSTHROUGH to the upstream's `host:port`
 *   (ALLOW_ANY) or nothing (REGISTRY_ONLY: BlackHoleCluster). The bytes are
 *   forwarded as they came: TLS is never terminated here;
 * - the service port is opaque TCP (the L4 router has a route for the host):
 *   tunnelled to a peer's inbound listener (tcp-connect.ts);
 * - it is HTTP: served by the outbound routing, every request as if sent to
 *   `http://<host>:<port>` (outboundHandler with a fixed target), HTTP/1.1 or h2c;
 * - a host the mesh does not know on a port with TLS routes: by SNI, as above;
 * - neither (no snapshot, or no such service yet): the connection is closed,
 *   and the proxy's log says why once, until the port is served again.
 */
import { isIP, Server as NetServer, type Socket } from 'node:net';
import { PROXY_ERRORS, type ErrorKind } from './errors.js';
import type { ListenerContext } from './exchange.js';
import { l4Plans } from './l4-plans.js';
import type { ProxyLimits } from './limits.js';
import { ProxyServer } from './listener-server.js';
import { outboundHandler, refuseConnect } from './outbound-listener.js';
import { CLIENT_HELLO_TIMEOUT_MS, HELLO_ERRORS, peekClientHello, type HelloError, type PeekResult } from './sni.js';
import { passthroughTcp, tunnelTcp } from './tcp-connect.js';
import { Tunnel, type TunnelSet } from './tcp-tunnel.js';
import { hostPort } from './upstream-pools.js';
import type { UpstreamPort } from './types.js';

export class UpstreamListener extends NetServer {
  /** `<host>:<port>` of the upstream, as configured. */
  readonly name: string;
  /** Serves the connections of an HTTP service port (it never listens itself). */
  readonly http: ProxyServer;
  #unserved: string | undefined;
  /** The ClientHello must arrive within this: the headers timeout, at most Envoy's 15 s listener filter timeout. */
  readonly #helloTimeoutMs: number;
  /** Kinds of bad ClientHello already logged. */
  readonly #helloLogged = new Set<HelloError>();

  constructor(
    readonly ctx: ListenerContext,
    readonly upstream: UpstreamPort,
    readonly tunnels: TunnelSet,
    readonly log: ((line: string) => void) | undefined,
    limits?: ProxyLimits,
  ) {
    super({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });
    this.name = `${upstream.host}:${upstream.port}`;
    this.#helloTimeoutMs = Math.min(CLIENT_HELLO_TIMEOUT_MS, limits?.headersTimeoutMs || CLIENT_HELLO_TIMEOUT_MS);
    this.http = new ProxyServer(outboundHandler(ctx, { authority: this.name, port: upstream.port }), limits ? { direction: 'outbound', limits, ctx } : undefined);
    this.http.http1.on('connect', refuseConnect);
    this.on('connection', (socket: Socket) => this.#accept(socket));
  }

  #accept(socket: Socket): void {
    const { ctx, upstream } = this;
    const state = ctx.current();
    const tunnel = () => new Tunnel('outbound', socket, ctx.host, this.tunnels, state?.snapshot.node.id ?? '', this.name);
    if (!state) { this.#refuse(tunnel(), PROXY_ERRORS.NO_SNAPSHOT, 'the proxy has no configuration yet'); return; }
    const l4 = l4Plans(state);
    if (l4.router.isTlsService(upstream.port, upstream.host)) { this.#served(); this.#bySni(tunnel()); return; }
    const tcp = l4.router.tcp(upstream.port, upstream.host);
    if (tcp) {
      this.#served();
      const t = tunnel();
      t.authority = `${tcp.host}:${tcp.port}`;
      t.sourceIdentity = state.snapshot.node.identity;
      tunnelTcp(t, l4.tcp(tcp));
      return;
    }
    if (state.router.virtualHost(upstream.port, upstream.host)) {
      this.#served();
      this.http.emit('connection', socket);
      return;
    }
    if (l4.router.hasTls(upstream.port)) { this.#served(); this.#bySni(tunnel()); return; }
    this.#refuse(tunnel(), PROXY_ERRORS.NO_ROUTE, `no service "${upstream.host}" with port ${upstream.port} in the configuration in force`);
  }

  /** Peeks the ClientHello, then routes by its SNI with the snapshot in force once it has arrived. */
  #bySni(t: Tunnel): void {
    peekClientHello(t.downstream, { timeoutMs: this.#helloTimeoutMs }, (r) => this.#routeHello(t, r));
  }

  #routeHello(t: Tunnel, r: PeekResult): void {
    const { port, host } = this.upstream;
    if (!r.ok) {
      if (r.code === 'CLOSED') { t.closeClient(0, 'DC'); return; }
      t.fail(r.code === 'TIMEOUT' ? HELLO_ERRORS.TIMEOUT : HELLO_ERRORS.NOT_A_HELLO);
      if (!this.#helloLogged.has(r.code)) {
        this.#helloLogged.add(r.code);
        this.log?.(`upstream ${this.name} (local port ${this.localPort}): closed a connection: ${r.reason} (logged once per kind)`);
      }
      return;
    }
    const state = this.ctx.current();
    if (!state) { t.fail(PROXY_ERRORS.NO_SNAPSHOT); return; }
    const l4 = l4Plans(state);
    const sni = r.hello.serverName;
    const bare = host.replace(/^\[|\]$/g, '');
    t.authority = `${sni ?? host}:${port}`;
    t.sourceIdentity = state.snapshot.node.identity;
    const tls = l4.router.tls(port, sni ?? host, isIP(bare) ? bare : undefined);
    if (tls) { tunnelTcp(t, l4.tls(tls), r.bytes); return; }
    const tcp = l4.router.tcp(port, host);
    if (tcp) { tunnelTcp(t, l4.tcp(tcp), r.bytes); return; }
    if (!state.passthrough) { t.cluster = 'BlackHoleCluster'; t.fail(PROXY_ERRORS.BLACKHOLE); return; }
    if (this.ctx.isOwnAddress?.(bare.toLowerCase(), port)) { t.cluster = 'PassthroughCluster'; t.fail(PROXY_ERRORS.LOOP); return; }
    passthroughTcp(t, hostPort(bare, port), r.bytes, state.snapshot.mesh.connectTimeoutMs);
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
