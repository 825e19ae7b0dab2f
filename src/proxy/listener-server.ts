/**
 * A listener that speaks HTTP/1.1 and h2c (HTTP/2 with prior knowledge) on
 * one port. A plain `node:net` server accepts; the first bytes of each
 * connection are compared with the HTTP/2 connection preface
 * (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, RFC 9113 §3.4) and the socket is handed,
 * with those bytes put back, to an `http.Server` or an `http2` server
 * (`emit('connection')`; `http2.createServer` has no `allowHTTP1`). Both call
 * the same request handler: HTTP/2 requests arrive through Node's
 * compatibility API (`Http2ServerRequest` / `Http2ServerResponse`), which has
 * the shape the listeners and the forwarder use.
 */
import type { RequestListener, Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Session } from 'node:http2';
import { Server as NetServer, type Socket } from 'node:net';
import { createProxyServer, HEADERS_TIMEOUT_MS } from './http-server.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** HTTP/2 settings of the listeners: room for many concurrent gRPC streams. */
const H2_SETTINGS = { maxConcurrentStreams: 1000, enablePush: false } as const;

export class ProxyServer extends NetServer {
  readonly http1: Server;
  readonly http2: Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  /** Connections whose first bytes have not arrived yet. */
  readonly #sniffing = new Set<Socket>();

  constructor(handler: RequestListener) {
    super({ pauseOnConnect: true, noDelay: true });
    this.http1 = createProxyServer(handler);
    // An http.Server tracks its connections (closeIdleConnections, the headers timeout) from its 'listening' event;
    // this one never listens itself, so it is told.
    this.http1.emit('listening');
    this.http2 = createHttp2Server({ settings: H2_SETTINGS }, handler as unknown as Parameters<typeof createHttp2Server>[1]);
    this.http2.setTimeout(0);
    this.http2.on('session', (s: ServerHttp2Session) => {
      this.#sessions.add(s);
      s.once('close', () => this.#sessions.delete(s));
    });
    this.on('connection', (socket: Socket) => this.#sniff(socket));
  }

  #sniff(socket: Socket): void {
    let seen: Buffer | undefined;
    const timer = setTimeout(() => socket.destroy(), HEADERS_TIMEOUT_MS);
    this.#sniffing.add(socket);
    const onError = () => socket.destroy();
    const onData = (chunk: Buffer) => {
      seen = seen ? Buffer.concat([seen, chunk]) : chunk;
      const n = Math.min(seen.length, PREFACE.length);
      const h2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && seen.length < PREFACE.length) return;
      clearTimeout(timer);
      this.#sniffing.delete(socket);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.pause();
      socket.unshift(seen);
      // The http2 session reads what the socket has buffered itself; the HTTP/1.1 parser needs the socket flowing.
      if (h2) this.http2.emit('connection', socket);
      else { this.http1.emit('connection', socket); socket.resume(); }
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.once('close', () => { clearTimeout(timer); this.#sniffing.delete(socket); });
    socket.resume();
  }

  override close(cb?: (err?: Error) => void): this {
    this.http1.close();
    this.http2.close();
    return super.close(cb);
  }

  /** HTTP/1.1 connections without a request in flight, and HTTP/2 sessions (GOAWAY: streams in flight finish). */
  closeIdleConnections(): void {
    this.http1.closeIdleConnections();
    for (const s of this.#sessions) if (!s.closed) s.close();
  }

  closeAllConnections(): void {
    this.http1.closeAllConnections();
    for (const s of this.#sniffing) s.destroy();
    for (const s of this.#sessions) s.destroy();
  }
}
