/**
 * One supervised child: started in its own process group with stdout and
 * stderr appended to its log file, restarted with exponential backoff when
 * it exits, stopped with SIGTERM to its group and SIGKILL after a bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { groupMembers, signalGroup, waitGroupGone } from './process-group.js';

/** What to run. */
export interface ProcessSpec {
  /** Name in messages (`accounts-v1.bank#0 app`, `control-plane`). */
  readonly name: string;
  /** argv (run without a shell), or a string run by `/bin/sh -c`. */
  readonly command: string | readonly string[];
  readonly cwd: string;
  /** The complete environment of the child. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** stdout and stderr are appended here (the directory is created). */
  readonly logFile: string;
  /**
   * Runs after an exit, once the restart delay has passed, before the next
   * start (e.g. until the sidecar has taken a crashed app out of rotation).
   * It should bound itself; the process starts when it settles.
   */
  readonly beforeRestart?: () => Promise<unknown>;
}

/** When to start again after an exit. The delay doubles per exit in a row, from `initialDelayMs` up to `maxDelayMs`. */
export interface RestartPolicy {
  /** Delay before the first restart; 250 ms by default. */
  readonly initialDelayMs: number;
  /** The cap; 10 s by default. */
  readonly maxDelayMs: number;
  /** A run at least this long counts as healthy: the next delay starts from `initialDelayMs` again; 10 s by default. */
  readonly resetAfterMs: number;
}

export const DEFAULT_RESTART: RestartPolicy = Object.freeze({ initialDelayMs: 250, maxDelayMs: 10_000, resetAfterMs: 10_000 });

/** What happened to a supervised process, for the progress display and the log. */
export type ProcessEvent =
  | { readonly type: 'spawn'; readonly name: string; readonly pid: number; readonly start: number }
  | { readonly type: 'exit'; readonly name: string; readonly pid: number; readonly code: number | null; readonly signal: string | null; readonly uptimeMs: number }
  | { readonly type: 'spawn-error'; readonly name: string; readonly error: string }
  | { readonly type: 'restart'; readonly name: string; readonly delayMs: number; readonly restarts: number };

/** How a stop went: `SIGTERM` (the group left in time), `SIGKILL` (it did not), `none` (nothing was running). */
export interface StopResult {
  readonly name: string;
  readonly pid?: number;
  readonly by: 'SIGTERM' | 'SIGKILL' | 'none';
  readonly ms: number;
  /** PIDs of the group still alive after SIGKILL (should never happen; reported, not hidden). */
  readonly survivors: readonly number[];
}

export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly #policy: RestartPolicy;
  readonly #onEvent: (e: ProcessEvent) => void;
  #child: ChildProcess | undefined;
  #pgid: number | undefined;
  #startedAt = 0;
  #starts = 0;
  #restarts = 0;
  #failuresInARow = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  #exited: Promise<void> = Promise.resolve();

  constructor(spec: ProcessSpec, policy: RestartPolicy = DEFAULT_RESTART, onEvent: (e: ProcessEvent) => void = () => {}) {
    this.spec = spec;
    this.#policy = policy;
    this.#onEvent = onEvent;
  }

  /** PID (= process group id) of the current run; undefined between runs. */
  get pid(): number | undefined {
    return this.#child ? this.#pgid : undefined;
  }
  /** How many times it was started again after an exit. */
  get restarts(): number {
    return this.#restarts;
  }
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the first run. */
  start(): void {
    if (this.#stopping || this.#child || this.#timer) return;
    this.#spawn();
  }

  #spawn(): void {
    this.#timer = undefined;
    const { name, command, cwd, env, logFile } = this.spec;
    mkdirSync(dirname(logFile), { recursive: true });
    const start = ++this.#starts;
    const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : [...command];
    appendFileSync(logFile, `--- trellis up: start #${start} of ${name} at ${new Date().toISOString()}: ${argv.map(quote).join(' ')}\n`);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { cwd, env: env as NodeJS.ProcessEnv, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    let done!: () => void;
    this.#exited = new Promise<void>((r) => (done = r));
    let settled = false;
    const finish = (code: number | null, signal: string | null, error?: Error) => {
      if (settled) return;
      settled = true;
      const pid = this.#pgid;
      this.#child = undefined;
      const uptimeMs = Date.now() - this.#startedAt;
      if (error) {
        appendFileSync(logFile, `--- trellis up: could not start ${name}: ${error.message}\n`);
        this.#onEvent({ type: 'spawn-error', name, error: error.message });
      } else {
        // The group may outlive its leader (a shell's children): nothing of this run may linger into the
        // next. While stopping, stop() gives the rest of the group its grace period instead.
        if (pid !== undefined && !this.#stopping) signalGroup(pid, 'SIGKILL');
        appendFileSync(logFile, `--- trellis up: ${name} exited (${signal ? `signal ${signal}` : `code ${code}`}) after ${(uptimeMs / 1000).toFixed(1)}s\n`);
        this.#onEvent({ type: 'exit', name, pid: pid ?? 0, code, signal, uptimeMs });
      }
      done();
      if (!this.#stopping) this.#scheduleRestart(error ? 0 : uptimeMs);
    };
    child.once('error', (e) => finish(null, null, e));
    child.once('exit', (code, signal) => finish(code, signal));
    if (child.pid === undefined) return; // 'error' follows
    this.#child = child;
    this.#pgid = child.pid;
    this.#startedAt = Date.now();
    this.#onEvent({ type: 'spawn', name, pid: child.pid, start });
  }

  #scheduleRestart(uptimeMs: number): void {
    if (uptimeMs >= this.#policy.resetAfterMs) this.#failuresInARow = 0;
    const delayMs = Math.min(this.#policy.maxDelayMs, this.#policy.initialDelayMs * 2 ** this.#failuresInARow);
    this.#failuresInARow++;
    this.#restarts++;
    this.#onEvent({ type: 'restart', name: this.spec.name, delayMs, restarts: this.#restarts });
    this.#timer = setTimeout(() => {
      const gate = this.spec.beforeRestart;
      if (!gate) return this.#spawn();
      // Stays "scheduled" while the gate runs, so stop() cancels the restart.
      this.#timer = setTimeout(() => {}, 1 << 30);
      const timer = this.#timer;
      void gate().catch(() => undefined).then(() => {
        if (this.#stopping || this.#timer !== timer) return;
        clearTimeout(timer);
        this.#spawn();
      });
    }, delayMs);
  }

  /**
   * Stops for good: no more restarts; SIGTERM to the process group, SIGKILL
   * to it when it is still there after `graceMs`.
   */
  async stop(graceMs: number): Promise<StopResult> {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const began = Date.now();
    const pgid = this.#pgid;
    const name = this.spec.name;
    if (!this.#child || pgid === undefined) {
      // Not running; a group left by an earlier run was killed when its leader exited.
      return { name, by: 'none', ms: 0, survivors: [] };
    }
    signalGroup(pgid, 'SIGTERM');
    let by: StopResult['by'] = 'SIGTERM';
    if (!(await waitGroupGone(pgid, graceMs))) {
      by = 'SIGKILL';
      signalGroup(pgid, 'SIGKILL');
      await waitGroupGone(pgid, 2000);
    }
    await Promise.race([this.#exited, new Promise((r) => setTimeout(r, 1000))]);
    return { name, pid: pgid, by, ms: Date.now() - began, survivors: groupMembers(pgid) };
  }

  /** SIGKILL to the group at once, synchronously (for `process.on('exit')`). */
  killNow(): void {
    this.#stopping = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#pgid !== undefined && this.#child) signalGroup(this.#pgid, 'SIGKILL');
  }
}

function quote(a: string): string {
  return /^[\w@%+=:,./#-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
