#!/usr/bin/env node
/** The `trellis` command. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { TrellisError } from '../api/diagnostic.js';
import { CliError } from './cli-error.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * The subcommands, each loaded only when needed: a run of one command
 * imports that command's module alone. This matters most for
 * `trellis proxy`, a process per workload instance, which must not hold the
 * compiler, the configuration loader or the control plane in memory.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  validate: async () => (await import('./commands/validate.js')).validateCommand(),
  explain: async () => (await import('./commands/explain.js')).explainCommand(),
  compile: async () => (await import('./commands/compile.js')).compileCommand(),
  defaults: async () => (await import('./commands/defaults.js')).defaultsCommand(),
  codes: async () => (await import('./commands/codes.js')).codesCommand(),
  analyze: async () => (await import('./commands/analyze.js')).analyzeCommand(),
  reach: async () => (await import('./commands/reach.js')).reachCommand(),
  up: async () => (await import('./commands/up.js')).upCommand(),
  status: async () => (await import('./commands/status.js')).statusCommand(),
  logs: async () => (await import('./commands/logs.js')).logsCommand(),
  graph: async () => (await import('./commands/graph.js')).graphCommand(),
  top: async () => (await import('./commands/top.js')).topCommand(),
  'control-plane': async () => (await import('./commands/control-plane.js')).controlPlaneCommand(),
  proxy: async () => (await import('./commands/proxy.js')).proxyCommand(),
  token: async () => (await import('./commands/token.js')).tokenCommand(),
  ca: async () => (await import('./commands/ca.js')).caCommand(),
};

/** The program with every subcommand, or only `only` when it names one (the others are not loaded). */
export async function program(only?: string): Promise<Command> {
  const p = new Command('trellis')
    .description(
      'Trellis — a service mesh whose configuration you can test like code.\n' +
      'Configuration is Istio\'s API (VirtualService, DestinationRule, AuthorizationPolicy, …) in YAML files.',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)');
  const names = only !== undefined && Object.hasOwn(COMMANDS, only) ? [only] : Object.keys(COMMANDS);
  for (const c of await Promise.all(names.map((n) => COMMANDS[n]!()))) p.addCommand(c);
  for (const c of p.commands) c.showHelpAfterError('(run with --help for usage)');
  return p;
}

async function main(argv: string[]): Promise<void> {
  const p = await program(argv[2]);
  p.exitOverride();
  for (const c of p.commands) c.exitOverride();
  try {
    await p.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    if (e instanceof CliError) {
      process.stderr.write(`trellis: ${e.message}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    if (e instanceof TrellisError) {
      process.stderr.write(`trellis: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

await main(process.argv);
