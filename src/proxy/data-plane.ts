/**
 * The sidecar (or gateway) data plane: its listeners, the snapshot state in
 * force, the upstream pools and the admin port. `apply()` builds a new state
 * in full (applied-snapshot.ts) and swaps one reference; requests keep the
 * state they started with. Contracts: docs/running-mesh.md; the interface:
 * types.ts.
 *
 *     sidecar:  app ──▶ outbound listener ──▶ peer's inbound listener ──▶ peer app
 *               app ──▶ upstream local port ──▶ (TCP: CONNECT tunnel) peer's inbound listener
 *               peer ──▶ inbound listener ──▶ 127.0.0.1:<app port>
 *     gateway:  outside ──▶ gateway listener (per server port) ──▶ inbound listeners
 *
 * Every traffic listener takes HTTP/1.1 and h2c on its port (listener-server.ts);
 * clusters and app ports whose protocol is HTTP2 or GRPC are spoken to over
 * HTTP/2, one multiplexed session per endpoint (h2-upstream.ts).
 *
 * mTLS (src/proxy/tls/): the workload certificate and trust bundle the agent
 * sets (`setCertificate`, `setTrustBundle`) are held by one WorkloadTls. The
 * inbound listener terminates TLS 1.3 with it (and checks each port's
 * PeerAuthentication mode); connections to ISTIO_MUTUAL clusters originate
 * it, with secure naming. Plaintext stays plaintext: the local app's side,
 * gateway listeners, DISABLE clusters.
 */
import type { Socket } from 'node:net';
import type { Agent } from 'undici';
import type { Snapshot } from '../protocol/snapshot.js';
import { ProxyTelemetry, telemetryOptionsFromEnv, type TelemetryOptions } from '../telemetry/proxy-telemetry.js';
import { createAdminServer } from './admin-server.js';
import { buildAppliedSnapshot, type AppliedSnapshot } from './applied-snapshot.js';
import type { ExchangeHost, ListenerContext } from './exchange.js';
import { gatewayHandler } from './gateway-listener.js';
import { listen, stopListening, type ListeningServer } from './http-server.js';
import { inboundHandler } from './inbound-listener.js';
import { ProxyServer } from './listener-server.js';
import { resolveLimits } from './limits.js';
import { ProxyMetrics } from './metrics.js';
import { outlierStoreFor } from './outlier.js';
import { RateLimitRuntime } from './ratelimit/runtime.js';
import { outboundHandler, refuseConnect } from './outbound-listener.js';
import type { ApplyResult, DataPlane, DataPlaneAddresses, DataPlaneOptions } from './types.js';
import { hostPort, passthroughAgent, UpstreamPools } from './upstream-pools.js';
import { inboundConnect } from './inbound-connect.js';
import { TunnelSet } from './tcp-tunnel.js';
import { UpstreamListener } from './upstream-listener.js';
import { acceptExpectContinue } from './expect-continue.js';
import { DEFAULT_WEBSOCKET_IDLE_MS, Upgrades } from './upgrade.js';
import { tlsObserver } from './tls/tls-events.js';
import { WorkloadTls } from './tls/workload-tls.js';
import { sharedIdleScavenger } from './idle-gc.js';

export type { DataPlane, DataPlaneOptions, DataPlaneAddresses, ApplyResult } from './types.js';

/** How long close() lets requests in flight finish when no grace is given. */
export const DEFAULT_GRACE_MS = 5_000;

interface Listener {
  readonly kind: 'outbound' | 'inbound' | 'gateway' | 'admin' | 'upstream';
  readonly server: ListeningServer;
  readonly port: number;
  /** Gateway: the Gateway server port this listener serves. */
  readonly serverPort?: number;
  /** Upstream local port: `<host>:<port>` of the upstream. */
  readonly upstream?: string;
}

/** Telemetry settings (metrics, access log); from the environment when absent (src/telemetry/proxy-telemetry.ts). */
export interface DataPlaneTelemetryOptions {
  readonly telemetry?: TelemetryOptions;
}

/** Names of this machine a passthrough request may use to reach the proxy's own listeners. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '0.0.0.0', '::', '::ffff:127.0.0.1']);

export function createDataPlane(opts: DataPlaneOptions & DataPlaneTelemetryOptions): DataPlane {
  const bind = opts.host ?? '127.0.0.1';
  const outboundBind = opts.outboundHost ?? '127.0.0.1';
  const telemetry = new ProxyTelemetry({ ...(opts.telemetry ?? telemetryOptionsFromEnv(process.env)), ...(opts.log ? { log: opts.log } : {}) });
  const workload = new WorkloadTls();
  const metrics = new ProxyMetrics(telemetry.registry, () => ({ activeRequests: exchanges.inflight, upstreamPools: pools.size, snapshotVersion: state?.snapshot.version, certificate: workload.certificate, outliers: outlierStoreFor(pools).stats(), idleCollections: scavenger?.collections }));
  const tls = { workload, observer: tlsObserver(metrics, workload) };
  const pools = new UpstreamPools({ ...tls, withoutCertificate: opts.mtlsWithoutCertificate ?? 'refuse' });
  const scavenger = opts.idleGc ? sharedIdleScavenger() : null;
  /** close() waiting for the last request in flight. */
  let drained: (() => void) | undefined;
  const exchanges: ExchangeHost = { metrics, inflight: 0, closing: false, onIdle: () => { scavenger?.idle(); drained?.(); } };
  scavenger?.watch(exchanges);
  const rateLimits = new RateLimitRuntime(metrics);
  let state: AppliedSnapshot | undefined;
  let agent: Agent | undefined;
  let started: Promise<DataPlaneAddresses> | undefined;
  let listening = false;
  let closed = false;
  let leaving = false;
  let addresses: DataPlaneAddresses = { admin: '' };

  const ctx: ListenerContext = {
    current: () => state,
    host: exchanges,
    passthrough: () => (agent ??= passthroughAgent(state?.snapshot.mesh.connectTimeoutMs ?? 10_000)),
    isOwnAddress: (host, port) => ownPorts.has(port) && (LOCAL_HOSTS.has(host) || host === bind || host === outboundBind),
  };
  /** The ports the listeners bound (after start). */
  const ownPorts = new Set<number>();

  /** Opaque TCP connections (both directions), cut by close() after the grace. */
  const listeners: Listener[] = [];
  const limits = resolveLimits(opts.limits);
  const tunnels = new TunnelSet(limits.idleTimeoutMs);
  if (opts.mode === 'sidecar') {
    const outbound = new ProxyServer(outboundHandler(ctx), { direction: 'outbound', limits, ctx });
    outbound.http1.on('connect', refuseConnect);
    listeners.push({ kind: 'outbound', server: outbound, port: opts.outboundPort ?? 0 });
    const inbound = new ProxyServer(inboundHandler(ctx), { direction: 'inbound', limits, ctx, tls });
    // Opaque TCP from peers' sidecars arrives as CONNECT <service>:<port> (inbound-connect.ts).
    inbound.http1.on('connect', inboundConnect(ctx, tunnels));
    listeners.push({ kind: 'inbound', server: inbound, port: opts.inboundPort ?? 0 });
    for (const u of opts.upstreams ?? []) {
      const server = new UpstreamListener(ctx, u, tunnels, opts.log, limits);
      listeners.push({ kind: 'upstream', server, port: u.localPort, upstream: server.name });
    }
  } else {
    for (const [serverPort, local] of Object.entries(opts.gatewayPorts ?? {})) {
      const sp = Number(serverPort);
      listeners.push({ kind: 'gateway', server: new ProxyServer(gatewayHandler(ctx, sp), { direction: 'gateway', limits, ctx }), port: local, serverPort: sp });
    }
  }
  /** WebSocket (HTTP/1.1 Upgrade) connections of every listener (upgrade.ts), cut by close() after the grace. */
  const upgrades = new Upgrades(opts.websocketIdleTimeoutMs ?? DEFAULT_WEBSOCKET_IDLE_MS);
  for (const l of listeners) {
    const kind = l.kind === 'upstream' ? 'outbound' : l.kind;
    if (kind === 'admin') continue;
    // Upgrades and `Expect: 100-continue` go through the listener's request handler like any request.
    const http = l.server instanceof UpstreamListener ? l.server.http : l.server instanceof ProxyServer ? l.server : undefined;
    if (http) { upgrades.accept(http.http1); acceptExpectContinue(http); }
    l.server.on('connection', (socket: Socket) => {
      metrics.connectionOpened(kind);
      socket.once('close', () => metrics.connectionClosed(kind));
    });
  }
  const admin = createAdminServer({
    telemetry,
    certificate: () => workload.certificate,
    trustBundle: () => workload.roots,
    snapshot: () => state?.snapshot,
    outliers: () => outlierStoreFor(pools).stats(),
    notReady: () => (closed ? 'the proxy is shutting down' : leaving ? 'leaving rotation (shutting down)' : !listening ? 'the listeners are not up yet' : !state ? 'no snapshot applied yet' : undefined),
  });
  listeners.push({ kind: 'admin', server: admin, port: opts.adminPort ?? 0 });

  async function start(): Promise<DataPlaneAddresses> {
    // Upstream local ports let the local app into the mesh: loopback only, whatever `host` says; the outbound listener
    // likewise (--outbound-host to change it): whoever reaches it calls the mesh as this workload.
    const bound = await Promise.all(listeners.map(async (l) => ({
      l,
      port: await listen(l.server, l.upstream ? '127.0.0.1' : l.kind === 'outbound' ? outboundBind : bind, l.port).catch((e: Error) => {
        throw l.upstream ? new Error(`local port ${l.port} for upstream ${l.upstream}: ${e.message}`, { cause: e }) : e;
      }),
    })));
    for (const { port } of bound) ownPorts.add(port);
    const at = (port: number) => hostPort(bind, port);
    const gateway: Record<number, string> = {};
    let outbound: string | undefined;
    let inbound: string | undefined;
    let adminAt = '';
    const upstreams: Record<string, string> = {};
    for (const { l, port } of bound) {
      if (l.upstream) upstreams[l.upstream] = hostPort('127.0.0.1', port);
      else if (l.kind === 'outbound') outbound = hostPort(outboundBind, port);
      else if (l.kind === 'inbound') inbound = at(port);
      else if (l.kind === 'admin') adminAt = at(port);
      else gateway[l.serverPort!] = at(port);
    }
    addresses = Object.freeze({
      admin: adminAt,
      ...(outbound ? { outbound } : {}),
      ...(inbound ? { inbound } : {}),
      ...(opts.mode === 'gateway' ? { gateway: Object.freeze(gateway) } : {}),
      ...(opts.upstreams?.length ? { upstreams: Object.freeze(upstreams) } : {}),
    });
    listening = true;
    return addresses;
  }

  function apply(snapshot: Snapshot): ApplyResult {
    if (closed) return { ok: false, reason: 'the data plane is closed' };
    try {
      const next = buildAppliedSnapshot(snapshot, { mode: opts.mode, pools, appPort: opts.appPort, rateLimits });
      const prev = state;
      state = next;
      prev?.retire();
      metrics.snapshotApplied();
      telemetry.snapshotApplied(snapshot);
      return { ok: true };
    } catch (err) {
      metrics.snapshotRejected();
      return { ok: false, reason: (err as Error)?.message ?? String(err) };
    }
  }

  async function close(graceMs = DEFAULT_GRACE_MS): Promise<void> {
    if (closed) return;
    closed = true;
    exchanges.closing = true;
    // Traffic listeners stop first; the admin port stays up while requests drain (/ready says 503, shutting down).
    const traffic = listeners.filter((l) => l.kind !== 'admin');
    const stopped = traffic.map((l) => stopListening(l.server));
    if (exchanges.inflight > 0) {
      await new Promise<void>((resolve) => {
        const finish = () => { clearTimeout(timer); clearInterval(tick); resolve(); };
        const timer = setTimeout(finish, graceMs);
        // Connections that go idle after their last response are closed as they do.
        const tick = setInterval(() => { for (const l of traffic) l.server.closeIdleConnections(); }, 50);
        drained = finish;
      });
    }
    drained = undefined;
    scavenger?.unwatch(exchanges);
    for (const l of traffic) l.server.closeAllConnections();
    tunnels.destroyAll();
    upgrades.destroyAll();
    await Promise.all(stopped);
    admin.closeAllConnections();
    await stopListening(admin);
    state?.retire();
    outlierStoreFor(pools).stopAll();
    await pools.destroy();
    rateLimits.close();
    await agent?.destroy().catch(() => undefined);
    await telemetry.close();
  }

  return {
    start: () => (started ??= start()),
    apply,
    get snapshot() { return state?.snapshot; },
    get addresses() { return addresses; },
    setControlPlaneConnected: (connected) => metrics.setControlPlaneConnected(connected),
    setLeaving: () => { leaving = true; },
    setCertificate: (cert) => workload.setCertificate(cert),
    setTrustBundle: (roots) => workload.setTrustBundle(roots),
    get certificate() { return workload.certificate; },
    close,
  } satisfies DataPlane;
}
