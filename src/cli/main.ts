#!/usr/bin/env node
/** The `trellis` command. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { TrellisError } from '../api/diagnostic.js';
import { codesCommand } from './commands/codes.js';
import { compileCommand } from './commands/compile.js';
import { controlPlaneCommand } from './commands/control-plane.js';
import { proxyCommand } from './commands/proxy.js';
import { defaultsCommand } from './commands/defaults.js';
import { explainCommand } from './commands/explain.js';
import { graphCommand } from './commands/graph.js';
import { logsCommand } from './commands/logs.js';
import { statusCommand } from './commands/status.js';
import { topCommand } from './commands/top.js';
import { upCommand } from './commands/up.js';
import { validateCommand } from './commands/validate.js';
import { CliError } from './mesh-input.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export function program(): Command {
  const p = new Command('trellis')
    .description(
      'Trellis — a service mesh whose configuration you can test like code.\n' +
      'Configuration is Istio\'s API (VirtualService, DestinationRule, AuthorizationPolicy, …) in YAML files.',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(validateCommand())
    .addCommand(explainCommand())
    .addCommand(compileCommand())
    .addCommand(defaultsCommand())
    .addCommand(codesCommand())
    .addCommand(upCommand())
    .addCommand(statusCommand())
    .addCommand(logsCommand())
    .addCommand(graphCommand())
    .addCommand(topCommand())
    .addCommand(controlPlaneCommand())
    .addCommand(proxyCommand());
  for (const c of p.commands) c.showHelpAfterError('(run with --help for usage)');
  return p;
}

async function main(argv: string[]): Promise<void> {
  const p = program();
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
