/**
 * The hash the consistent-hash balancers place hosts and keys with. Envoy
 * uses xxHash64; ours is our own 53-bit hash, so that a hash is an exact
 * integer in a JavaScript number (rings and tables sort and compare them
 * natively, with no BigInt): two 32-bit lanes over the string's UTF-16 code
 * units — FNV-1a, and a multiply-xorshift lane — each finished with
 * murmur3's 32-bit finalizer and fed into the other, 21 bits of one and 32
 * of the other. Stable across processes and platforms.
 */

const TWO_32 = 4294967296;

/** murmur3's 32-bit finalizer: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A hash of `s` in [0, 2^53); `seed` gives an independent hash of the same string. */
export function hash53(s: string, seed = 0): number {
  let a = 0x811c9dc5 ^ seed;
  let b = (0x27d4eb2f + Math.imul(seed, 0x165667b1)) | 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a = fmix32(a ^ s.length);
  b = fmix32(b ^ Math.imul(a, 0x9e3779b1));
  a = fmix32(a ^ b);
  return (b & 0x1fffff) * TWO_32 + a;
}

/** 16 lowercase hex digits of a 53-bit hash (a generated cookie value). */
export function hex53(h: number): string {
  return h.toString(16).padStart(16, '0');
}
