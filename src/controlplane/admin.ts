/**
 * The admin API (docs/running-mesh.md), HTTP and JSON:
 * `/ready`, `/services`, `/endpoints`, `/proxies`, `/config/errors`,
 * `/config/files` (the text of the files in force) and `/registry` (services,
 * workloads, endpoints and namespaces as the registry holds them, dump.ts), which
 * `trellis analyze --live` reads,
 * `/api/topology` (topology.ts), `/metrics` in Prometheus text
 * (OpenMetrics when asked), and the CA: `GET /ca` (roots, which root each
 * instance's certificate came from), `POST /ca/rotate` (a new root signs,
 * old and new are trusted), `POST /ca/finish-rotation` (drop the old roots;
 * refused with 409 while a connected proxy still holds an old-root
 * certificate, unless `?force=true`). The admin port binds to loopback by
 * default: whoever reaches it can do this.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Diagnostic } from '../api/diagnostic.js';
import type { ProxyListeners } from '../protocol/stream.js';
import { registryDump } from '../registry/dump.js';
import type { Registry } from '../registry/types.js';
import type { Exposition } from '../telemetry/exposition.js';
import { syncState, type ProxySession, type SyncState } from './proxy-sessions.js';

export interface AdminSource {
  /** True once the first configuration loaded. */
  ready(): boolean;
  registry(): Registry;
  sessions(): readonly ProxySession[];
  configErrors(): readonly Diagnostic[];
  /** The text of the configuration files in force (`/config/files`), for `trellis analyze --live`. */
  configFiles?(): readonly { readonly file: string; readonly text: string }[];
  /** The exposition for a scrape, in the format the Accept header asks for. */
  metrics(accept: string | undefined): Promise<Exposition>;
  /** `/api/topology?window=…`: status and JSON body (topology.ts `topologyAnswer`). */
  topology(window: string | null): { status: number; body: unknown };
  /** The CA: `GET /ca`, `POST /ca/rotate`, `POST /ca/finish-rotation[?force=true]`. */
  ca?(): CaAdmin;
}

/** What the admin API may do with the CA. Answers are JSON bodies with their status. */
export interface CaAdmin {
  status(): unknown;
  rotate(): Promise<{ status: number; body: unknown }>;
  finishRotation(force: boolean): Promise<{ status: number; body: unknown }>;
}

export interface ServiceRow {
  readonly hostname: string;
  readonly namespace: string;
  readonly ports: readonly { readonly name: string; readonly port: number; readonly protocol: string }[];
}

export interface EndpointRow {
  readonly service: string;
  readonly port: number;
  readonly instance: string;
  /** `address:port` traffic goes to, or null while the instance has not registered. */
  readonly address: string | null;
  readonly healthy: boolean;
}

export interface ProxyRow {
  readonly instance: string;
  readonly workload: string;
  readonly namespace: string;
  readonly kind: 'sidecar' | 'gateway';
  readonly identity: string;
  readonly connected: boolean;
  readonly lastPushedVersion: string | null;
  readonly lastAckedVersion: string | null;
  readonly sync: SyncState;
  readonly nackReason?: string;
  /** Set once the proxy said it is leaving: WAITING for the callers' ACKs, then DRAINED. */
  readonly leaving?: 'WAITING' | 'DRAINED';
  readonly listeners: ProxyListeners;
}

export function serviceRows(r: Registry): ServiceRow[] {
  return r.services().map((s) => ({ hostname: s.hostname, namespace: s.namespace, ports: s.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })) }));
}

export function endpointRows(r: Registry): EndpointRow[] {
  const out: EndpointRow[] = [];
  for (const s of r.services()) {
    for (const p of s.ports) {
      for (const e of r.endpoints(s.hostname, p.port)) {
        const address = e.address === undefined ? null : `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}`;
        out.push({ service: s.hostname, port: p.port, instance: e.instance, address, healthy: address !== null && (e.health === 'HEALTHY' || e.health === 'UNKNOWN') });
      }
    }
  }
  return out;
}

export function proxyRows(sessions: readonly ProxySession[]): ProxyRow[] {
  return sessions.map((s) => ({
    instance: s.instance,
    workload: s.workload.name,
    namespace: s.workload.namespace,
    kind: s.kind,
    identity: s.workload.identity,
    connected: s.connected,
    lastPushedVersion: s.lastPushedVersion ?? null,
    lastAckedVersion: s.lastAckedVersion ?? null,
    sync: syncState(s),
    ...(s.nack ? { nackReason: s.nack.reason } : {}),
    ...(s.leaving ? { leaving: s.leaving.drained ? 'DRAINED' as const : 'WAITING' as const } : {}),
    listeners: s.listeners,
  }));
}

export interface AdminServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startAdminServer(src: AdminSource, opts: { host?: string; port: number }): Promise<AdminServer> {
  const server: Server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body, null, 2) + '\n');
    };
    try {
      if (req.method === 'POST' && (path === '/ca/rotate' || path === '/ca/finish-rotation')) {
        const ca = src.ca?.();
        if (!ca) return json(404, { error: 'this control plane runs no CA' });
        const force = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('force') === 'true';
        const a = path === '/ca/rotate' ? await ca.rotate() : await ca.finishRotation(force);
        return json(a.status, a.body);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'only GET (and POST /ca/rotate, /ca/finish-rotation)' });
      switch (path) {
        case '/ca': {
          const ca = src.ca?.();
          return ca ? json(200, ca.status()) : json(404, { error: 'this control plane runs no CA' });
        }
        case '/ready':
          return src.ready() ? json(200, { ready: true }) : json(503, { ready: false, reason: 'no configuration loaded yet' });
        case '/services':
          return json(200, serviceRows(src.registry()));
        case '/endpoints':
          return json(200, endpointRows(src.registry()));
        case '/proxies':
          return json(200, proxyRows(src.sessions()));
        case '/config/errors':
          return json(200, src.configErrors().map((d) => ({
            code: d.code, level: d.level, message: d.message, resource: d.resource ?? null, position: d.position ?? null, field: d.field ?? null,
          })));
        case '/config/files':
          return json(200, { files: src.configFiles?.() ?? [] });
        case '/registry':
          return json(200, registryDump(src.registry()));
        case '/api/topology': {
          const a = src.topology(new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('window'));
          return json(a.status, a.body);
        }
        case '/metrics': {
          const m = await src.metrics(req.headers.accept);
          res.writeHead(200, { 'content-type': m.contentType });
          return res.end(m.body);
        }
        default:
          return json(404, { error: `no such page ${path}`, pages: ['/ready', '/services', '/endpoints', '/proxies', '/config/errors', '/config/files', '/registry', '/api/topology', '/metrics', '/ca'] });
      }
    } catch (e) {
      return json(500, { error: (e as Error).message });
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
