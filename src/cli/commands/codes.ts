import { Command, Option } from 'commander';
import { messagesByCode } from '../../api/messages.js';

export function codesCommand(): Command {
  return new Command('codes')
    .summary('list every message code Trellis can report')
    .description(
      'Prints the message catalogue: code, level, name and what it means. TRL0nnn codes mirror the\n' +
      'Istio code of the same number (TRL0106 = IST0106); TRL1nnn are Trellis\'s own. Codes are permanent.',
    )
    .argument('[code]', 'show one code only, e.g. TRL0106')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'markdown']).default('text'))
    .action((code: string | undefined, opts: { output: 'text' | 'json' | 'markdown' }) => {
      let list = [...messagesByCode.values()].sort((a, b) => (a.code < b.code ? -1 : 1));
      if (code) {
        list = list.filter((m) => m.code === code.toUpperCase());
        if (!list.length) {
          process.stderr.write(`trellis: no message code ${code}; run "trellis codes" for the list\n`);
          process.exitCode = 1;
          return;
        }
      }
      if (opts.output === 'json') {
        process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      } else if (opts.output === 'markdown') {
        process.stdout.write(['| code | level | name | meaning |', '|---|---|---|---|', ...list.map((m) => `| ${m.code} | ${m.level} | ${m.name} | ${m.docs} |`)].join('\n') + '\n');
      } else {
        for (const m of list) process.stdout.write(`${m.code}  ${m.level.padEnd(7)}  ${m.name}\n          ${m.docs}\n`);
      }
    });
}
