/**
 * Real processes for integration tests: `trellis` commands and small node
 * programs, each in its own process group (detached), with their output
 * kept for assertions and failure messages; killed by process group.
 */
import { PROXY_NODE_FLAGS } from '../../src/cli/proxy-process.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';

export const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

export class Proc {
  readonly child: ChildProcess;
  out = '';
  err = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** `node <args>` in its own process group; `program` runs something else (`ip netns exec …` for the hosts tests). */
  constructor(readonly name: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; program?: string; stdin?: boolean } = {}) {
    this.child = spawn(opts.program ?? process.execPath, args, {
      detached: true, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env },
    });
    this.child.stdout!.on('data', (b: Buffer) => (this.out += b.toString()));
    this.child.stderr!.on('data', (b: Buffer) => (this.err += b.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve((this.exit = { code, signal }))));
  }

  /** `trellis <args>` */
  static trellis(name: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
    // `trellis proxy` runs with the node flags `trellis up` gives it (a small young generation), as users run it.
    return new Proc(name, [...(args[0] === 'proxy' ? PROXY_NODE_FLAGS : []), MAIN, ...args], opts);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits until stdout has a line matching `re`; returns the match. */
  async line(re: RegExp, ms = 5000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.out.slice(from).match(re);
      if (m) return m;
      if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before printing ${re}:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${re} within ${ms} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  tail(): string {
    return `--- ${this.name} stdout\n${this.out.slice(-3000)}\n--- stderr\n${this.err.slice(-2000)}`;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exit) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      /* gone */
    }
  }

  /** SIGTERM to the group, SIGKILL after `ms`; resolves when it exited. */
  async stop(ms = 3000): Promise<void> {
    if (this.exit) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), ms);
    await this.exited;
    clearTimeout(t);
  }
}

/** Every process a test file started; `stopAll` in after(). */
export class Procs {
  readonly #all: Proc[] = [];

  add<P extends Proc>(p: P): P {
    this.#all.push(p);
    return p;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.#all.map((p) => p.stop()));
  }
}

export async function getJson<T>(addr: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://${addr}${path}`);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body: body as T };
}
