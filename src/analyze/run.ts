/**
 * Runs analyzers over a loaded mesh: the configuration, the registry and the
 * mesh settings. An analyzer that throws is a bug of ours, not of the user's
 * configuration: it is reported as TRL1401 AnalyzerFailed and the others
 * still run.
 */
import type { ConfigSet } from '../api/config-set.js';
import { diagnostic, type Diagnostic } from '../api/diagnostic.js';
import { meshSettings } from '../compile/mesh.js';
import type { Registry } from '../registry/types.js';
import { Context, type Analyzer } from './analyzer.js';
import { analyzers as all } from './registry.js';

export interface Finding {
  readonly diagnostic: Diagnostic;
  /** The analyzer that reported it. */
  readonly analyzer: string;
}

export interface AnalyzeOptions {
  /** Analyzers to run; all by default. */
  readonly analyzers?: readonly Analyzer[];
}

/** Every finding of the analyzers, in analyzer order, then report order. */
export function runAnalyzers(config: ConfigSet, registry: Registry, opts: AnalyzeOptions = {}): Finding[] {
  const ctx = new Context(config, registry, meshSettings(config));
  const out: Finding[] = [];
  for (const a of opts.analyzers ?? all) {
    ctx.current = a.name;
    const before = ctx.diagnostics.length;
    try {
      a.run(ctx);
    } catch (e) {
      ctx.diagnostics.push(diagnostic('AnalyzerFailed', { analyzer: a.name, detail: (e as Error)?.stack?.split('\n').slice(0, 2).join(' ') ?? String(e) }));
    }
    for (const d of ctx.diagnostics.slice(before)) out.push({ diagnostic: d, analyzer: a.name });
  }
  return out;
}
