/**
 * What the control plane does with each proxy's messages: registration
 * (hello → session + live instance), ACK / NACK bookkeeping, health, and the
 * life after a stream closes (out of rotation at once, forgotten after
 * `goneAfterMs`). Every change to the mesh schedules a push round.
 */
import { diagnostic, type Diagnostic } from '../api/diagnostic.js';
import type { AckMessage, HealthMessage, HelloMessage, LeavingMessage, NackMessage } from '../protocol/stream.js';
import { parseHostPort } from '../registry/live.js';
import type { ControlPlaneEvent } from './events.js';
import type { MeshState } from './mesh-state.js';
import type { ControlPlaneMetrics } from './metrics.js';
import { syncState, type ProxySession, type ProxySessions, type SessionStream } from './proxy-sessions.js';
import type { Pusher } from './push.js';
import { findInstance, register } from './registration.js';
import type { StartupGrace } from './startup-grace.js';
import type { StreamHub } from './stream-handler.js';

export interface ProxyHubDeps {
  readonly state: MeshState;
  readonly sessions: ProxySessions;
  readonly metrics: ControlPlaneMetrics;
  readonly pusher: () => Pusher;
  readonly grace: () => StartupGrace | undefined;
  readonly goneAfterMs: number;
  /** How long a leaving instance waits for the callers' ACKs before it is told `drained` anyway; 5 s. */
  readonly leaveGraceMs?: number;
  readonly log: (e: ControlPlaneEvent) => void;
  /** Called when the set of known instances changes (to persist it). */
  readonly onInstancesChanged: () => void;
}

export class ProxyHub implements StreamHub<ProxySession> {
  readonly #d: ProxyHubDeps;
  readonly #goneTimers = new Map<string, NodeJS.Timeout>();
  /** Instances connected but no longer declared: no pushes until they are again. */
  readonly #withdrawn = new Set<string>();
  /** Leaving instances waiting for `drained`: their session and the grace timer. */
  readonly #departures = new Map<string, { readonly session: ProxySession; readonly timer: NodeJS.Timeout }>();

  constructor(deps: ProxyHubDeps) {
    this.#d = deps;
  }

  isWithdrawn(instance: string): boolean {
    return this.#withdrawn.has(instance);
  }

  hello(m: HelloMessage, stream: SessionStream, _peer?: string, peerIdentities?: readonly string[]): { ok: true; session: ProxySession } | { ok: false; refusal: Diagnostic } {
    const { state, sessions } = this.#d;
    const r = register(m, state.registry);
    if (!r.ok) return r;
    // mTLS: the client certificate must be the instance's own identity (an insecure server passes undefined).
    if (peerIdentities !== undefined && !peerIdentities.includes(r.workload.identity)) {
      return { ok: false, refusal: diagnostic('PeerIdentityMismatch', { instance: r.instance, presented: peerIdentities.join(', ') || 'no certificate', configured: r.workload.identity }, { resource: r.workload.source }) };
    }
    const old = sessions.get(r.instance);
    if (old?.connected && old.stream) {
      const d = diagnostic('DuplicateInstance', { instance: r.instance, listeners: m.listeners.inbound || '-' });
      old.stream.send({ type: 'refused', code: d.code, reason: d.message });
      old.stream.end();
    }
    let kind: ProxySession['kind'] = 'sidecar';
    try {
      kind = state.node(r.workload).kind;
    } catch {
      /* resolvable by construction; keep the default */
    }
    const healthy = m.healthy !== false;
    const s = sessions.open({
      instance: r.instance, workload: r.workload, kind, listeners: m.listeners, stream, healthy,
      ...(m.servingVersion ? { servingVersion: m.servingVersion } : {}), now: Date.now(),
    });
    if (old) this.#endDeparture(old);
    const gone = this.#goneTimers.get(r.instance);
    if (gone) clearTimeout(gone);
    this.#goneTimers.delete(r.instance);
    this.#withdrawn.delete(r.instance);
    const inbound = parseHostPort(m.listeners.inbound);
    if (inbound) state.setLive(r.instance, { ...inbound, healthy: healthy && m.leaving !== true });
    else state.setLive(r.instance, undefined);
    this.#d.log({ type: 'proxy-connected', instance: r.instance, inbound: m.listeners.inbound, reconnect: old !== undefined, ...(m.servingVersion ? { servingVersion: m.servingVersion } : {}) });
    this.#d.grace()?.registered(r.instance);
    this.#d.onInstancesChanged();
    this.#d.pusher().schedule('joined');
    if (m.leaving === true) this.leaving(s, { type: 'leaving', detail: 'reconnected while leaving' });
    return { ok: true, session: s };
  }

  ack(s: ProxySession, m: AckMessage): void {
    if (!s.connected) return;
    s.lastAckedVersion = m.version;
    let latencyMs: number | undefined;
    const now = performance.now();
    if (m.nonce === s.lastPushedNonce) {
      if (s.lastPushedAt !== undefined) latencyMs = now - s.lastPushedAt;
      s.nack = undefined;
    }
    this.#d.metrics.acked(s.instance, m.nonce, s.lastPushedNonce, latencyMs, now);
    this.#d.log({ type: 'ack', instance: s.instance, version: m.version, ...(latencyMs !== undefined ? { latencyMs } : {}) });
    this.checkDepartures();
  }

  nack(s: ProxySession, m: NackMessage): void {
    if (!s.connected) return;
    this.#d.metrics.nacked(s.instance);
    const reason = String(m.reason ?? 'no reason given');
    s.nack = { version: m.version, reason };
    this.#d.log({ type: 'nack', instance: s.instance, version: m.version, reason: diagnostic('SnapshotRejected', { instance: s.instance, version: m.version, reason }).message });
  }

  health(s: ProxySession, m: HealthMessage): void {
    if (!s.connected) return;
    const healthy = m.healthy === true;
    if (s.healthy === healthy) return;
    s.healthy = healthy;
    this.#d.log({ type: 'health', instance: s.instance, healthy, ...(m.detail ? { detail: m.detail } : {}) });
    if (s.leaving) return; // a leaving instance stays out of rotation whatever its app says
    const live = this.#d.state.live(s.instance);
    if (live && this.#d.state.setLive(s.instance, { ...live, healthy })) this.#d.pusher().schedule('health');
  }

  /**
   * The proxy is shutting down: out of rotation now, a push round at once,
   * and `drained` when every other connected proxy has ACKed a snapshot
   * without it (or after the leave grace).
   */
  leaving(s: ProxySession, m: LeavingMessage): void {
    if (!s.connected || s.leaving) return;
    s.leaving = { since: performance.now(), drained: false };
    this.#d.log({ type: 'leaving', instance: s.instance, ...(m.detail ? { detail: String(m.detail) } : {}) });
    const timer = setTimeout(() => this.#drain(s, 'timeout'), this.#d.leaveGraceMs ?? 5000);
    timer.unref();
    this.#departures.set(s.instance, { session: s, timer });
    const live = this.#d.state.live(s.instance);
    const pusher = this.#d.pusher();
    if (live && this.#d.state.setLive(s.instance, { ...live, healthy: false })) {
      pusher.schedule('leaving');
      pusher.flush(); // callers should stop picking it now, not after the debounce
    } else {
      this.checkDepartures();
    }
  }

  /** Tells every leaving instance whose callers are all SYNCED (and no push round is pending) that it is drained. */
  checkDepartures(): void {
    if (this.#departures.size === 0 || this.#d.pusher().pending) return;
    for (const { session } of [...this.#departures.values()]) {
      if (this.#pending(session).length === 0) this.#drain(session, 'acked');
    }
  }

  /** The connected proxies (but the leaver) not SYNCED on their current snapshot. */
  #pending(leaver: ProxySession): string[] {
    return this.#d.sessions.connected().filter((o) => o !== leaver && syncState(o) !== 'SYNCED').map((o) => o.instance);
  }

  #drain(s: ProxySession, why: 'acked' | 'timeout'): void {
    const d = this.#departures.get(s.instance);
    if (!d || d.session !== s) return;
    this.#endDeparture(s);
    if (!s.connected || !s.stream || !s.leaving) return;
    s.leaving.drained = true;
    const waitedMs = performance.now() - s.leaving.since;
    const pending = why === 'timeout' ? this.#pending(s) : [];
    this.#d.log({ type: 'drained', instance: s.instance, why, waitedMs, pending });
    s.stream.send({ type: 'drained', why, waitedMs: Math.round(waitedMs), ...(why === 'timeout' ? { pending } : {}) });
  }

  #endDeparture(s: ProxySession): void {
    const d = this.#departures.get(s.instance);
    if (!d || d.session !== s) return;
    clearTimeout(d.timer);
    this.#departures.delete(s.instance);
  }

  closed(s: ProxySession): void {
    const { state, sessions } = this.#d;
    this.#endDeparture(s);
    if (!sessions.close(s.instance, s.generation, Date.now())) return;
    queueMicrotask(() => this.checkDepartures()); // a caller that went away no longer counts
    this.#d.metrics.gone(s.instance, performance.now());
    this.#d.log({ type: 'proxy-disconnected', instance: s.instance });
    const live = state.live(s.instance);
    if (live && state.setLive(s.instance, { ...live, healthy: false })) this.#d.pusher().schedule('left');
    const timer = setTimeout(() => {
      this.#goneTimers.delete(s.instance);
      if (!sessions.forget(s.instance, s.generation)) return;
      this.#withdrawn.delete(s.instance);
      this.#d.log({ type: 'proxy-gone', instance: s.instance });
      if (state.setLive(s.instance, undefined)) this.#d.pusher().schedule('gone');
      this.#d.onInstancesChanged();
    }, this.#d.goneAfterMs);
    timer.unref();
    this.#goneTimers.set(s.instance, timer);
  }

  refused(refusal: Diagnostic, peer: string, instance: string | undefined): void {
    this.#d.metrics.refused();
    this.#d.log({ type: 'refused', peer, code: refusal.code, reason: refusal.message, ...(instance ? { instance } : {}) });
  }

  /**
   * After a configuration change: each session's workload is looked up
   * again; an instance the configuration no longer declares is withdrawn
   * (no pushes, reported once) until it is declared again.
   */
  refreshSessions(): void {
    const { state, sessions } = this.#d;
    const registry = state.registry;
    for (const s of sessions.all()) {
      const found = findInstance(registry, s.instance);
      if (!found) {
        if (!this.#withdrawn.has(s.instance) && s.connected) {
          this.#withdrawn.add(s.instance);
          this.#d.log({ type: 'withdrawn', instance: s.instance, message: diagnostic('InstanceWithdrawn', { instance: s.instance }).message });
        }
        continue;
      }
      this.#withdrawn.delete(s.instance);
      if (found.workload !== s.workload) {
        s.workload = found.workload;
        try {
          s.kind = state.node(found.workload).kind;
        } catch {
          /* keep the kind it had */
        }
      }
    }
  }

  close(): void {
    for (const t of this.#goneTimers.values()) clearTimeout(t);
    this.#goneTimers.clear();
    for (const d of this.#departures.values()) clearTimeout(d.timer);
    this.#departures.clear();
  }
}
