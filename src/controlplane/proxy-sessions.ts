/**
 * What the control plane knows about each proxy, by instance: its stream
 * (while connected), where it listens, its health, and the push bookkeeping
 * (last pushed version and nonce, last acked version, NACK reason) from
 * which its sync state follows. A record outlives its stream until
 * `gone-after`, so /proxies shows a proxy that dropped off.
 */
import type { ControlMessage, ProxyListeners } from '../protocol/stream.js';
import type { Workload } from '../registry/types.js';

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED';

/** The stream a session speaks on: send a message, or end it. */
export interface SessionStream {
  send(m: ControlMessage): void;
  end(): void;
}

export interface ProxySession {
  readonly instance: string;
  /** The configured workload (refreshed when the configuration changes). */
  workload: Workload;
  kind: 'sidecar' | 'gateway';
  listeners: ProxyListeners;
  /** Stream generation: increases with each registration of the instance. */
  generation: number;
  stream: SessionStream | undefined;
  connected: boolean;
  /** Last health report: from hello's `healthy` (true when absent), then each `health` message. */
  healthy: boolean;
  /** Set once the proxy said it is leaving (shutting down): out of rotation for the rest of its stream. */
  leaving: { readonly since: number; drained: boolean } | undefined;
  /** The snapshot version the proxy said it serves when it registered. */
  servingVersion: string | undefined;
  lastPushedVersion: string | undefined;
  lastPushedNonce: string | undefined;
  /** When the last push was sent (ms, monotonic), for push latency. */
  lastPushedAt: number | undefined;
  lastAckedVersion: string | undefined;
  /** Set when the last push was NACKed. */
  nack: { readonly version: string; readonly reason: string } | undefined;
  connectedAt: number;
  disconnectedAt: number | undefined;
}

/** SYNCED: last push acked; STALE: a push not acked yet, or not connected; NACKED: the last push was refused. */
export function syncState(s: ProxySession): SyncState {
  if (s.nack && s.nack.version === s.lastPushedVersion) return 'NACKED';
  if (!s.connected || s.lastPushedVersion === undefined || s.lastAckedVersion !== s.lastPushedVersion) return 'STALE';
  return 'SYNCED';
}

export class ProxySessions {
  readonly #byInstance = new Map<string, ProxySession>();

  get(instance: string): ProxySession | undefined {
    return this.#byInstance.get(instance);
  }

  /** Every session, connected or not, sorted by instance. */
  all(): ProxySession[] {
    return [...this.#byInstance.values()].sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  }

  connected(): ProxySession[] {
    return this.all().filter((s) => s.connected);
  }

  /**
   * Records a registration. A reconnecting instance keeps its record, but its
   * push state starts over: it gets the full current snapshot.
   */
  open(init: { instance: string; workload: Workload; kind: ProxySession['kind']; listeners: ProxyListeners; stream: SessionStream; servingVersion?: string; healthy?: boolean; now: number }): ProxySession {
    const old = this.#byInstance.get(init.instance);
    const s: ProxySession = {
      instance: init.instance,
      workload: init.workload,
      kind: init.kind,
      listeners: init.listeners,
      generation: (old?.generation ?? 0) + 1,
      stream: init.stream,
      connected: true,
      healthy: init.healthy ?? true,
      leaving: undefined,
      servingVersion: init.servingVersion,
      lastPushedVersion: undefined,
      lastPushedNonce: undefined,
      lastPushedAt: undefined,
      lastAckedVersion: undefined,
      nack: undefined,
      connectedAt: init.now,
      disconnectedAt: undefined,
    };
    this.#byInstance.set(init.instance, s);
    return s;
  }

  /** Marks the stream of generation `generation` closed; false when a newer stream replaced it already. */
  close(instance: string, generation: number, now: number): boolean {
    const s = this.#byInstance.get(instance);
    if (!s || s.generation !== generation || !s.connected) return false;
    s.connected = false;
    s.stream = undefined;
    s.disconnectedAt = now;
    return true;
  }

  /** Forgets a disconnected instance (after gone-after); false when it reconnected meanwhile. */
  forget(instance: string, generation: number): boolean {
    const s = this.#byInstance.get(instance);
    if (!s || s.generation !== generation || s.connected) return false;
    this.#byInstance.delete(instance);
    return true;
  }
}
