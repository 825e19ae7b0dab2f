/**
 * The bench's child processes (nginx masters, trellis control plane and
 * sidecars, h2load): each leads its own process group (`detached`), so that
 * a signal to `-pgid` also reaches what it started (nginx's workers). Every
 * group is remembered until it is gone; `stopAll` ends them (SIGTERM, then
 * SIGKILL after a bound), and a last synchronous SIGKILL on `exit` covers an
 * error or Ctrl-C in the middle of a round. Only what the bench started is
 * ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { signalGroup, waitGroupGone } from '../../src/cli/up/process-group.js';

/** How long after its exit a child's output may still be arriving. */
const STDIO_GRACE_MS = 1000;

export class Child {
  readonly proc: ChildProcess;
  out = '';
  err = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;

  constructor(readonly name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.proc = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    // Keep only the tails: h2load and the sidecars can print a lot over a long run.
    this.proc.stdout!.on('data', (b: Buffer) => (this.out = (this.out + b.toString()).slice(-64_000)));
    this.proc.stderr!.on('data', (b: Buffer) => (this.err = (this.err + b.toString()).slice(-16_000)));
    this.exited = new Promise((resolve) => {
      this.proc.on('error', (e) => {
        this.err += `\n${e.message}`;
        this.exit ??= { code: null, signal: null };
        resolve();
      });
      // 'exit' can come before the last of stdout has been read (h2load's summary, under load): the output is
      // whole at 'close'. A descendant that keeps the pipes open (nginx's workers) must not hold that up for long.
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        setTimeout(resolve, STDIO_GRACE_MS).unref();
      });
      this.proc.on('close', () => resolve());
    });
  }

  /** The process group (the child's own PID). */
  get pgid(): number {
    return this.proc.pid ?? 0;
  }

  /** Waits until stdout has a match of `re`; fails with the output when the child exits first or `ms` pass. */
  async line(re: RegExp, ms: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.out.match(re);
      if (m) return m;
      if (this.exit) throw new Error(`${this.name} exited (${describeExit(this.exit)}) before printing ${re}:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${re} within ${ms} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  tail(): string {
    return `--- ${this.name} stdout\n${this.out.slice(-2000)}\n--- ${this.name} stderr\n${this.err.slice(-2000)}`;
  }
}

export function describeExit(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `signal ${e.signal}` : `status ${e.code}`;
}

/** Every group the bench started and has not seen gone. */
export class Children {
  readonly #live = new Set<Child>();

  constructor() {
    process.on('exit', () => {
      for (const c of this.#live) if (c.pgid) signalGroup(c.pgid, 'SIGKILL');
    });
  }

  start(name: string, command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Child {
    const c = new Child(name, command, args, env);
    this.#live.add(c);
    return c;
  }

  /** Fails naming the first long-running child that has exited (a crashed sidecar makes every later figure meaningless). */
  checkAlive(): void {
    for (const c of this.#live) {
      if (c.exit) throw new Error(`${c.name} exited during the bench (${describeExit(c.exit)}):\n${c.tail()}`);
    }
  }

  /** SIGTERM to the group (twice: a second signal makes `trellis proxy` skip waiting for `drained`), SIGKILL after `ms`. */
  async stop(c: Child, ms = 5000): Promise<void> {
    if (c.pgid && !c.exit) {
      signalGroup(c.pgid, 'SIGTERM');
      setTimeout(() => c.pgid && signalGroup(c.pgid, 'SIGTERM'), 200).unref();
    }
    if (c.pgid && !(await waitGroupGone(c.pgid, ms))) signalGroup(c.pgid, 'SIGKILL');
    await Promise.race([c.exited, new Promise((r) => setTimeout(r, 1000))]);
    if (!c.pgid || (await waitGroupGone(c.pgid, 1000))) this.#live.delete(c);
  }

  async stopAll(ms?: number): Promise<void> {
    await Promise.all([...this.#live].map((c) => this.stop(c, ms)));
  }
}
