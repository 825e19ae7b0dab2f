/**
 * Young-generation collections in the gaps between requests.
 *
 * A sidecar's garbage is almost all per request, and V8 collects it when
 * the young generation is full: always in the middle of a request, since
 * requests are what allocates. At 1 000 req/s on the bench machine each
 * sidecar scavenged about five times a second for about half a
 * millisecond, and 96 of the slowest 100 of 10 000 requests had run into
 * one (docs/benchmark.md).
 *
 * So when the proxy has no request in flight (and no TCP tunnel) and the
 * young generation is at least `fullAt` full, it collects it then, before
 * the next request arrives. The check waits for the end of the event loop's
 * turn (`setImmediate`), so that requests that arrived in the same turn
 * count, and runs at most once per `minGapMs` (reading the heap's figures
 * costs a few microseconds). A proxy that is never idle (steady load on many
 * connections) never collects here and leaves V8 to do it as always; one
 * that is idle now and then collects about as often as V8 would, earlier.
 *
 * The collection is V8's own minor GC, reached through `gc({ type: 'minor' })`
 * (the `--expose-gc` extension, enabled at runtime in a context of its own
 * when the process was not started with the flag). One per process: the
 * heap is the isolate's, whichever data plane's requests filled it.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** What the scavenger watches: how many requests (and tunnels) a data plane has in flight. */
export interface Busy {
  readonly inflight: number;
}

/** The young generation's bytes in use and its capacity. */
export interface NewSpace {
  readonly used: number;
  readonly capacity: number;
}

export function newSpace(): NewSpace {
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_name === 'new_space') return { used: s.space_used_size, capacity: s.space_used_size + s.space_available_size };
  }
  return { used: 0, capacity: 0 };
}

type GcExtension = (options: { type: 'minor' | 'major' }) => void;

/** V8's minor GC as a function, or undefined where it cannot be had. */
export function minorGc(): (() => void) | undefined {
  try {
    let gc = (globalThis as { gc?: unknown }).gc;
    if (typeof gc !== 'function') {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc');
    }
    if (typeof gc !== 'function') return undefined;
    const f = gc as GcExtension;
    return () => f({ type: 'minor' });
  } catch {
    return undefined;
  }
}

export interface IdleScavengerOptions {
  /** Collect once the young generation is at least this full (0–1); 0.75 by default: the quarter left must hold a burst, and after an idle spell V8 shrinks the young generation to 1 MiB (a quarter: some 25 requests). At 0.85 most collections at 1 000 req/s were V8's own again, mid-burst. */
  readonly fullAt?: number;
  /** At most one check per this many milliseconds; 1 by default. */
  readonly minGapMs?: number;
  /** The young generation's figures (tests give their own). */
  readonly space?: () => NewSpace;
}

export class IdleScavenger {
  readonly #hosts = new Set<Busy>();
  readonly #collect: () => void;
  readonly #space: () => NewSpace;
  readonly #fullAt: number;
  readonly #minGapMs: number;
  #scheduled = false;
  #lastCheck = -Infinity;
  /** Collections made here (V8's own are not counted). */
  collections = 0;

  constructor(collect: () => void, opts: IdleScavengerOptions = {}) {
    this.#collect = collect;
    this.#space = opts.space ?? newSpace;
    this.#fullAt = opts.fullAt ?? 0.75;
    this.#minGapMs = opts.minGapMs ?? 1;
  }

  watch(host: Busy): void {
    this.#hosts.add(host);
  }

  unwatch(host: Busy): void {
    this.#hosts.delete(host);
  }

  /** Called when a watched data plane's last request in flight has ended. */
  idle(): void {
    if (this.#scheduled || performance.now() - this.#lastCheck < this.#minGapMs) return;
    this.#scheduled = true;
    setImmediate(this.#check);
  }

  #check = (): void => {
    this.#scheduled = false;
    this.#lastCheck = performance.now();
    for (const h of this.#hosts) if (h.inflight > 0) return;
    const s = this.#space();
    if (s.capacity === 0 || s.used < this.#fullAt * s.capacity) return;
    this.#collect();
    this.collections++;
  };
}

let shared: IdleScavenger | null | undefined;

/** The process's scavenger, or null where V8's minor GC cannot be reached. */
export function sharedIdleScavenger(): IdleScavenger | null {
  if (shared !== undefined) return shared;
  const gc = minorGc();
  return (shared = gc ? new IdleScavenger(gc) : null);
}
