/**
 * The set of processes `trellis up` runs, in stop tiers: `stopAll()` stops
 * one step of `stopOrder` after the other, the processes of a step in
 * parallel. A step may be a list of tiers (`['proxy', 'app']`): then the
 * processes of one *unit* (an instance: its sidecar and its app) stop in
 * that order — the sidecar leaves rotation and drains, and only once it has
 * exited is its app stopped — while the units stop in parallel. The control
 * plane stops last, so that the proxies can leave through it.
 */
import { DEFAULT_RESTART, ManagedProcess, type ProcessEvent, type ProcessSpec, type RestartPolicy, type StopResult } from './managed-process.js';

export interface SupervisorOptions<Tier extends string> {
  /** Tiers in the order they stop; a list of tiers stops unit by unit (in parallel), each unit's processes in the list's order. */
  readonly stopOrder: readonly (Tier | readonly Tier[])[];
  readonly restart?: RestartPolicy;
  /** Every process event (spawn, exit, restart), with the process's tier. */
  readonly onEvent?: (e: ProcessEvent, tier: Tier) => void;
}

export class Supervisor<Tier extends string> {
  readonly #opts: SupervisorOptions<Tier>;
  readonly #procs: { readonly proc: ManagedProcess; readonly tier: Tier; readonly unit: string | undefined }[] = [];
  #stopped: Promise<StopResult[]> | undefined;

  constructor(opts: SupervisorOptions<Tier>) {
    this.#opts = opts;
  }

  /** Adds a process and starts it; `unit` groups the processes of one instance (see `stopOrder`). */
  start(spec: ProcessSpec, tier: Tier, unit?: string): ManagedProcess {
    if (this.#stopped) throw new Error(`the supervisor is stopping; ${spec.name} was not started`);
    if (!this.#opts.stopOrder.some((s) => s === tier || (Array.isArray(s) && s.includes(tier)))) throw new Error(`unknown tier "${tier}"`);
    const proc = new ManagedProcess(spec, this.#opts.restart ?? DEFAULT_RESTART, (e) => this.#opts.onEvent?.(e, tier));
    this.#procs.push({ proc, tier, unit });
    proc.start();
    return proc;
  }

  get processes(): readonly ManagedProcess[] {
    return this.#procs.map((p) => p.proc);
  }

  get stopping(): boolean {
    return this.#stopped !== undefined;
  }

  /**
   * Stops every process, step by step; `graceMs` is each process's bound
   * before SIGKILL (`tierGraceMs` overrides it per tier). Idempotent.
   */
  stopAll(graceMs: number, tierGraceMs: Partial<Record<Tier, number>> = {}): Promise<StopResult[]> {
    const grace = (t: Tier) => tierGraceMs[t] ?? graceMs;
    this.#stopped ??= (async () => {
      const results: StopResult[] = [];
      for (const step of this.#opts.stopOrder) {
        if (!Array.isArray(step)) {
          const tier = step as Tier;
          const inTier = this.#procs.filter((p) => p.tier === tier);
          results.push(...(await Promise.all(inTier.map((p) => p.proc.stop(grace(tier))))));
          continue;
        }
        const tiers = step as readonly Tier[];
        const units = new Map<unknown, { proc: ManagedProcess; tier: Tier }[]>();
        for (const p of this.#procs) {
          if (!tiers.includes(p.tier)) continue;
          const key = p.unit ?? p.proc; // a process without a unit is a unit of its own
          let u = units.get(key);
          if (!u) units.set(key, (u = []));
          u.push(p);
        }
        const stopUnit = async (u: { proc: ManagedProcess; tier: Tier }[]) => {
          const out: StopResult[] = [];
          for (const tier of tiers) out.push(...(await Promise.all(u.filter((p) => p.tier === tier).map((p) => p.proc.stop(grace(tier))))));
          return out;
        };
        for (const r of await Promise.all([...units.values()].map(stopUnit))) results.push(...r);
      }
      return results;
    })();
    return this.#stopped;
  }

  /** SIGKILL to every group now, synchronously: the last resort when `trellis up` itself is going down. */
  killAllSync(): void {
    for (const { proc } of this.#procs) proc.killNow();
  }
}
