import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { Position } from './diagnostic.js';

/**
 * Finds the file position of a field path inside one YAML document, so that
 * every message names `file:line:col`. Paths follow aliases; a path that does
 * not exist (a missing required field) resolves to its nearest existing parent.
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
        const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
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
