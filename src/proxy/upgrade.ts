/**
 * HTTP/1.1 `Upgrade` requests (WebSocket) through the listeners. Node's
 * http.Server gives them to its 'upgrade' event with the raw socket instead
 * of to the request handler, and undici cannot carry them; so:
 *
 * - accept: the request goes to the listener's own request handler all the
 *   same (emitted as 'request'), with an UpgradeResponse — a ServerResponse
 *   written on the raw socket. Routing, the chains, faults, redirects, direct
 *   responses and every refusal (404 NR, 503 UH, …) are thus exactly those of
 *   a normal request, and so is the record; any answer but a 101 closes the
 *   connection once written.
 * - tunnel: where a normal request would be forwarded (route-executor.ts),
 *   one new HTTP/1.1 connection to the host the load balancer picked carries
 *   the request head — the upstream headers as usual, plus `Connection:
 *   Upgrade` and the caller's `Upgrade` — within the connect timeout and the
 *   route timeout. A 101 is relayed (route response headers applied) and the
 *   sockets are spliced (splice.ts) until either side closes or the tunnel
 *   is idle for `idleTimeoutMs`; any other response is relayed and the
 *   connection closed. To an endpoint of a TLS cluster the connection is
 *   opened by its connector (tls/upstream-connector.ts: mTLS with secure
 *   naming for ISTIO_MUTUAL); a TLS failure is a connect failure. The exchange ends, with its record (status 101, bytes
 *   both ways, duration = the tunnel's life), when the downstream socket
 *   closes; the host counts the tunnel as a request in flight meanwhile.
 */
import { request, ServerResponse, type ClientRequest, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ClusterTarget } from './cluster-target.js';
import { classifyUpstreamError, failureKind, PROXY_ERRORS, type UpstreamFailure } from './errors.js';
import type { Exchange } from './exchange.js';
import type { ForwardSpec } from './forwarder.js';
import { downstreamResponseHeaders, type Headers } from './headers.js';
import type { Host } from './hosts.js';
import { replyFor, sendLocalReply, type LocalReply } from './local-reply.js';
import { backoffMs, retriableFailure } from './retry-policy.js';
import { splice } from './splice.js';
import { splitAddress } from './tcp-tunnel.js';
import { upstreamTlsError } from './tls/identity.js';

/** Envoy's default stream idle timeout: 5 minutes. */
export const DEFAULT_WEBSOCKET_IDLE_MS = 300_000;
/** Only without a snapshot at hand: Envoy's default connect timeout. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

const ignore = (): void => undefined;

/** The upgraded connections of one data plane: its idle limit, and the sockets close() cuts after its grace. */
export class Upgrades {
  readonly #open = new Set<Socket>();

  constructor(readonly idleTimeoutMs: number) {}

  /** Serves the upgrade requests of a listener's HTTP/1.1 server with the server's request handler. */
  accept(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // The socket is ours now, without the server's error handler: a reset must not go unhandled.
      socket.on('error', () => socket.destroy());
      let res: UpgradeResponse;
      try {
        res = new UpgradeResponse(req, socket, head, this);
      } catch {
        socket.destroy(); // a pipelined response still in progress owns the socket
        return;
      }
      this.#open.add(socket);
      socket.once('close', () => this.#open.delete(socket));
      server.emit('request', req, res);
    });
  }

  destroyAll(): void {
    for (const s of this.#open) s.destroy();
  }
}

/** The response of an upgrade request, written on its raw socket (local replies, a relayed refusal, the 101). */
export class UpgradeResponse extends ServerResponse {
  constructor(req: IncomingMessage, readonly downstream: Socket, readonly head: Buffer, readonly upgrades: Upgrades) {
    super(req);
    this.shouldKeepAlive = false;
    this.assignSocket(downstream);
    // Until the upstream answers, the idle limit bounds the wait too; a tunnel keeps it (splice.ts).
    if (upgrades.idleTimeoutMs > 0) downstream.setTimeout(upgrades.idleTimeoutMs, () => downstream.destroy());
    // Any answer but a 101 ends the connection once written (there is no parser left on the socket for another request).
    this.once('finish', () => { if (this.statusCode !== 101) downstream.destroySoon(); });
  }
}

/** The upgrade response when the request came through a listener's 'upgrade' event. */
export function upgradeOf(ex: Exchange): UpgradeResponse | undefined {
  const res = ex.res;
  return res instanceof UpgradeResponse ? res : undefined;
}

/** Opens the upgraded connection for a request the route (or the inbound chain) sends to `spec.hosts`. */
export function tunnel(ex: Exchange, res: UpgradeResponse, spec: ForwardSpec): void {
  new Handshake(ex, res, spec).next();
}

class Handshake {
  readonly tried: Host[] = [];
  readonly connectTimeoutMs: number;
  retriesLeft: number;
  done = false;
  #req: ClientRequest | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly ex: Exchange, readonly res: UpgradeResponse, readonly spec: ForwardSpec) {
    // A cluster's own connect timeout (DestinationRule connectionPool); the mesh's for the app and passthrough hosts.
    const cluster = (spec.hosts as Partial<ClusterTarget>).cluster;
    this.connectTimeoutMs = cluster?.connectionPool.connectTimeoutMs ?? ex.state?.snapshot.mesh.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.retriesLeft = spec.retry.maxRetries;
    if (spec.timeoutMs > 0) {
      this.#timer = setTimeout(() => this.#reply(replyFor(PROXY_ERRORS.UPSTREAM_TIMEOUT, `no answer to the upgrade within the route timeout of ${spec.timeoutMs} ms`)), spec.timeoutMs);
    }
    ex.cancel = () => this.#finish();
  }

  next(): void {
    if (this.done) return;
    const { ex, spec } = this;
    const host = spec.hosts.pick(spec.hashKey, this.tried);
    if (!host) { this.#reply(replyFor(PROXY_ERRORS.NO_HEALTHY_UPSTREAM)); return; }
    this.tried.push(host);
    ex.attempts = this.tried.length;
    ex.upstream = host.address;
    ex.destinationIdentity = host.identity || undefined;
    if (this.tried.length > 1) ex.host.metrics.retried();
    const { host: hostname, port } = splitAddress(host.address);
    const headers = { ...spec.headers, connection: 'Upgrade', upgrade: ex.req.headers.upgrade };
    const sentAt = performance.now();
    const connector = host.upstream.connector;
    const refused = connector?.refusal();
    if (refused) { this.#failed('connect-failure', refused); return; }
    let req: ClientRequest;
    try {
      // A connector's socket (TLS or not) is this request's own, as `agent: false` makes a plain one.
      req = connector
        ? request({ host: hostname, port, method: spec.method, path: spec.path, headers, createConnection: () => connector.open('http/1.1') })
        : request({ host: hostname, port, method: spec.method, path: spec.path, headers, agent: false });
    } catch (err) {
      this.#failed('protocol', err);
      return;
    }
    this.#req = req;
    // The host counts the attempt, then the tunnel, as a request in flight (LEAST_REQUEST reads it).
    host.upstream.active++;
    let upgraded = false;
    req.once('close', () => { if (!upgraded) host.upstream.active--; });
    const connectTimer = setTimeout(() => {
      req.destroy(Object.assign(new Error(`no connection to ${host.address} within ${this.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, this.connectTimeoutMs);
    req.once('socket', (s: Socket) => s.once(connector ? connector.readyEvent(s) : 'connect', () => clearTimeout(connectTimer)));
    req.on('error', (err) => {
      clearTimeout(connectTimer);
      if (this.#req !== req) return;
      const tlsErr = upstreamTlsError(err, host.address);
      if (tlsErr) this.#failed('connect-failure', tlsErr);
      else this.#failed(classifyUpstreamError(err), err);
    });
    req.once('response', (up: IncomingMessage) => {
      clearTimeout(connectTimer);
      this.#refused(req, up, sentAt);
    });
    req.once('upgrade', (up: IncomingMessage, socket: Socket, head: Buffer) => {
      clearTimeout(connectTimer);
      upgraded = true;
      socket.once('close', () => host.upstream.active--);
      this.#upgraded(up, socket, head, sentAt);
    });
    req.end();
  }

  /** The upstream switched protocols: relay its 101 and splice. */
  #upgraded(up: IncomingMessage, upSocket: Socket, upHead: Buffer, sentAt: number): void {
    if (this.done) { upSocket.destroy(); return; }
    const { ex, res } = this;
    if (!this.#relayHead(up, sentAt, 101, { connection: 'Upgrade', upgrade: up.headers.upgrade ?? ex.req.headers.upgrade })) { upSocket.destroy(); return; }
    res.end();
    const down = res.downstream;
    if (upHead.length > 0) { ex.bytesSent += upHead.length; down.write(upHead); }
    if (res.head.length > 0) { ex.bytesReceived += res.head.length; upSocket.write(res.head); }
    splice(down, upSocket, {
      idleTimeoutMs: res.upgrades.idleTimeoutMs,
      fromA: (n) => { ex.bytesReceived += n; },
      fromB: (n) => { ex.bytesSent += n; },
    });
  }

  /** The upstream answered without switching: relay its answer, then the connection closes. */
  #refused(req: ClientRequest, up: IncomingMessage, sentAt: number): void {
    if (this.done || !this.#relayHead(up, sentAt, up.statusCode ?? 502)) { req.destroy(); return; }
    const { ex, res } = this;
    up.on('error', ignore);
    up.on('data', (c: Buffer) => { ex.bytesSent += c.length; });
    // The connection was opened for this one request.
    res.once('close', () => req.destroy());
    up.once('close', () => {
      if (up.complete) return;
      ex.flag('UC');
      ex.destroyDownstream();
    });
    up.pipe(res);
  }

  /**
   * The upstream answered: the attempts are over, and its status and headers
   * (hop-by-hop fields dropped, the route's response edits applied, then
   * `extra`) go downstream. False when they cannot be written.
   */
  #relayHead(up: IncomingMessage, sentAt: number, status: number, extra?: Headers): boolean {
    this.#req = undefined;
    this.#finish();
    const { ex, res } = this;
    ex.upstreamMs = performance.now() - sentAt;
    const h = downstreamResponseHeaders(up.headers);
    this.spec.responseEdit?.(h);
    if (extra) Object.assign(h, extra);
    try {
      res.writeHead(status, up.statusMessage, h);
      return true;
    } catch (err) {
      sendLocalReply(ex, replyFor(PROXY_ERRORS.UPSTREAM_RESET, `the upstream's ${status} cannot be relayed (${(err as Error).message})`));
      return false;
    }
  }

  #failed(f: UpstreamFailure, err: unknown): void {
    if (this.done) return;
    if (retriableFailure(this.spec.retry, f) && this.retriesLeft > 0 && !this.ex.closed) {
      this.retriesLeft--;
      this.#req = undefined;
      setTimeout(() => this.next(), backoffMs(this.spec.retry, this.spec.retry.maxRetries - this.retriesLeft));
      return;
    }
    const n = this.tried.length;
    this.#reply(replyFor(failureKind(f), `${f} (${(err as Error)?.message ?? String(err)})${n > 1 ? ` after ${n} attempts` : ''}`));
  }

  #reply(r: LocalReply): void {
    if (this.done) return;
    this.#finish();
    sendLocalReply(this.ex, r);
  }

  /** No more attempts: timers off, and an attempt still under way is dropped. */
  #finish(): void {
    this.done = true;
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    this.ex.cancel = undefined;
    const req = this.#req;
    this.#req = undefined;
    if (req && !req.destroyed) req.destroy();
  }
}
