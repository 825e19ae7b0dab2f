/**
 * The admin port: `GET /ready` (200 once the listeners are up and a snapshot
 * is applied, else 503 with the reason), `GET /config_dump`
 * (`{version, snapshot}` of the snapshot in force), `GET /metrics`
 * (the data plane's prom-client registry: Istio's service metrics, the
 * proxy's own and the process's; Prometheus text, or OpenMetrics when the
 * Accept header asks for it; `?filter=<regex>`, as Envoy's
 * /stats/prometheus takes it: only the families whose name it matches), `GET /certs` (the workload certificate in use
 * and the trust bundle, see `CertsStatus`), `GET /clusters` (outlier
 * detection per cluster: hosts, those ejected now and why, ejections so far;
 * `{clusters: OutlierClusterStats[]}`). Contract: docs/running-mesh.md.
 */
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fingerprintOfRoot } from '../ca/cert-info.js';
import type { Snapshot } from '../protocol/snapshot.js';
import type { ProxyTelemetry } from '../telemetry/proxy-telemetry.js';
import { createProxyServer } from './http-server.js';
import type { CertificateInfo } from './tls/workload-tls.js';
import type { OutlierClusterStats } from './outlier.js';

export interface AdminSource {
  readonly telemetry: ProxyTelemetry;
  snapshot(): Snapshot | undefined;
  /** Why the proxy is not ready, or undefined when it is. */
  notReady(): string | undefined;
  /** The workload certificate in use (`DataPlane.certificate`); absent or undefined: none. */
  certificate?(): CertificateInfo | undefined;
  /** The PEM roots peers are verified against (the data plane's trust bundle); absent: none. */
  trustBundle?(): readonly string[];
  /** Outlier state of the clusters that detect outliers (`outlierStoreFor(pools).stats()`); absent: none. */
  outliers?(): readonly OutlierClusterStats[];
}

/** One root of the trust bundle, as `/certs` shows it. */
export interface TrustRootStatus {
  /** sha256 of the DER, lowercase hex: the root hash join tokens carry. */
  readonly sha256: string;
  /** The root's subject on one line (`O=Trellis, CN=…`). */
  readonly subject: string;
  /** ISO 8601. */
  readonly notAfter: string;
}

/** The body of `GET /certs`. Without a workload certificate its fields are null; the bundle is listed either way. */
export interface CertsStatus {
  /** The SPIFFE ID the proxy presents. */
  readonly identity: string | null;
  /** Hex, upper case. */
  readonly serial: string | null;
  /** ISO 8601. */
  readonly notBefore: string | null;
  readonly notAfter: string | null;
  /** Whole seconds from now until notAfter (negative once expired); the gauge trellis_proxy_certificate_expiry_seconds. */
  readonly expiresInSeconds: number | null;
  readonly trustBundle: readonly TrustRootStatus[];
}

/** Roots parsed once per bundle (the data plane replaces its frozen list when the bundle changes). */
const rootsMemo = new WeakMap<readonly string[], readonly TrustRootStatus[]>();

function rootsOf(bundle: readonly string[]): readonly TrustRootStatus[] {
  let out = rootsMemo.get(bundle);
  if (!out) {
    out = bundle.map((pem) => {
      const c = new X509Certificate(pem);
      return { sha256: fingerprintOfRoot(pem), subject: c.subject.split('\n').join(', '), notAfter: new Date(c.validTo).toISOString() };
    });
    rootsMemo.set(bundle, out);
  }
  return out;
}

/** What `/certs` answers for a certificate and bundle, at `now` (epoch ms). */
export function certsStatus(cert: CertificateInfo | undefined, bundle: readonly string[], now = Date.now()): CertsStatus {
  const trustBundle = rootsOf(bundle);
  if (!cert) return { identity: null, serial: null, notBefore: null, notAfter: null, expiresInSeconds: null, trustBundle };
  const notAfter = Date.parse(cert.notAfter);
  return {
    identity: cert.spiffeId,
    serial: cert.serial,
    notBefore: new Date(cert.notBefore).toISOString(),
    notAfter: new Date(notAfter).toISOString(),
    expiresInSeconds: Math.floor((notAfter - now) / 1000),
    trustBundle,
  };
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
        const query = new URLSearchParams((req.url ?? '').slice(path!.length + 1));
        const f = query.get('filter');
        let filter: RegExp | undefined;
        try {
          filter = f === null || f === '' ? undefined : new RegExp(f);
        } catch (err) {
          send(res, 400, 'text/plain; charset=utf-8', `filter: not a regular expression (${(err as Error).message})\n`);
          return;
        }
        src.telemetry.render(req.headers.accept, filter).then(
          (m) => send(res, 200, m.contentType, m.body),
          (err: Error) => send(res, 500, 'text/plain; charset=utf-8', `metrics failed: ${err?.message ?? err}\n`),
        );
        return;
      }
      case '/certs': {
        let body: string;
        try {
          body = JSON.stringify(certsStatus(src.certificate?.(), src.trustBundle?.() ?? []));
        } catch (err) {
          send(res, 500, 'text/plain; charset=utf-8', `certs failed: ${(err as Error)?.message ?? err}\n`);
          return;
        }
        send(res, 200, 'application/json', body);
        return;
      }
      case '/clusters':
        send(res, 200, 'application/json', JSON.stringify({ clusters: src.outliers?.() ?? [] }));
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'admin endpoints: /ready /config_dump /metrics /certs /clusters\n');
    }
  });
}
