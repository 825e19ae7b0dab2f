import { Command, Option } from 'commander';
import { DEFAULT_ROWS } from '../../compile/index.js';

export function defaultsCommand(): Command {
  return new Command('defaults')
    .summary('list the defaults Trellis applies where the YAML is silent')
    .description('Prints the table of defaults (Istio\'s, except where the note says why Trellis differs).')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'markdown']).default('text'))
    .action((opts: { output: 'text' | 'json' | 'markdown' }) => {
      if (opts.output === 'json') {
        process.stdout.write(JSON.stringify(DEFAULT_ROWS, null, 2) + '\n');
        return;
      }
      if (opts.output === 'markdown') {
        const rows = DEFAULT_ROWS.map((r) => `| \`${r.setting}\` | ${r.value} | ${r.istio} | ${r.note ?? ''} |`);
        process.stdout.write(['| setting | Trellis | Istio | note |', '|---|---|---|---|', ...rows].join('\n') + '\n');
        return;
      }
      const w = Math.max(...DEFAULT_ROWS.map((r) => r.setting.length));
      for (const r of DEFAULT_ROWS) process.stdout.write(`${r.setting.padEnd(w)}  ${r.value}${r.note ? `   (${r.note})` : ''}\n`);
    });
}
