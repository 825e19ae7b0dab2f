/**
 * The control plane's metrics, on a prom-client registry of its own (the
 * process's `process_*` / `nodejs_*` metrics are added to every scrape by
 * telemetry/exposition.ts): pushes, ACKs and NACKs, push latency (sent →
 * ACKed), convergence (a change → the push carrying it, and a change → the
 * last ACK of every proxy it was pushed to), registrations refused,
 * configuration reloads and errors, connected proxies by sync state, and
 * the registry's size. Counters and histograms are updated as things happen;
 * the gauges are read from the live state when /metrics is scraped.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { render, type Exposition } from '../telemetry/exposition.js';

/** Seconds: from a few milliseconds (loopback, one proxy) to tens of seconds (a big mesh, a slow proxy). */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** What the gauges read at scrape time. */
export interface ControlPlaneGauges {
  readonly connectedProxies: number;
  readonly knownProxies: number;
  readonly registeredInstances: number;
  readonly configErrors: number;
  /** Connected proxies by sync state (SYNCED, STALE, NACKED, NOT_SENT). */
  readonly proxiesBySync: Readonly<Record<string, number>>;
  readonly services: number;
  readonly workloads: number;
  readonly endpoints: number;
}

/** A change waiting for every proxy it was pushed to to ACK it. */
interface Round {
  readonly changeAt: number;
  /** Instance → nonce of the push that carried the change to it. */
  readonly pending: Map<string, string>;
}

/** Rounds followed at once; older ones are dropped (not observed) when changes come faster than proxies ACK. */
const MAX_ROUNDS = 64;

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly #pushes: Counter;
  readonly #acks: Counter;
  readonly #nacks: Counter;
  readonly #refusals: Counter;
  readonly #reloads: Counter<'result'>;
  readonly #scrapes: Counter<'result'>;
  readonly #toPush: Histogram;
  readonly #pushLatency: Histogram;
  readonly #toAcked: Histogram;
  readonly #rounds: Round[] = [];
  #current: Round | undefined;
  #gauges: () => ControlPlaneGauges = () => ({ connectedProxies: 0, knownProxies: 0, registeredInstances: 0, configErrors: 0, proxiesBySync: {}, services: 0, workloads: 0, endpoints: 0 });

  constructor() {
    const registers = [this.registry];
    this.#pushes = new Counter({ name: 'trellis_controlplane_pushes_total', help: 'Snapshots pushed to proxies.', registers });
    this.#acks = new Counter({ name: 'trellis_controlplane_acks_total', help: 'Snapshots proxies acknowledged.', registers });
    this.#nacks = new Counter({ name: 'trellis_controlplane_nacks_total', help: 'Snapshots proxies rejected (NACK).', registers });
    this.#refusals = new Counter({ name: 'trellis_controlplane_registrations_refused_total', help: 'Registrations refused (unknown instance, claims that disagree).', registers });
    this.#reloads = new Counter({ name: 'trellis_controlplane_config_reloads_total', help: 'Configuration reloads by result.', labelNames: ['result'], registers });
    this.#reloads.inc({ result: 'ok' }, 0);
    this.#reloads.inc({ result: 'rejected' }, 0);
    this.#scrapes = new Counter({ name: 'trellis_controlplane_scrapes_total', help: 'Scrapes of proxies\' /metrics for the topology, by result (ok, failed, timeout).', labelNames: ['result'], registers });
    for (const result of ['ok', 'failed', 'timeout']) this.#scrapes.inc({ result }, 0);
    this.#toPush = new Histogram({ name: 'trellis_controlplane_push_convergence_seconds', help: 'Time from a change to the push that carries it.', buckets: BUCKETS, registers });
    this.#pushLatency = new Histogram({ name: 'trellis_controlplane_push_latency_seconds', help: 'Time from a push to its acknowledgement.', buckets: BUCKETS, registers });
    this.#toAcked = new Histogram({ name: 'trellis_controlplane_convergence_seconds', help: 'Time from a change until every proxy it was pushed to has ACKed it.', buckets: BUCKETS, registers });
    const self = this;
    const live = (name: string, help: string, read: (g: ControlPlaneGauges) => number) =>
      new Gauge({ name, help, registers, collect() { this.set(read(self.#gauges())); } });
    live('trellis_controlplane_connected_proxies', 'Proxies with an open stream.', (g) => g.connectedProxies);
    live('trellis_controlplane_known_proxies', 'Proxies known, connected or not yet gone.', (g) => g.knownProxies);
    live('trellis_controlplane_registered_instances', 'Instances with a registration (in rotation or not).', (g) => g.registeredInstances);
    live('trellis_controlplane_config_errors', 'Errors in the configuration directory (rejected edits included).', (g) => g.configErrors);
    live('trellis_controlplane_registry_services', 'Services in the registry.', (g) => g.services);
    live('trellis_controlplane_registry_workloads', 'Workloads in the registry.', (g) => g.workloads);
    live('trellis_controlplane_registry_endpoints', 'Endpoints of every service port in the registry.', (g) => g.endpoints);
    new Gauge({
      name: 'trellis_controlplane_proxies', help: 'Connected proxies by sync state (SYNCED: last push ACKed; STALE: not yet; NACKED).', labelNames: ['sync'], registers,
      collect() {
        this.reset();
        for (const [sync, n] of Object.entries(self.#gauges().proxiesBySync)) this.set({ sync }, n);
      },
    });
  }

  /** Where the gauges read the live state from. */
  setGauges(read: () => ControlPlaneGauges): void {
    this.#gauges = read;
  }

  /**
   * A snapshot was pushed. `changeAtMs` is when the change it carries
   * happened (monotonic ms), when the push belongs to a round that a change
   * started; such pushes join that round's convergence.
   */
  pushed(instance: string, nonce: string, changeAtMs: number | undefined, nowMs: number): void {
    this.#pushes.inc();
    if (changeAtMs === undefined) return;
    this.#toPush.observe((nowMs - changeAtMs) / 1000);
    let r = this.#current;
    if (!r || r.changeAt !== changeAtMs) {
      r = this.#current = { changeAt: changeAtMs, pending: new Map() };
      this.#rounds.push(r);
      if (this.#rounds.length > MAX_ROUNDS) this.#rounds.shift();
    }
    r.pending.set(instance, nonce);
  }

  /** A proxy ACKed `nonce`; `latest` is the nonce last pushed to it (an ACK of it settles every earlier push too). */
  acked(instance: string, nonce: string, latest: string | undefined, pushLatencyMs: number | undefined, nowMs: number): void {
    this.#acks.inc();
    if (pushLatencyMs !== undefined) this.#pushLatency.observe(pushLatencyMs / 1000);
    for (const r of this.#rounds) {
      const n = r.pending.get(instance);
      if (n !== undefined && (n === nonce || nonce === latest)) r.pending.delete(instance);
    }
    this.#settle(nowMs);
  }

  /** A proxy NACKed: the rounds waiting for it will not converge and are not observed. */
  nacked(instance: string): void {
    this.#nacks.inc();
    this.#drop((r) => r.pending.has(instance));
  }

  /** A proxy went away: the rounds no longer wait for it. */
  gone(instance: string, nowMs: number): void {
    for (const r of this.#rounds) r.pending.delete(instance);
    this.#settle(nowMs);
  }

  refused(): void {
    this.#refusals.inc();
  }

  reloaded(ok: boolean): void {
    this.#reloads.inc({ result: ok ? 'ok' : 'rejected' });
  }

  /** One proxy scraped for the topology (topology.ts). */
  scraped(result: 'ok' | 'failed' | 'timeout'): void {
    this.#scrapes.inc({ result });
  }

  /** The exposition for a scrape (OpenMetrics when the Accept header asks for it). */
  render(accept: string | undefined): Promise<Exposition> {
    return render([this.registry], accept);
  }

  #settle(nowMs: number): void {
    for (let i = this.#rounds.length - 1; i >= 0; i--) {
      const r = this.#rounds[i]!;
      if (r.pending.size > 0) continue;
      this.#toAcked.observe((nowMs - r.changeAt) / 1000);
      this.#rounds.splice(i, 1);
      if (this.#current === r) this.#current = undefined;
    }
  }

  #drop(which: (r: Round) => boolean): void {
    for (let i = this.#rounds.length - 1; i >= 0; i--) {
      const r = this.#rounds[i]!;
      if (!which(r)) continue;
      this.#rounds.splice(i, 1);
      if (this.#current === r) this.#current = undefined;
    }
  }
}
