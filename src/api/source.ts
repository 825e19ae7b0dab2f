import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import type { Position } from './diagnostic.js';

/**
 * Finds the file position of a field path inside one YAML document, so that
 * every message names `file:line:col`. Paths follow aliases and merge keys (a
 * merged field is found where it is written, in the mapping merged in); a path
 * that does not exist (a missing required field) resolves to its nearest
 * existing parent.
 */
export class SourceLocator {
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #base: readonly (string | number)[];
  readonly file: string;

  constructor(file: string, doc: Document, lines: LineCounter, base: readonly (string | number)[] = []) {
    this.file = file;
    this.#doc = doc;
    this.#lines = lines;
    this.#base = base;
  }

  /** A locator for a sub-document, such as one item of a `kind: List`. */
  child(path: readonly (string | number)[]): SourceLocator {
    return new SourceLocator(this.file, this.#doc, this.#lines, [...this.#base, ...path]);
  }

  /** The position of the value at `path`; with `key`, of the key itself. */
  locate(path: readonly PropertyKey[], opts: { key?: boolean } = {}): Position {
    let node: unknown = this.#doc.contents;
    let offset = rangeStart(node) ?? 0;
    const full = [...this.#base, ...path];
    for (let i = 0; i < full.length; i++) {
      const seg = full[i];
      if (isAlias(node)) node = node.resolve(this.#doc);
      let next: unknown;
      let keyNode: unknown;
      if (isMap(node)) {
        const pair = this.#pair(node, String(seg));
        if (pair) { next = pair.value; keyNode = pair.key; }
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
      }
      if (next === undefined && keyNode === undefined) break;
      const last = i === full.length - 1;
      const start = last && opts.key && keyNode !== undefined ? rangeStart(keyNode) : (rangeStart(next) ?? rangeStart(keyNode));
      if (start !== undefined) offset = start;
      node = next;
    }
    return this.at(offset);
  }

  /**
   * The pair of `key` in a mapping as YAML merges it: the mapping's own pair
   * first, then the mappings its merge keys (`<<: *base`, `<<: [*a, *b]`) bring
   * in, in order. `depth` bounds merges of merges.
   */
  #pair(map: YAMLMap, key: string, depth = 0): Pair | undefined {
    const merged: unknown[] = [];
    for (const p of map.items) {
      if (!isPair(p)) continue;
      if (isScalar(p.key) && typeof p.key.value === 'symbol') merged.push(...(isSeq(p.value) ? p.value.items : [p.value]));
      else if (keyText(p.key) === key) return p;
    }
    if (depth >= 16) return undefined;
    for (const m of merged) {
      const source = isAlias(m) ? m.resolve(this.#doc) : m;
      const pair = isMap(source) ? this.#pair(source, key, depth + 1) : undefined;
      if (pair) return pair;
    }
    return undefined;
  }

  /** Position of a character offset in the file. */
  at(offset: number): Position {
    const { line, col } = this.#lines.linePos(offset);
    return { file: this.file, line, col };
  }
}

function keyText(n: unknown): string | undefined {
  if (isScalar(n)) return String(n.value);
  return undefined;
}

function rangeStart(n: unknown): number | undefined {
  if (n && typeof n === 'object' && 'range' in n) {
    const r = (n as Node).range;
    if (r) return r[0];
  }
  return undefined;
}
