/**
 * The control plane: configuration directory (watched) → store (last good per
 * file) → registry (configuration + live instances) → one compiler → pushes
 * over the gRPC stream; registration; the admin API. Contracts:
 * docs/running-mesh.md.
 *
 * ```ts
 * const cp = createControlPlane({ config: 'examples/bank', grpcPort: 0, adminPort: 0 });
 * const { grpc, admin } = await cp.start();
 * …
 * await cp.close();
 * ```
 */
import { ConfigSet } from '../api/config-set.js';
import { meshSettings } from '../compile/mesh.js';
import { jwksSources } from '../compile/request-authentication.js';
import type { Diagnostic } from '../api/diagnostic.js';
import { startAdminServer, type AdminServer } from './admin.js';
import type { ConfigUpdate } from './config-store.js';
import { watchConfig, type ConfigWatcher } from './config-watcher.js';
import type { ControlPlaneEvent } from './events.js';
import { CertifyRefused, MeshIdentity, type CaFiles } from './mesh-identity.js';
import { createJwksCache } from './jwks-cache.js';
import { MeshState } from './mesh-state.js';
import { ControlPlaneMetrics } from './metrics.js';
import { ProxyHub } from './proxy-hub.js';
import { ProxySessions, syncState, type ProxySession } from './proxy-sessions.js';
import { Pusher } from './push.js';
import { declaredInstances, findInstance } from './registration.js';
import { startStreamServer, type StreamServer } from './server.js';
import { StartupGrace } from './startup-grace.js';
import { readState, writeState } from './state-file.js';
import { handleStream } from './stream-handler.js';
import { Topology, topologyAnswer } from './topology.js';

export interface ControlPlaneOptions {
  /** The configuration directory (or file), watched. */
  readonly config: string;
  /** Address the gRPC server binds to; 127.0.0.1 by default. */
  readonly host?: string;
  /**
   * Address the admin API binds to: 127.0.0.1 by default, whatever `host`
   * says. It is unauthenticated and can rotate the CA.
   */
  readonly adminHost?: string;
  /** 15010 by default; 0 picks a free port. */
  readonly grpcPort?: number;
  /** 15014 by default; 0 picks a free port. */
  readonly adminPort?: number;
  /** How long a started control plane waits for the expected instances to register before pushing to proxies that serve a snapshot; 10 s. */
  readonly registrationGraceMs?: number;
  /** How long an instance whose stream closed stays known (out of rotation) before it is forgotten; 30 s. */
  readonly goneAfterMs?: number;
  /** How long a leaving instance waits for every connected proxy to ACK a snapshot without it before it is told `drained` anyway; 5 s. */
  readonly leaveGraceMs?: number;
  /** How often the topology scrapes every connected proxy's /metrics (`/api/topology`); 5 s, 0 = off. */
  readonly scrapeIntervalMs?: number;
  /** Where to keep the registered instances across restarts (`control-plane.json`); none by default. */
  readonly stateDir?: string;
  /** Debounce of changes before a push round; 100 ms. */
  readonly debounceMs?: number;
  /** Interval of the configuration directory scan; 250 ms. */
  readonly pollMs?: number;
  /** A plugged-in CA root or intermediate; by default the CA lives in the state dir (made on first start). */
  readonly caFiles?: CaFiles;
  /** Lifetime of workload certificates; 24 h by default. */
  readonly workloadCertTtlMs?: number;
  /** Names (IPs or DNS) the control plane's serving certificate carries besides 127.0.0.1 and localhost: the addresses proxies dial. */
  readonly serverNames?: readonly string[];
  /** Extra roots (PEM) trusted for https `jwksUri`s, besides Node's (private issuers, tests). */
  readonly jwksCa?: string | readonly string[];
  /** Receives one event per thing worth logging. */
  readonly log?: (e: ControlPlaneEvent) => void;
  /** File names in messages are relative to this directory; the process's cwd by default. */
  readonly cwd?: string;
}

export interface ControlPlane {
  /** Loads the configuration, opens the gRPC and admin servers; resolves with their `host:port`. */
  start(): Promise<{ grpc: string; admin: string }>;
  /** Ends every stream, closes the servers and the watcher. */
  close(): Promise<void>;
  /** The configuration in force. */
  readonly config: ConfigSet;
  /** Diagnostics shown at /config/errors: the configuration in force, the registry, and rejected edits. */
  configErrors(): readonly Diagnostic[];
  /** Every proxy known (connected or not yet gone). */
  sessions(): readonly ProxySession[];
  /** Reloads the configuration now (without waiting for the watcher). */
  reload(): void;
  /** Whether start-up grace still holds pushes back. */
  readonly inGrace: boolean;
  /** The CA, join tokens and serving certificate (after start). */
  readonly identity: MeshIdentity;
  /** A one-time join token for a declared instance; throws when the configuration does not declare it. */
  mintJoinToken(instance: string, ttlMs?: number): string;
}

export function createControlPlane(opts: ControlPlaneOptions): ControlPlane {
  const log = opts.log ?? (() => {});
  const metrics = new ControlPlaneMetrics();
  const sessions = new ProxySessions();
  const state = new MeshState(ConfigSet.of([]));
  let rejected: readonly Diagnostic[] = [];
  let loaded = false;
  let grace: StartupGrace | undefined;
  let watcher: ConfigWatcher | undefined;
  let grpc: StreamServer | undefined;
  let admin: AdminServer | undefined;
  let identity: MeshIdentity | undefined;
  let closed = false;
  const topology = new Topology({
    intervalMs: opts.scrapeIntervalMs ?? 5000,
    targets: () => sessions.connected().flatMap((s) => (s.listeners.admin ? [{ instance: s.instance, admin: s.listeners.admin }] : [])),
    registry: () => state.registry,
    onScrape: (result) => metrics.scraped(result),
  });

  // The registered instances are written to the state dir at most every 200 ms (and on close).
  let persistTimer: NodeJS.Timeout | undefined;
  const writeNow = () => {
    if (persistTimer) clearTimeout(persistTimer);
    persistTimer = undefined;
    const err = writeState(opts.stateDir, sessions.all().map((s) => s.instance));
    if (err) log({ type: 'error', message: `cannot write state in ${opts.stateDir}: ${err.message}` });
  };
  const persist = () => {
    if (!opts.stateDir || persistTimer) return;
    persistTimer = setTimeout(writeNow, 200);
    persistTimer.unref();
  };
  metrics.setGauges(() => {
    const connected = sessions.connected();
    const bySync: Record<string, number> = { SYNCED: 0, STALE: 0, NACKED: 0 };
    for (const s of connected) bySync[syncState(s)] = (bySync[syncState(s)] ?? 0) + 1;
    const reg = state.registry;
    let endpoints = 0;
    for (const svc of reg.services()) for (const p of svc.ports) endpoints += reg.endpoints(svc.hostname, p.port).length;
    return {
      connectedProxies: connected.length,
      knownProxies: sessions.all().length,
      registeredInstances: sessions.all().length,
      configErrors: configErrors().filter((d) => d.level === 'error').length,
      proxiesBySync: bySync,
      services: reg.services().length,
      workloads: reg.workloads().length,
      endpoints,
    };
  });
  const hub: ProxyHub = new ProxyHub({
    state, sessions, metrics, goneAfterMs: opts.goneAfterMs ?? 30_000, leaveGraceMs: opts.leaveGraceMs ?? 5000, log,
    pusher: () => pusher, grace: () => grace, onInstancesChanged: persist,
  });
  const lastError = new Map<string, string>();
  const pusher: Pusher = new Pusher({
    sessions,
    debounceMs: opts.debounceMs ?? 100,
    snapshotFor: (s) => state.snapshot(s.workload),
    held: (s) => hub.isWithdrawn(s.instance) || (grace?.active === true && s.servingVersion !== undefined),
    beforeRound: () => hub.refreshSessions(),
    afterRound: () => hub.checkDepartures(),
    onPush: (s, snap, nonce, reason, changeAt) => {
      metrics.pushed(s.instance, nonce, changeAt, s.lastPushedAt ?? performance.now());
      lastError.delete(s.instance);
      log({ type: 'push', instance: s.instance, version: snap.version, reason });
    },
    onError: (s, e) => {
      const message = (e as Error).message ?? String(e);
      if (lastError.get(s.instance) === message) return;
      lastError.set(s.instance, message);
      log({ type: 'error', instance: s.instance, message: `cannot compile its snapshot: ${message}` });
    },
  });

  // RequestAuthentication keys: fetched here (proxies need no way out), inlined into snapshots.
  const jwks = createJwksCache({
    onChange: () => {
      state.setJwks(jwks.entries());
      pusher.schedule('jwks');
    },
    log: (message) => log({ type: 'error', message: `JWKS: ${message}` }),
    ...(opts.jwksCa ? { ca: opts.jwksCa } : {}),
  });

  const onUpdate = (u: ConfigUpdate) => {
    rejected = u.rejected;
    if (u.rejected.length) {
      metrics.reloaded(false);
      log({ type: 'config-rejected', diagnostics: u.rejected, files: [...new Set(u.rejectedFiles)] });
    } else {
      metrics.reloaded(true);
    }
    if (u.changed || !loaded) {
      state.setConfig(u.config);
      jwks.sync(jwksSources(u.config));
      state.setJwks(jwks.entries());
      const files = new Set(u.config.resources.map((r) => r.position.file)).size;
      log({ type: 'config-loaded', resources: u.config.resources.length, files });
      grace?.retain(new Set(declaredInstances(state.registry)));
      pusher.schedule('config');
    }
    loaded = true;
  };

  const configErrors = (): Diagnostic[] => [...state.config.diagnostics, ...state.registryDiagnostics, ...rejected];

  const startGrace = () => {
    const declared = declaredInstances(state.registry, (w) => w.kind === 'App');
    const previous = readState(opts.stateDir);
    const expected = previous ? previous.instances.filter((i) => declared.includes(i)) : declared;
    const graceMs = opts.registrationGraceMs ?? 10_000;
    grace = new StartupGrace({
      expected,
      graceMs,
      onEnd: (why, missing) => {
        log({ type: 'grace', state: 'ended', why, missing });
        pusher.schedule('grace-ended');
      },
    });
    if (grace.active) log({ type: 'grace', state: 'waiting', missing: grace.missing, graceMs });
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    pusher.close();
    grace?.close();
    watcher?.close();
    hub.close();
    if (persistTimer) writeNow();
    for (const s of sessions.connected()) s.stream?.end();
    await Promise.all([grpc?.close(), admin?.close(), topology.close(), jwks.close()]);
    identity?.close();
  };

  return {
    async start() {
      watcher = watchConfig({
        path: opts.config,
        onUpdate,
        ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
        ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      });
      watcher.start();
      startGrace();
      try {
        const trustDomain = meshSettings(state.config).trustDomain;
        const id = (identity = await MeshIdentity.create({
          trustDomain,
          ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
          ...(opts.caFiles ? { caFiles: opts.caFiles } : {}),
          ...(opts.workloadCertTtlMs !== undefined ? { workloadCertTtlMs: opts.workloadCertTtlMs } : {}),
          serverNames: [...(opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? [opts.host] : []), ...(opts.serverNames ?? [])],
        }));
        state.setTrustBundle(id.trustBundle());
        log({ type: 'ca', source: opts.caFiles ? 'files' : id.ephemeral ? 'ephemeral' : 'state-dir', trustDomain: id.trustDomain, rootFingerprint: id.ca.rootFingerprint });
        grpc = await startStreamServer({
          host: opts.host ?? '127.0.0.1',
          port: opts.grpcPort ?? 15010,
          credentials: id.serverCredentials(),
          onStream: (call) => handleStream(call, hub, undefined, (c) => id.peerIdentities(c.getAuthContext()?.sslPeerCertificate)),
          onCertify: async (call) => {
            const req = call.request;
            const peer = call.getPeer();
            const presented = id.peerIdentities(call.getAuthContext()?.sslPeerCertificate);
            const found = typeof req?.instance === 'string' ? findInstance(state.registry, req.instance) : undefined;
            try {
              const r = await id.certify(req, found?.workload.identity, presented, found?.workload.labels);
              log({ type: 'certified', instance: req.instance, identity: r.identity, notAfter: r.notAfter, via: presented.length ? 'certificate' : 'join-token', peer });
              return r;
            } catch (e) {
              const reason = e instanceof CertifyRefused ? e.message : `internal error: ${(e as Error).message}`;
              log({ type: 'certify-refused', instance: String(req?.instance ?? ''), peer, reason });
              throw new Error(reason);
            }
          },
        });
        admin = await startAdminServer({
          ready: () => loaded,
          registry: () => state.registry,
          sessions: () => sessions.all(),
          configErrors,
          configFiles: () => watcher?.sources() ?? [],
          metrics: (accept) => metrics.render(accept),
          topology: (window) => topologyAnswer(topology, window),
          ca: () => ({
            status: () => id.status(),
            rotate: async () => {
              if (!id.ca.managed) return { status: 409, body: { error: 'the CA was plugged in from files (--ca-cert): rotate it by restarting with the new files' } };
              const st = await id.rotateRoot();
              state.setTrustBundle(id.trustBundle());
              pusher.schedule('trust-bundle');
              log({ type: 'ca', source: 'state-dir', trustDomain: id.trustDomain, rootFingerprint: id.ca.rootFingerprint });
              return { status: 200, body: st };
            },
            finishRotation: async (force) => {
              const r = await id.finishRotation(sessions.connected().map((x) => x.instance), force);
              if (!r.ok) return { status: 409, body: { error: `${r.pending.length} connected proxies still hold a certificate from an old root; they renew at half life (or retry with ?force=true)`, pending: r.pending } };
              state.setTrustBundle(id.trustBundle());
              pusher.schedule('trust-bundle');
              return { status: 200, body: r.status };
            },
          }),
        }, { host: opts.adminHost ?? '127.0.0.1', port: opts.adminPort ?? 15014 });
      } catch (e) {
        await close();
        throw e;
      }
      topology.start();
      log({ type: 'listening', grpc: grpc.address, admin: admin.address });
      return { grpc: grpc.address, admin: admin.address };
    },
    close,
    get config() {
      return state.config;
    },
    configErrors,
    sessions: () => sessions.all(),
    reload: () => {
      watcher?.reload();
    },
    get inGrace() {
      return grace?.active === true;
    },
    get identity() {
      if (!identity) throw new Error('the control plane has not started');
      return identity;
    },
    mintJoinToken(instance, ttlMs) {
      if (!identity) throw new Error('the control plane has not started');
      const found = findInstance(state.registry, instance);
      if (!found) throw new Error(`the configuration declares no instance "${instance}"`);
      const w = found.workload;
      const locality = [w.locality.region, w.locality.zone, w.locality.subzone].join('/').replace(/\/+$/, '');
      return identity.mintJoinToken({ instance, identity: w.identity, labels: w.labels, serviceAccount: w.serviceAccount, ...(locality ? { locality } : {}) }, ttlMs);
    },
  };
}
