/**
 * The HTTP/1.1 servers of the listeners, every timeout and size from the
 * proxy's limits (limits.ts) rather than Node's defaults: no bound on a whole
 * request in Node (`requestTimeout: 0`; the proxy's own request timeout is
 * request-body.ts's), the headers timeout and header size as configured, the
 * socket's timeout as the stream idle timeout while a request is in flight
 * (Node swaps in the keep-alive timeout between requests), keep-alive as long
 * as the connection idle timeout.
 *
 * Input Node's parser refuses (a malformed request line or header, a header
 * block over the limit, request smuggling: both Content-Length and
 * Transfer-Encoding, duplicated Content-Length, obs-fold, bad chunk sizes;
 * a head that did not arrive in time) gets a short plain-text answer with
 * its status (400, 431, 408) and `connection: close`, never reaches a
 * handler, and is reported through `RefusedListener` (metrics, records).
 */
import { createServer, STATUS_CODES, type IncomingMessage, type RequestListener, type Server, ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { ResponseFlag } from '../protocol/request-record.js';
import { PROXY_ERRORS, type ErrorKind } from './errors.js';
import { DEFAULT_LIMITS, type ProxyLimits } from './limits.js';
import { endForLimit, exchangeOn, ProxyResponse, streamIdle } from './request-body.js';

/** What listen/stopListening need: an http.Server or a ProxyServer (listener-server.ts). */
export type ListeningServer = NetServer & { closeIdleConnections(): void; closeAllConnections(): void };

/** Told of input refused before it became a request: the status answered (0: none could be) and why. */
export type RefusedListener = (status: number, flags: readonly ResponseFlag[], protocol: string) => void;

/** How long a refused connection may stay open for the client to read the answer. */
const REFUSAL_LINGER_MS = 2_000;

const REFUSED: unique symbol = Symbol('trellis.refused');

export function createProxyServer(
  handler: RequestListener,
  limits: ProxyLimits = DEFAULT_LIMITS,
  requestClass?: typeof IncomingMessage,
  refused?: RefusedListener,
): Server {
  const server = createServer({
    ...(requestClass ? { IncomingMessage: requestClass } : {}),
    ServerResponse: ProxyResponse as typeof ServerResponse,
    requestTimeout: 0,
    headersTimeout: limits.headersTimeoutMs,
    // Node checks the headers timeout on an interval (30 s by default): often enough for the bound to hold within a quarter of it.
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
    keepAliveTimeout: limits.idleTimeoutMs,
    maxHeaderSize: limits.maxRequestHeadersBytes,
    insecureHTTPParser: false,
    keepAlive: true,
    noDelay: true,
  }, handler);
  server.timeout = limits.streamIdleTimeoutMs;
  server.on('timeout', (socket: Socket) => {
    const ex = exchangeOn(socket);
    // No request being forwarded: an idle keep-alive connection (or one still in its handler), closed as Node would.
    if (ex) streamIdle(ex);
    else socket.destroy();
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Socket) => clientError(err, socket, limits, refused));
  return server;
}

/** The answer for a parser error, or undefined for a socket error (the client is gone). */
function refusalKind(code: string | undefined): { kind: ErrorKind; flags?: readonly ResponseFlag[] } | undefined {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW': return { kind: PROXY_ERRORS.HEADERS_TOO_LARGE };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW': return { kind: PROXY_ERRORS.BODY_TOO_LARGE, flags: ['DPE'] };
    case 'ERR_HTTP_REQUEST_TIMEOUT': return { kind: PROXY_ERRORS.HEADERS_TIMEOUT };
    default: return code?.startsWith('HPE_') ? { kind: PROXY_ERRORS.MALFORMED_REQUEST } : undefined;
  }
}

function detailOf(code: string, err: { reason?: string; message: string }, limits: ProxyLimits): string {
  if (code === 'HPE_HEADER_OVERFLOW') return `the request head is over the limit of ${limits.maxRequestHeadersBytes} bytes`;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return `the request head did not arrive within ${limits.headersTimeoutMs} ms`;
  return `${err.reason ?? err.message} (${code})`;
}

function clientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Socket & { [REFUSED]?: true }, limits: ProxyLimits, refused: RefusedListener | undefined): void {
  const code = err.code ?? '';
  const r = refusalKind(code);
  if (!r) { socket.destroy(); return; }
  // The parser stays broken: more bytes bring the same error again.
  if (socket[REFUSED]) return;
  socket[REFUSED] = true;
  const detail = detailOf(code, err, limits);
  const body = `${r.kind.message}: ${detail}\n`;
  const flags = r.kind.flag ? [r.kind.flag, ...(r.flags ?? [])] : r.flags ?? [];
  // Node's response in flight on this connection, if any (its own test in socketOnError).
  const res = (socket as { _httpMessage?: ServerResponse })._httpMessage;
  if (res && !res.req.complete) {
    // The body of the request in flight broke (a bad chunk): it fails like a request crossing a limit, and records itself.
    const ex = exchangeOn(socket);
    if (ex) { for (const f of flags) ex.flag(f); endForLimit(ex, r.kind, detail); return; }
    // Its handler has not sent it upstream yet: the answer goes on its response.
    if (res.headersSent) { socket.destroy(); return; }
    res.writeHead(r.kind.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
    return;
  }
  if (res) {
    // A pipelined request after one still being answered: that answer finishes, then the connection closes.
    refused?.(0, flags, 'HTTP/1.1');
    if (!res.headersSent) res.shouldKeepAlive = false;
    res.once('close', () => socket.destroy());
    return;
  }
  refused?.(r.kind.status, flags, 'HTTP/1.1');
  if (!socket.writable) { socket.destroy(); return; }
  socket.end(`HTTP/1.1 ${r.kind.status} ${STATUS_CODES[r.kind.status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  // The server's timeout handler destroys it if the client does not close first.
  socket.setTimeout(REFUSAL_LINGER_MS);
}

/** Listens and resolves with the port bound (port 0 picks a free one). */
export function listen(server: ListeningServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting; resolves when the server has closed (after its connections have). */
export function stopListening(server: ListeningServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
