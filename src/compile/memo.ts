/**
 * A two-generation memo: parts built for the previous configuration are found
 * again (the same objects) when their inputs did not change, and parts not
 * used for a whole generation are dropped, so memory stays bounded.
 */
export class GenerationalMemo<V> {
  #current = new Map<string, { deps: string; value: V }>();
  #previous = new Map<string, { deps: string; value: V }>();

  /** Starts a new generation: what is not used again before the next one is forgotten. */
  advance(): void {
    this.#previous = this.#current;
    this.#current = new Map();
  }

  /** The value for `key` built from `deps`, reusing one built from the same deps. */
  get(key: string, deps: string, build: () => V): V {
    const cur = this.#current.get(key);
    if (cur && cur.deps === deps) return cur.value;
    const prev = this.#previous.get(key);
    if (prev && prev.deps === deps) {
      this.#current.set(key, prev);
      return prev.value;
    }
    const value = build();
    this.#current.set(key, { deps, value });
    return value;
  }

  get size(): number {
    return this.#current.size;
  }
}
