/**
 * Start-up grace: a freshly started control plane knows the configuration
 * but none of the registrations, so the snapshots it could compile have no
 * endpoints. Pushing them would take every endpoint out of every proxy that
 * still serves a good snapshot. So, until the instances it expects have
 * registered again (or `graceMs` passed), it holds back pushes to proxies
 * that already serve a snapshot; hello is accepted meanwhile, and proxies
 * that serve nothing yet get their snapshot at once (they have nothing to
 * lose).
 */
export interface StartupGraceOptions {
  /** Instances to wait for. Empty: no grace. */
  readonly expected: Iterable<string>;
  /** Upper bound of the wait; 10 s by default. */
  readonly graceMs: number;
  /** Called once when the grace ends (all expected registered, or the time passed). */
  readonly onEnd: (why: 'registered' | 'timeout', missing: readonly string[]) => void;
}

export class StartupGrace {
  readonly #waiting: Set<string>;
  readonly #onEnd: StartupGraceOptions['onEnd'];
  #timer: NodeJS.Timeout | undefined;
  #active = true;

  constructor(opts: StartupGraceOptions) {
    this.#waiting = new Set(opts.expected);
    this.#onEnd = opts.onEnd;
    if (this.#waiting.size === 0 || opts.graceMs <= 0) {
      this.#active = false;
      return;
    }
    this.#timer = setTimeout(() => this.#end('timeout'), opts.graceMs);
    this.#timer.unref();
  }

  /** Whether pushes to proxies that serve a snapshot are still held back. */
  get active(): boolean {
    return this.#active;
  }

  get missing(): readonly string[] {
    return [...this.#waiting].sort();
  }

  /** An instance registered; ends the grace when it was the last one expected. */
  registered(instance: string): void {
    if (!this.#active) return;
    this.#waiting.delete(instance);
    if (this.#waiting.size === 0) this.#end('registered');
  }

  /** The configuration changed: instances it no longer declares are not waited for. */
  retain(declared: ReadonlySet<string>): void {
    if (!this.#active) return;
    for (const i of [...this.#waiting]) if (!declared.has(i)) this.#waiting.delete(i);
    if (this.#waiting.size === 0) this.#end('registered');
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#active = false;
  }

  #end(why: 'registered' | 'timeout'): void {
    if (!this.#active) return;
    this.#active = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#onEnd(why, this.missing);
  }
}
