/**
 * The HTTP/1.1 servers of the listeners, with timeouts that suit a proxy:
 * no limit on a whole request (long polls and big uploads must pass:
 * `requestTimeout: 0`), a bound on headers, and keep-alive a bit longer than
 * clients' usual idle timeouts (undici 4 s, load balancers 60 s), so that the
 * client, not the proxy, closes an idle connection.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';

/** What listen/stopListening need: an http.Server or a ProxyServer (listener-server.ts). */
export type ListeningServer = NetServer & { closeIdleConnections(): void; closeAllConnections(): void };

export const HEADERS_TIMEOUT_MS = 60_000;
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export function createProxyServer(handler: RequestListener): Server {
  const server = createServer({ requestTimeout: 0, headersTimeout: HEADERS_TIMEOUT_MS, keepAlive: true, noDelay: true }, handler);
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  return server;
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
