/**
 * The control plane's gRPC server: the Mesh service of src/protocol/stream.ts
 * with the shared channel options (keepalive pings every 2 s, so a frozen
 * proxy is noticed within seconds), and the Certify call of
 * src/protocol/certify.ts. Credentials: TLS with the control plane's serving
 * certificate from its CA (src/controlplane/mesh-identity.ts).
 */
import { Server, ServerCredentials, status, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall } from '@grpc/grpc-js';
import type { CertifyRequest, CertifyResponse } from '../protocol/certify.js';
import type { ControlMessage, ProxyMessage } from '../protocol/stream.js';
import { meshService, STREAM_CHANNEL_OPTIONS } from '../protocol/stream.js';

export interface StreamServerOptions {
  /** Address to bind; 127.0.0.1 by default. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Insecure by default; pass TLS credentials when the CA serves them. */
  readonly credentials?: ServerCredentials;
  readonly onStream: (call: ServerDuplexStream<ProxyMessage, ControlMessage>) => void;
  /** Certificate signing; the promise's rejection message goes to the caller as PERMISSION_DENIED. */
  readonly onCertify?: (call: ServerUnaryCall<CertifyRequest, CertifyResponse>) => Promise<CertifyResponse>;
}

export interface StreamServer {
  /** `host:port` it listens on. */
  readonly address: string;
  /** Stops accepting; ends open streams after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

export async function startStreamServer(opts: StreamServerOptions): Promise<StreamServer> {
  const server = new Server({
    ...STREAM_CHANNEL_OPTIONS,
    // Accept the proxies' keepalive pings (every 2 s, also while idle).
    'grpc.http2.min_ping_interval_without_data_ms': 1000,
  });
  const certify = (call: ServerUnaryCall<CertifyRequest, CertifyResponse>, cb: sendUnaryData<CertifyResponse>) => {
    if (!opts.onCertify) { cb({ code: status.UNIMPLEMENTED, details: 'this control plane runs no CA' }); return; }
    opts.onCertify(call).then((r) => cb(null, r), (e: Error) => cb({ code: status.PERMISSION_DENIED, details: e.message }));
  };
  server.addService(meshService, { stream: opts.onStream, certify });
  const host = opts.host ?? '127.0.0.1';
  const target = host.includes(':') ? `[${host}]:${opts.port}` : `${host}:${opts.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(target, opts.credentials ?? ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return {
    address,
    close: (graceMs = 1000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
