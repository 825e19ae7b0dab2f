/**
 * What the CLI commands share: load the configuration and the registry from
 * paths, print the diagnostics, and decide whether to go on.
 */
import type { ConfigSet } from '../api/config-set.js';
import { formatDiagnostic, type Diagnostic } from '../api/diagnostic.js';
import { loadConfig } from '../api/load.js';
import { meshOf } from '../analyze/analyze.js';
import type { Registry } from '../registry/types.js';

export interface MeshInput {
  readonly config: ConfigSet;
  readonly registry: Registry;
  readonly diagnostics: readonly Diagnostic[];
}

export function loadMesh(paths: readonly string[]): MeshInput {
  return meshOf(loadConfig(paths));
}

/** Prints diagnostics to stderr; returns the number of errors among them. */
export function report(ds: readonly Diagnostic[], opts: { quiet?: boolean } = {}): number {
  let errors = 0;
  for (const d of ds) {
    if (d.level === 'error') errors++;
    if (opts.quiet && d.level !== 'error') continue;
    process.stderr.write(formatDiagnostic(d) + '\n');
  }
  return errors;
}

export { CliError } from './cli-error.js';
