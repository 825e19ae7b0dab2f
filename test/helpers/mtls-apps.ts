/**
 * Apps and raw clients for the mTLS tests: an echo app that also answers
 * WebSocket upgrades, an h2c app, a TCP echo app, and raw clients that talk
 * to an inbound listener directly (plaintext, or TLS with a chosen client
 * certificate) to see what the listener does with callers outside the mesh.
 */
import { createServer as createH2Server } from 'node:http2';
import type { IncomingMessage, Server } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { WebSocketServer } from 'ws';
import { startApp, type App } from './proxy.js';

/** The echo app (helpers/proxy.ts) that also echoes WebSocket messages (after a `hello <app>` greeting). */
export async function startWsEchoApp(name: string): Promise<App> {
  const app = await startApp(name);
  const wss = new WebSocketServer({ noServer: true });
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(`hello ${name}`);
      ws.on('message', (data: Buffer, binary) => ws.send(data, { binary }));
    });
  });
  const closeHttp = app.close;
  return Object.assign(app, {
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await closeHttp();
    },
  });
}

/** An h2c app answering `h2 <app> <path>`. */
export async function startH2App(name: string): Promise<App> {
  const server = createH2Server((req, res) => {
    app.hits++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`h2 ${name} ${req.url}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const app: App = {
    name, hits: 0, port: (server.address() as AddressInfo).port, server: server as unknown as Server,
    close: () => new Promise((r) => server.close(() => r())),
  };
  return app;
}

/** A raw TCP app that echoes every byte (each connection counts as a hit). */
export async function startTcpEchoApp(name: string): Promise<App> {
  const open = new Set<Socket>();
  const server = createTcpServer((s) => {
    app.hits++;
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const app: App = {
    name, hits: 0, port: (server.address() as AddressInfo).port, server: server as unknown as Server,
    close: () => new Promise((r) => { for (const s of open) s.destroy(); server.close(() => r()); }),
  };
  return app;
}

/** What a raw client saw: the bytes it got before the connection closed, and whether TLS was set up. */
export interface RawResult {
  readonly text: string;
  readonly secured: boolean;
  readonly error: string | undefined;
}

/** One HTTP/1.1 request written raw (no keep-alive) to `address`, read until the connection closes. */
export function rawRequest(address: string, host: string, tls?: ConnectionOptions, path = '/'): Promise<RawResult> {
  const [h, p] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    let text = '';
    let secured = false;
    let error: string | undefined;
    const req = `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`;
    const s = tls
      ? tlsConnect({ host: h, port: p, checkServerIdentity: () => undefined, ...tls }, () => { secured = true; s.write(req); })
      : connect({ host: h, port: p }, () => s.write(req));
    const timer = setTimeout(() => s.destroy(), 5_000);
    s.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    s.on('error', (e: Error & { code?: string }) => { error = e.code ?? e.message; });
    s.once('close', () => { clearTimeout(timer); resolve({ text, secured, error }); });
  });
}
