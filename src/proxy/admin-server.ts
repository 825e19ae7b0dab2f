/**
 * The admin port: `GET /ready` (200 once the listeners are up and a snapshot
 * is applied, else 503 with the reason), `GET /config_dump`
 * (`{version, snapshot}` of the snapshot in force), `GET /metrics`
 * (the data plane's prom-client registry: Istio's service metrics, the
 * proxy's own and the process's; Prometheus text, or OpenMetrics when the
 * Accept header asks for it). Contract: docs/running-mesh.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Snapshot } from '../protocol/snapshot.js';
import type { ProxyTelemetry } from '../telemetry/proxy-telemetry.js';
import { createProxyServer } from './http-server.js';

export interface AdminSource {
  readonly telemetry: ProxyTelemetry;
  snapshot(): Snapshot | undefined;
  /** Why the proxy is not ready, or undefined when it is. */
  notReady(): string | undefined;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export function createAdminServer(src: AdminSource) {
  return createProxyServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') { send(res, 405, 'text/plain; charset=utf-8', 'only GET\n'); return; }
    switch (path) {
      case '/ready': {
        const why = src.notReady();
        send(res, why ? 503 : 200, 'text/plain; charset=utf-8', why ? `not ready: ${why}\n` : 'ready\n');
        return;
      }
      case '/config_dump': {
        const s = src.snapshot();
        send(res, 200, 'application/json', JSON.stringify({ version: s?.version ?? null, snapshot: s ?? null }));
        return;
      }
      case '/metrics': {
        src.telemetry.render(req.headers.accept).then(
          (m) => send(res, 200, m.contentType, m.body),
          (err: Error) => send(res, 500, 'text/plain; charset=utf-8', `metrics failed: ${err?.message ?? err}\n`),
        );
        return;
      }
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'admin endpoints: /ready /config_dump /metrics\n');
    }
  });
}
