/**
 * The set of processes `trellis up` runs, in stop tiers: `stopAll()` stops
 * one tier after the other (apps, then proxies, then the control plane),
 * the processes of a tier in parallel, so that nothing loses its sidecar or
 * its control plane while it is still serving.
 */
import { DEFAULT_RESTART, ManagedProcess, type ProcessEvent, type ProcessSpec, type RestartPolicy, type StopResult } from './managed-process.js';

export interface SupervisorOptions<Tier extends string> {
  /** Tiers in the order they stop. */
  readonly stopOrder: readonly Tier[];
  readonly restart?: RestartPolicy;
  /** Every process event (spawn, exit, restart), with the process's tier. */
  readonly onEvent?: (e: ProcessEvent, tier: Tier) => void;
}

export class Supervisor<Tier extends string> {
  readonly #opts: SupervisorOptions<Tier>;
  readonly #procs: { readonly proc: ManagedProcess; readonly tier: Tier }[] = [];
  #stopped: Promise<StopResult[]> | undefined;

  constructor(opts: SupervisorOptions<Tier>) {
    this.#opts = opts;
  }

  /** Adds a process and starts it. */
  start(spec: ProcessSpec, tier: Tier): ManagedProcess {
    if (this.#stopped) throw new Error(`the supervisor is stopping; ${spec.name} was not started`);
    if (!this.#opts.stopOrder.includes(tier)) throw new Error(`unknown tier "${tier}"`);
    const proc = new ManagedProcess(spec, this.#opts.restart ?? DEFAULT_RESTART, (e) => this.#opts.onEvent?.(e, tier));
    this.#procs.push({ proc, tier });
    proc.start();
    return proc;
  }

  get processes(): readonly ManagedProcess[] {
    return this.#procs.map((p) => p.proc);
  }

  get stopping(): boolean {
    return this.#stopped !== undefined;
  }

  /** Stops every process, tier by tier; `graceMs` is each process's bound before SIGKILL. Idempotent. */
  stopAll(graceMs: number): Promise<StopResult[]> {
    this.#stopped ??= (async () => {
      const results: StopResult[] = [];
      for (const tier of this.#opts.stopOrder) {
        const inTier = this.#procs.filter((p) => p.tier === tier);
        results.push(...(await Promise.all(inTier.map((p) => p.proc.stop(graceMs)))));
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
