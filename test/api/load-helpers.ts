/** Helpers for the loader tests: YAML text from lines, and what a diagnostic says about where it is. */
import type { Diagnostic, Position } from '../../src/api/diagnostic.js';

/** The parts of a diagnostic a loader test compares exactly: code, field, resource (where it names one) and position. */
export function where(d: Diagnostic): { code: string; field: string | undefined; resource?: string; position: Position | undefined } {
  return { code: d.code, field: d.field, ...(d.resource ? { resource: d.resource } : {}), position: d.position };
}

/** A position in a file; lines and columns count from 1. */
export function at(file: string, line: number, col: number): Position {
  return { file, line, col };
}

/** YAML text of the given lines, with a final newline. */
export function lines(...ls: string[]): string {
  return `${ls.join('\n')}\n`;
}

/** A Namespace document. */
export function namespaceDoc(name: string): string {
  return lines('apiVersion: v1', 'kind: Namespace', `metadata: {name: ${name}}`);
}
