/**
 * The agent: the proxy's side of the control-plane stream. It registers
 * (`hello`: the instance, the data plane's listeners, the version it already
 * serves), applies every snapshot to the data plane and answers ACK or NACK
 * with the reason, reports the local app's health (optional HTTP check), and
 * reconnects with jittered exponential backoff while the data plane keeps
 * serving its last snapshot. A `refused` registration stops it for good: the
 * caller must not serve (see `onRefused`).
 *
 * Start-up: with a health check, the first check runs before hello, and
 * hello carries its result (`healthy`), so an instance whose app is not up
 * yet never enters rotation. Shutdown: `leave()` says `leaving` and resolves
 * when the control plane answers `drained` (every caller ACKed a snapshot
 * without this instance), or after a bound; the data plane keeps serving
 * meanwhile, and the caller closes it (drains) afterwards.
 */
import { request } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { Client, credentials, Metadata, type ChannelCredentials, type ClientDuplexStream } from '@grpc/grpc-js';
import type { ControlMessage, HelloMessage, ProxyMessage } from '../protocol/stream.js';
import { meshService, STREAM_CHANNEL_OPTIONS } from '../protocol/stream.js';
import { IdentityError, type IdentityClient } from './identity-client.js';
import type { DataPlane } from './types.js';

export interface AgentHealthCheck {
  /** The app's port on `host` (127.0.0.1). */
  readonly port: number;
  /** The HTTP path to GET (2xx = healthy); absent: a TCP connect to the port decides. */
  readonly path?: string;
  readonly host?: string;
  /** Time between checks; 1.5 s by default. */
  readonly intervalMs?: number;
  /** Time a check may take; 1 s by default. */
  readonly timeoutMs?: number;
  /**
   * Consecutive failed checks before a healthy app leaves rotation; 3 by
   * default, as Kubernetes readiness probes. One slow answer on a busy
   * machine does not take a single-instance subset away. The first check at
   * start decides alone, and one passing check brings an app back.
   */
  readonly failureThreshold?: number;
}

export type AgentEvent =
  | { readonly type: 'connecting'; readonly target: string; readonly attempt: number }
  | { readonly type: 'connected'; readonly target: string }
  | { readonly type: 'disconnected'; readonly reason: string; readonly retryInMs: number }
  | { readonly type: 'applied'; readonly version: string }
  | { readonly type: 'nack'; readonly version: string; readonly reason: string }
  | { readonly type: 'refused'; readonly code: string; readonly reason: string }
  | { readonly type: 'health'; readonly healthy: boolean; readonly detail?: string }
  | { readonly type: 'leaving' }
  | { readonly type: 'drained'; readonly why: LeaveResult['why']; readonly waitedMs: number; readonly pending?: readonly string[] };

/** How a leave ended: the control plane said drained (`acked`, or `timeout` on its side), the agent's own bound passed, or there was no control plane to tell. */
export interface LeaveResult {
  readonly why: 'acked' | 'timeout' | 'local-timeout' | 'disconnected';
  readonly waitedMs: number;
  /** Proxies that had not ACKed when the control plane's grace passed. */
  readonly pending?: readonly string[];
}

export interface AgentOptions {
  /** `host:port` of the control plane's gRPC server. */
  readonly controlPlane: string;
  /** The instance this proxy serves, `workload.namespace#i` or `workload.namespace`. */
  readonly instance: string;
  readonly dataPlane: DataPlane;
  readonly proxyVersion?: string;
  /** Claims sent with hello; the control plane refuses the proxy if they disagree with the configuration. */
  readonly claims?: HelloMessage['claims'];
  readonly healthCheck?: AgentHealthCheck;
  /** First reconnect delay (200 ms) and its cap (5 s); each delay is jittered by ±20 %. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** How long to wait for the control plane to accept hello before trying again; 10 s. */
  readonly helloTimeoutMs?: number;
  /**
   * The workload identity: the agent gets the first certificate before it
   * connects, the stream is mTLS with it, the data plane gets every
   * certificate and trust bundle. Without it (and without `credentials`) the
   * stream is plaintext, which a Trellis control plane refuses.
   */
  readonly identity?: IdentityClient;
  /** Explicit stream credentials (tests); otherwise from `identity`. */
  readonly credentials?: ChannelCredentials;
  readonly log?: (e: AgentEvent) => void;
  /** The registration was refused: the agent has stopped and the proxy must not serve. */
  readonly onRefused?: (code: string, reason: string) => void;
}

export interface Agent {
  /** Runs the first health check (if any), then connects; returns at once after that. */
  start(): Promise<void>;
  readonly connected: boolean;
  /** Set once the control plane refused the registration. */
  readonly refused: { readonly code: string; readonly reason: string } | undefined;
  /** The last health the check saw (undefined without a check, or before the first). */
  readonly healthy: boolean | undefined;
  /**
   * Says `leaving` (the instance leaves rotation) and resolves once the
   * control plane answers `drained`, after `timeoutMs` (7 s by default) at
   * the latest, or at once when not connected. Health checks stop and the
   * admin /ready answers 503 (the data plane is told: setLeaving). Snapshots
   * are still applied and ACKed while waiting (this proxy is a caller too).
   */
  leave(timeoutMs?: number): Promise<LeaveResult>;
  close(): Promise<void>;
}

export function createAgent(opts: AgentOptions): Agent {
  const log = opts.log ?? (() => {});
  const initial = opts.backoff?.initialMs ?? 200;
  const cap = opts.backoff?.maxMs ?? 5000;
  let client: Client | undefined;
  let call: ClientDuplexStream<ProxyMessage, ControlMessage> | undefined;
  let connected = false;
  let closed = false;
  let refused: { code: string; reason: string } | undefined;
  let healthy: boolean | undefined;
  let healthDetail: string | undefined;
  let failedChecks = 0;
  let attempt = 0;
  let failures = 0;
  let retry: NodeJS.Timeout | undefined;
  let healthTimer: NodeJS.Timeout | undefined;
  let leaving: { readonly since: number; readonly done: (r: LeaveResult) => void } | undefined;

  const setConnected = (c: boolean) => {
    if (connected === c) return;
    connected = c;
    opts.dataPlane.setControlPlaneConnected(c);
  };

  const send = (m: ProxyMessage) => {
    if (call && !call.writableEnded) call.write(m);
  };

  const sendHealth = () => {
    if (healthy !== undefined && !leaving) send({ type: 'health', healthy, ...(healthDetail ? { detail: healthDetail } : {}) });
  };

  /** The next reconnect delay: exponential from `initial`, capped, ±20 % jitter. */
  const nextDelay = () => {
    const base = Math.min(cap, initial * 2 ** Math.min(failures, 16));
    failures++;
    return Math.round(base * (0.8 + Math.random() * 0.4));
  };

  const connect = () => {
    if (closed || refused) return;
    attempt++;
    log({ type: 'connecting', target: opts.controlPlane, attempt });
    let c: ClientDuplexStream<ProxyMessage, ControlMessage>;
    try {
      client = new Client(opts.controlPlane, opts.credentials ?? opts.identity?.channelCredentials() ?? credentials.createInsecure(), { ...STREAM_CHANNEL_OPTIONS });
      c = client.makeBidiStreamRequest(meshService.stream.path, meshService.stream.requestSerialize, meshService.stream.responseDeserialize, new Metadata());
    } catch (e) {
      client?.close();
      client = undefined;
      const delay = nextDelay();
      log({ type: 'disconnected', reason: `cannot open a stream to ${opts.controlPlane}: ${(e as Error).message}`, retryInMs: delay });
      retry = setTimeout(connect, delay);
      return;
    }
    call = c;
    let over = false;
    const helloTimer = setTimeout(() => end(`no answer to hello within ${opts.helloTimeoutMs ?? 10_000} ms`), opts.helloTimeoutMs ?? 10_000);
    const end = (reason: string) => {
      if (over) return;
      over = true;
      clearTimeout(helloTimer);
      if (call === c) call = undefined;
      c.cancel();
      const ch = client;
      client = undefined;
      ch?.close();
      setConnected(false);
      if (closed || refused) return;
      const delay = nextDelay();
      log({ type: 'disconnected', reason, retryInMs: delay });
      retry = setTimeout(connect, delay);
    };
    c.on('metadata', () => {
      clearTimeout(helloTimer);
      failures = 0;
      setConnected(true);
      log({ type: 'connected', target: opts.controlPlane });
    });
    c.on('data', (m: ControlMessage) => {
      if (over) return;
      if (m.type === 'refused') {
        refused = { code: m.code, reason: m.reason };
        log({ type: 'refused', code: m.code, reason: m.reason });
        end(`refused ${m.code}`);
        opts.onRefused?.(m.code, m.reason);
        return;
      }
      if (m.type === 'drained') {
        log({ type: 'drained', why: m.why, waitedMs: m.waitedMs, ...(m.pending ? { pending: m.pending } : {}) });
        leaving?.done({ why: m.why === 'timeout' ? 'timeout' : 'acked', waitedMs: performance.now() - leaving.since, ...(m.pending ? { pending: m.pending } : {}) });
        return;
      }
      if (m.type !== 'snapshot') return;
      // A root rotation arrives as a new bundle in the snapshot: trusted for peers and for the next control-plane connection.
      if (m.snapshot.trustBundle?.length) {
        opts.identity?.setTrustBundle(m.snapshot.trustBundle);
        if (opts.identity) opts.dataPlane.setTrustBundle(m.snapshot.trustBundle);
      }
      if (opts.dataPlane.snapshot?.version === m.version) {
        send({ type: 'ack', version: m.version, nonce: m.nonce });
        return;
      }
      const r = opts.dataPlane.apply(m.snapshot);
      if (r.ok) {
        send({ type: 'ack', version: m.version, nonce: m.nonce });
        log({ type: 'applied', version: m.version });
      } else {
        send({ type: 'nack', version: m.version, nonce: m.nonce, reason: r.reason });
        log({ type: 'nack', version: m.version, reason: r.reason });
      }
    });
    c.on('error', (e: Error & { code?: number; details?: string }) => end(e.details || e.message));
    c.on('end', () => end('the control plane ended the stream'));
    c.on('status', (st: { code: number; details: string }) => { if (st.code !== 0) end(st.details || `status ${st.code}`); });

    const a = opts.dataPlane.addresses;
    const servingVersion = opts.dataPlane.snapshot?.version;
    c.write({
      type: 'hello',
      instance: opts.instance,
      proxyVersion: opts.proxyVersion ?? 'trellis',
      listeners: { inbound: a.inbound ?? '', ...(a.outbound ? { outbound: a.outbound } : {}), admin: a.admin },
      ...(opts.claims ? { claims: opts.claims } : {}),
      ...(servingVersion ? { servingVersion } : {}),
      ...(opts.healthCheck && healthy !== undefined ? { healthy } : {}),
      ...(leaving ? { leaving: true } : {}),
    });
    sendHealth();
  };

  const check = (): Promise<void> => new Promise((resolve) => {
    const hc = opts.healthCheck!;
    const done = (ok: boolean, detail?: string) => {
      if (leaving) return resolve();
      failedChecks = ok ? 0 : failedChecks + 1;
      // A healthy app stays in rotation until `failureThreshold` checks in a row failed.
      if (!ok && healthy === true && failedChecks < Math.max(1, hc.failureThreshold ?? 3)) return resolve();
      const changed = healthy !== ok;
      healthy = ok;
      healthDetail = detail;
      if (changed) {
        log({ type: 'health', healthy: ok, ...(detail ? { detail } : {}) });
        sendHealth();
      }
      resolve();
    };
    if (hc.path === undefined) {
      const sock = tcpConnect({ host: hc.host ?? '127.0.0.1', port: hc.port, timeout: hc.timeoutMs ?? 1000 });
      sock.once('connect', () => { sock.destroy(); done(true); });
      sock.once('timeout', () => { sock.destroy(); done(false, `TCP connect to port ${hc.port} took more than ${hc.timeoutMs ?? 1000} ms`); });
      sock.once('error', (e: NodeJS.ErrnoException) => done(false, `TCP connect to port ${hc.port}: ${e.code ?? e.message}`));
      return;
    }
    const req = request({ host: hc.host ?? '127.0.0.1', port: hc.port, path: hc.path, method: 'GET', timeout: hc.timeoutMs ?? 1000, agent: false }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      done(code >= 200 && code < 300, code >= 200 && code < 300 ? undefined : `GET ${hc.path} answered ${code}`);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${hc.path} took more than ${hc.timeoutMs ?? 1000} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => done(false, e.code ? `GET ${hc.path}: ${e.code}` : e.message));
    req.end();
  });

  /** The first certificate: retried with backoff while the control plane is unreachable; a refusal is final (onRefused). */
  const certified = async (identity: IdentityClient): Promise<boolean> => {
    for (;;) {
      if (closed) return false;
      try {
        await identity.start();
        return true;
      } catch (e) {
        const reason = (e as Error).message;
        if (e instanceof IdentityError && e.fatal) {
          refused = { code: 'TRL1208', reason };
          log({ type: 'refused', code: 'TRL1208', reason });
          opts.onRefused?.('TRL1208', reason);
          return false;
        }
        const delay = nextDelay();
        log({ type: 'disconnected', reason: `no certificate yet: ${reason}`, retryInMs: delay });
        await new Promise((r) => (retry = setTimeout(r, delay)));
      }
    }
  };

  const healthLoop = () => {
    if (closed || refused || leaving) return;
    void check().then(() => {
      if (closed || refused || leaving) return;
      healthTimer = setTimeout(healthLoop, opts.healthCheck!.intervalMs ?? 1500);
    });
  };

  return {
    async start() {
      if (opts.identity && !(await certified(opts.identity))) return;
      if (opts.healthCheck) {
        await check();
        healthTimer = setTimeout(healthLoop, opts.healthCheck.intervalMs ?? 1500);
      }
      connect();
    },
    get connected() {
      return connected;
    },
    get refused() {
      return refused;
    },
    get healthy() {
      return healthy;
    },
    leave(timeoutMs = 7000) {
      return new Promise<LeaveResult>((resolve) => {
        if (leaving || closed || refused) return resolve({ why: 'disconnected', waitedMs: 0 });
        const since = performance.now();
        if (healthTimer) clearTimeout(healthTimer);
        healthTimer = undefined;
        const timer = setTimeout(() => finish({ why: 'local-timeout', waitedMs: performance.now() - since }), timeoutMs);
        const finish = (r: LeaveResult) => {
          clearTimeout(timer);
          resolve(r);
        };
        leaving = { since, done: finish };
        opts.dataPlane.setLeaving();
        log({ type: 'leaving' });
        if (!connected) return finish({ why: 'disconnected', waitedMs: 0 });
        send({ type: 'leaving' });
      });
    },
    async close() {
      closed = true;
      opts.identity?.close();
      if (retry) clearTimeout(retry);
      if (healthTimer) clearTimeout(healthTimer);
      const c = call;
      call = undefined;
      if (c) {
        c.end();
        c.cancel();
      }
      client?.close();
      client = undefined;
      setConnected(false);
    },
  };
}
