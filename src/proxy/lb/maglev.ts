/**
 * Envoy's MAGLEV: a lookup table of `tableSize` entries (a prime, default
 * 65537) filled by the hosts in turns; a key goes to the host of entry
 * (hash mod size), O(1). Each host walks its own permutation of the table,
 * from an offset by a skip, both taken from hashes of its name, and claims
 * the next entry no one holds yet; a host claims on a turn only when its
 * weight allows (the heaviest on every turn, one of half its weight on
 * every second, and so on), so its share of the table is its weight's
 * share. When a host leaves, the others mostly keep their entries and
 * share out its own: about 1/N of the keys move.
 */
import { hash53 } from './hash.js';
import type { HashTable } from './consistent-hash.js';

export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
const EMPTY = 0xffffffff;

export function maglevTable(weights: readonly number[], ids: readonly string[], tableSize = DEFAULT_MAGLEV_TABLE_SIZE): HashTable {
  const n = weights.length;
  const size = tableSize;
  const owner = new Uint32Array(size).fill(EMPTY);
  const heaviest = weights.reduce((m, w) => Math.max(m, w), 0);
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  const share = new Float64Array(n);
  const credit = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    pos[i] = hash53(ids[i]!, 1) % size;
    skip[i] = (hash53(ids[i]!, 2) % (size - 1)) + 1;
    share[i] = weights[i]! / heaviest;
  }
  let filled = n === 0 ? size : 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      const c = credit[i]! + share[i]!;
      if (c < 1) { credit[i] = c; continue; }
      credit[i] = c - 1;
      let p = pos[i]!;
      while (owner[p] !== EMPTY) p = (p + skip[i]!) % size;
      owner[p] = i;
      pos[i] = (p + skip[i]!) % size;
      filled++;
    }
  }
  return { owner, slotOf: (h) => h % size };
}
