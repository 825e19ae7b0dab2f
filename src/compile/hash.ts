/**
 * Part hashes. A compiled part's hash is the hash of the inputs it was built
 * from (which determine it completely), so nothing is re-hashed from its
 * content; a snapshot's version is composed from its parts' hashes. A part's
 * recorded "hash" may be its dependency string itself (already a digest of
 * content hashes): it is only ever fed into `composeHash`. Hashes are
 * kept beside the parts (a WeakMap), not in them, so dumps stay free of them.
 */
import { createHash } from 'node:crypto';

const hashes = new WeakMap<object, string>();

export function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Records the hash of a part. */
export function withHash<T extends object>(part: T, hash: string): T {
  hashes.set(part, hash);
  return part;
}

/** The hash recorded for a part; parts built outside the compiler get one from their content. */
export function hashOf(part: object): string {
  let h = hashes.get(part);
  if (h === undefined) {
    h = hashText(JSON.stringify(part));
    hashes.set(part, h);
  }
  return h;
}

/** Composes the hashes of several parts (order matters). */
export function composeHash(parts: readonly object[], salt = ''): string {
  let s = salt;
  for (const p of parts) s += hashOf(p);
  return hashText(s);
}
