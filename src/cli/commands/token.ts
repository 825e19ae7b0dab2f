/** `trellis token create`: one-time join tokens for proxies on other hosts (hosts mode). */
import { Command } from 'commander';
import { durationArg } from '../args.js';
import { mintJoinTokens } from '../join-tokens.js';
import { CliError, loadMesh, report } from '../mesh-input.js';

interface CreateFlags {
  config: string[];
  stateDir: string;
  ttl: number;
  output: 'text' | 'json';
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function tokenCommand(): Command {
  const create = new Command('create')
    .summary('mint a one-time join token for each instance named')
    .description(
      'Mints a one-time join token per instance (workload.namespace#i, or workload.namespace for a\n' +
      'single replica) into the token store of the control plane that runs with --state-dir on this\n' +
      'machine. The token is bound to what the configuration says the instance is (its identity,\n' +
      'labels, service account) and carries the SHA-256 of the CA root, so the proxy verifies the\n' +
      'control plane before it sends anything. Give it to the proxy on the other host with\n' +
      '`trellis proxy --join-token <token>` (or --join-token-file, or $TRELLIS_JOIN_TOKEN). A token\n' +
      'joins once; a replayed, expired or mismatched token is refused and the control plane logs why.\n\n' +
      'Example:\n' +
      '  trellis token create accounts-v1.bank#0 --config examples/bank --state-dir /var/lib/trellis',
    )
    .argument('<instance...>', 'the instances to mint tokens for')
    .option('--config <path>', 'the configuration the control plane runs (repeatable)', collect, [] as string[])
    .requiredOption('--state-dir <dir>', 'the control plane\'s --state-dir (its CA and token store)')
    .option('--ttl <duration>', 'how long the token may wait to be used', durationArg('--ttl'), 3600_000)
    .option('-o, --output <format>', 'text (instance and token, a line each) or json', 'text')
    .action((instances: string[], f: CreateFlags) => {
      if (f.output !== 'text' && f.output !== 'json') throw new CliError(`-o must be text or json, not "${f.output}"`, 2);
      if (f.config.length === 0) throw new CliError('--config is required: the configuration declares the instances and their identities', 2);
      const { registry, diagnostics } = loadMesh(f.config);
      if (report(diagnostics, { quiet: true }) > 0) throw new CliError('the configuration has errors (above); no token minted', 1);
      const minted = mintJoinTokens(f.stateDir, registry, instances, f.ttl);
      if (f.output === 'json') {
        process.stdout.write(`${JSON.stringify(minted.map((m) => ({ ...m, expiresAt: m.expiresAt.toISOString() })), null, 2)}\n`);
        return;
      }
      for (const m of minted) process.stdout.write(`${m.instance} ${m.token}\n`);
      process.stderr.write(`${minted.length} token${minted.length === 1 ? '' : 's'}, each valid once until ${minted[0]!.expiresAt.toISOString()}\n`);
    });
  return new Command('token')
    .summary('join tokens: how a new proxy proves which instance it is')
    .addCommand(create);
}
