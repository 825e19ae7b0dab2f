/**
 * The data plane's surface: what the agent (control-plane client), the
 * `trellis proxy` command and tests use. Implemented by `createDataPlane` in
 * data-plane.ts. Contracts: docs/running-mesh.md.
 */
import type { Snapshot } from '../protocol/snapshot.js';
import type { ProxyLimits } from './limits.js';
import type { CertificateInfo, WorkloadCertificate } from './tls/workload-tls.js';

export type { CertificateInfo, WorkloadCertificate } from './tls/workload-tls.js';

export interface DataPlaneOptions {
  /** `sidecar` (inbound + outbound) or `gateway` (one listener per Gateway server port). */
  readonly mode: 'sidecar' | 'gateway';
  /** Address all listeners bind to; 127.0.0.1 by default. */
  readonly host?: string;
  /**
   * Where the outbound listener (the local app's calls) binds: 127.0.0.1 by
   * default, whatever `host` says. Whoever reaches it calls the mesh as this
   * workload, so it is for the local app only.
   */
  readonly outboundHost?: string;
  /** 0 (the default) picks a free port; read the real one from `addresses`. */
  readonly outboundPort?: number;
  readonly inboundPort?: number;
  readonly adminPort?: number;
  /** Sidecar: where the local app listens (127.0.0.1:appPort). */
  readonly appPort?: number;
  /** Gateway: Gateway server port → local port to listen on (0 = any). */
  readonly gatewayPorts?: Readonly<Record<number, number>>;
  /** An upgraded connection (WebSocket) with no bytes either way for this long is closed; 300000 (Envoy's stream idle timeout) by default, 0: never. */
  readonly websocketIdleTimeoutMs?: number;
  /** Limits and timeouts on what callers send to the traffic listeners; each absent one has its default (limits.ts, Envoy's). */
  readonly limits?: Partial<ProxyLimits>;
  /**
   * Sidecar: per-upstream local ports, each a listener on 127.0.0.1 (never
   * `host`: they let the local app into the mesh) for one service port: a TCP
   * service is tunnelled to the peer's inbound listener (HTTP CONNECT), an
   * HTTP one routed as a call to `host:port` (upstream-listener.ts).
   */
  readonly upstreams?: readonly UpstreamPort[];
  /** Lines for the proxy's log (an upstream port whose service is not in the snapshot); none by default. */
  readonly log?: (line: string) => void;
  /**
   * Clusters with tls mode ISTIO_MUTUAL while no certificate has been set:
   * `refuse` (the default) answers 503 UF ("this proxy has no workload
   * certificate yet"): `trellis proxy` gets its certificate before it serves.
   * `plaintext` is for data planes embedded without an identity (tests of
   * other features): ISTIO_MUTUAL clusters then speak plaintext.
   * Once `setCertificate` has been called, ISTIO_MUTUAL is always mTLS.
   */
  readonly mtlsWithoutCertificate?: 'plaintext' | 'refuse';
  /**
   * Collect the young generation when no request is in flight and it is
   * mostly full (idle-gc.ts), so that V8's own collections land in requests
   * less often. Off by default (an embedding process has garbage of its
   * own); `trellis proxy` turns it on unless `--no-idle-gc`.
   */
  readonly idleGc?: boolean;
}

/** A local port for one service port. */
export interface UpstreamPort {
  /** The service as the app would name it: `db`, `db.bank`, or its FQDN; short names are expanded in the proxy's namespace. */
  readonly host: string;
  /** The service port. */
  readonly port: number;
  /** The port on 127.0.0.1 (0 = any; read the real one from `addresses.upstreams`). */
  readonly localPort: number;
}

export interface DataPlaneAddresses {
  /** `host:port` of each listener that is open. */
  readonly outbound?: string;
  readonly inbound?: string;
  readonly admin: string;
  /** Gateway mode: server port → `host:port`. */
  readonly gateway?: Readonly<Record<number, string>>;
  /** Upstream local ports: `<host>:<port>` of the upstream → `127.0.0.1:<local port>`. */
  readonly upstreams?: Readonly<Record<string, string>>;
}

/** The result of applying a snapshot: ok, or the reason to NACK it (the previous snapshot stays). */
export type ApplyResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface DataPlane {
  /** Opens the listeners; resolves when they accept connections. */
  start(): Promise<DataPlaneAddresses>;
  /**
   * Applies a snapshot atomically: it is prepared in full (routers, matchers,
   * load balancers, pools) and only then swapped in; requests in flight
   * finish on the snapshot they started with. Never throws.
   */
  apply(snapshot: Snapshot): ApplyResult;
  /** The snapshot in force, if any. */
  readonly snapshot: Snapshot | undefined;
  readonly addresses: DataPlaneAddresses;
  /** What the agent reports for /ready and the admin page: connected to the control plane or not. */
  setControlPlaneConnected(connected: boolean): void;
  /** The instance is leaving rotation (SIGTERM): /ready answers 503 from now on while traffic is still served. */
  setLeaving(): void;
  /**
   * The workload's key and certificate chain (leaf first) for mTLS, both
   * ways: the inbound listener terminates TLS 1.3 with it and connections to
   * ISTIO_MUTUAL clusters present it. Applies to new connections; open ones
   * are never dropped (rotation). Throws an Error saying what is wrong (no
   * certificate, no spiffe:// URI SAN, a key that does not match); the
   * certificate in use then stays.
   */
  setCertificate(cert: WorkloadCertificate): void;
  /**
   * The roots a peer's chain must lead to (both directions), replacing the
   * previous bundle for new connections. Until one is set nothing verifies.
   * Throws an Error for an entry that is not a PEM certificate.
   */
  setTrustBundle(rootsPem: readonly string[]): void;
  /** The workload certificate in use (SPIFFE ID, serial, validity), if any. */
  readonly certificate: CertificateInfo | undefined;
  /** Stops accepting, lets requests in flight finish (up to `graceMs`), closes pools. */
  close(graceMs?: number): Promise<void>;
}
