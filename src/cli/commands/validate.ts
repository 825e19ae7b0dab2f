import { Command, Option } from 'commander';
import { loadMesh, report } from '../mesh-input.js';

export function validateCommand(): Command {
  return new Command('validate')
    .summary('check configuration files without running anything')
    .description(
      'Loads every YAML file under the given paths (files or directories), validates each resource against\n' +
      'its kind (Istio networking/security, Kubernetes registry data, trellis.dev), builds the registry and\n' +
      'reports every problem as file:line:col, code, resource, field and what to do.\n' +
      'Exit status: 0 when there are no errors (warnings allowed), 1 otherwise.',
    )
    .argument('<paths...>', 'YAML files or directories')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('-q, --quiet', 'print errors only')
    .action((paths: string[], opts: { output: 'text' | 'json'; quiet?: boolean }) => {
      const { config, diagnostics } = loadMesh(paths);
      const errors = diagnostics.filter((d) => d.level === 'error').length;
      const warnings = diagnostics.filter((d) => d.level === 'warning').length;
      if (opts.output === 'json') {
        process.stdout.write(JSON.stringify({ resources: config.resources.length, errors, warnings, diagnostics }, null, 2) + '\n');
      } else {
        report(diagnostics, opts);
        const kinds = new Map<string, number>();
        for (const r of config.resources) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
        const summary = [...kinds].sort().map(([k, n]) => `${n} ${k}`).join(', ');
        process.stdout.write(`${config.resources.length} resources (${summary || 'none'}): ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`);
      }
      process.exitCode = errors > 0 ? 1 : 0;
    });
}
