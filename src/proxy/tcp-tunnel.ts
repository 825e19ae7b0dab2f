/**
 * One opaque TCP connection through the proxy: the downstream socket spliced
 * to an upstream socket (splice.ts: bytes both ways with back-pressure, a
 * half-close passed on as a half-close, a reset cutting the other), counted
 * among the data plane's requests in flight while it is open, and reported
 * when both sides have closed: a metric update and, when someone listens, a
 * request record with protocol `TCP` and the bytes of each direction.
 *
 * Between sidecars the bytes ride an HTTP/1.1 CONNECT tunnel to the peer's
 * inbound listener (DESIGN.md §4): tcp-connect.ts opens it from an upstream
 * local port (upstream-listener.ts), inbound-connect.ts answers it.
 *
 * Refusals: the outbound side can only close the client (it speaks raw
 * TCP); the inbound side answers the CONNECT with a status and a reason.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { REQUEST_CHANNEL, TCP_OPEN_CHANNEL, type RequestRecord, type ResponseFlag } from '../protocol/request-record.js';
import type { ErrorKind } from './errors.js';
import type { Direction, ExchangeHost } from './exchange.js';
import { splice } from './splice.js';

const channel = diagnostics_channel.channel(REQUEST_CHANNEL);
const openChannel = diagnostics_channel.channel(TCP_OPEN_CHANNEL);

/** The tunnels of one data plane, so that close() can cut those still open once its grace has passed. */
export class TunnelSet {
  readonly #open = new Set<Tunnel>();
  /**
   * A tunnel with no byte either way for this long is closed (both sides),
   * as Envoy's tcp_proxy `idle_timeout` (1 h by default in Istio). The data
   * plane gives its connection idle timeout (limits.ts); 0: never.
   */
  constructor(readonly idleTimeoutMs = 0) {}
  add(t: Tunnel): void { this.#open.add(t); }
  delete(t: Tunnel): void { this.#open.delete(t); }
  destroyAll(): void {
    for (const t of [...this.#open]) t.destroy();
  }
}

export class Tunnel {
  readonly startTime = Date.now();
  readonly t0 = performance.now();
  status = 0;
  flags: ResponseFlag[] | undefined;
  route: string | undefined;
  cluster: string | undefined;
  /** `address:port` the tunnel went to (the peer's inbound listener, or the local app). */
  upstream: string | undefined;
  sourceIdentity: string | undefined;
  /** Inbound: the tunnel came over mTLS, and the caller's principal. */
  mtls = false;
  peerPrincipal: string | undefined;
  destinationIdentity: string | undefined;
  /** Called once when the tunnel has ended (an endpoint's active count goes down). */
  onEnd: (() => void) | undefined;
  #up: Socket | undefined;
  #ended = false;
  /** Whether the `open` record went out (then the last record says `close`). */
  #openPublished = false;

  constructor(
    readonly direction: Direction,
    readonly downstream: Socket,
    readonly host: ExchangeHost,
    readonly set: TunnelSet,
    /** Node id of the reporting proxy. */
    readonly proxy: string,
    /** `host:port` the connection is for. */
    public authority: string,
  ) {
    host.inflight++;
    set.add(this);
    // A reset before the splice (the client gave up while an endpoint was being tried) must not go unhandled.
    downstream.on('error', () => this.flag('DC'));
  }

  flag(f: ResponseFlag): void {
    if (!this.flags) this.flags = [f];
    else if (!this.flags.includes(f)) this.flags.push(f);
  }

  /** Joins the downstream to `up` (connected; any early bytes already written) and ends when both have closed. */
  splice(up: Socket): void {
    this.#up = up;
    up.on('error', () => this.flag('UC'));
    if (openChannel.hasSubscribers) {
      openChannel.publish(this.#record('open'));
      this.#openPublished = true;
    }
    splice(this.downstream, up, { idleTimeoutMs: this.set.idleTimeoutMs, onClose: () => this.#end() });
  }

  /** Outbound: the client can only be closed. The tunnel ends at once with the kind's status and flag. */
  fail(kind: ErrorKind): void {
    this.closeClient(kind.status, kind.flag);
  }

  /** Closes the client without a splice; the record gets `status` (the peer's refusal, or the proxy's own). */
  closeClient(status: number, flag?: ResponseFlag): void {
    this.status = status;
    if (flag) this.flag(flag);
    this.downstream.destroy();
    this.#end();
  }

  /** Inbound: answers the CONNECT with a status and a plain-text reason, then closes. */
  refuse(status: number, reason: string, flag?: ResponseFlag): void {
    this.status = status;
    if (flag) this.flag(flag);
    const body = `${reason}\n`;
    const s = this.downstream;
    if (!s.destroyed) {
      s.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      // The peer may keep its side open; it has had its answer.
      s.setTimeout(1000, () => s.destroy());
      s.resume();
    }
    this.#end();
  }

  /** Cuts both sides now (the data plane is closing). */
  destroy(): void {
    this.downstream.destroy();
    this.#up?.destroy();
    if (!this.#up) this.#end();
  }

  get durationMs(): number {
    return performance.now() - this.t0;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.set.delete(this);
    this.onEnd?.();
    this.host.metrics.requestEnded(this.direction, this.status, this.flags);
    if (channel.hasSubscribers) channel.publish(this.#record(this.#openPublished ? 'close' : undefined));
    if (--this.host.inflight === 0) this.host.onIdle?.();
  }

  #record(phase: 'open' | 'close' | undefined): RequestRecord {
    // The socket of the bare stream (the other one carries the CONNECT head too): the client's outbound, the app's inbound.
    const inbound = this.direction === 'inbound';
    const raw = inbound ? this.#up : this.downstream;
    const fromClient = !raw ? 0 : inbound ? raw.bytesWritten : raw.bytesRead;
    const toClient = !raw ? 0 : inbound ? raw.bytesRead : raw.bytesWritten;
    const r: { -readonly [K in keyof RequestRecord]: RequestRecord[K] } = {
      direction: this.direction,
      proxy: this.proxy,
      requestId: '',
      method: 'CONNECT',
      authority: this.authority,
      path: '',
      protocol: 'TCP',
      status: this.status,
      responseFlags: this.flags ?? [],
      startTime: this.startTime,
      durationMs: this.durationMs,
      bytesReceived: fromClient,
      bytesSent: toClient,
    };
    if (this.route !== undefined) r.route = this.route;
    if (this.cluster !== undefined) r.cluster = this.cluster;
    if (this.upstream !== undefined) r.upstream = this.upstream;
    if (this.sourceIdentity) r.sourceIdentity = this.sourceIdentity;
    if (this.direction === 'inbound') r.mtls = this.mtls;
    if (this.peerPrincipal) r.peerPrincipal = this.peerPrincipal;
    if (this.destinationIdentity) r.destinationIdentity = this.destinationIdentity;
    if (phase) r.tcpPhase = phase;
    return Object.freeze(r);
  }
}

/** `host:port` → host (brackets of an IPv6 literal removed) and port. */
export function splitAddress(address: string): { host: string; port: number } {
  const c = address.lastIndexOf(':');
  return { host: address.slice(0, c).replace(/^\[|\]$/g, ''), port: Number(address.slice(c + 1)) };
}
