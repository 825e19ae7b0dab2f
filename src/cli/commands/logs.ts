import { Command } from 'commander';
import { CliError } from '../mesh-input.js';
import { fileSize, followFile, tailLines } from '../up/log-files.js';
import { selectLogs, type LogSource } from '../up/log-select.js';
import { findStateDir, readMeshState } from '../up/state.js';

export function logsCommand(): Command {
  return new Command('logs')
    .summary('print the logs of a service, an instance or the control plane of the running mesh')
    .description(
      'Prints the app logs of the instances of a service (or of a workload, or\n' +
      'of one instance) from the state dir of the running mesh; --proxy prints\n' +
      'their sidecars\' logs instead. `control-plane` names the control plane, a\n' +
      'gateway instance its ingress proxy. With several instances, each line starts\n' +
      'with [instance]. The state dir is --state-dir, else $TRELLIS_STATE_DIR, else\n' +
      'the one $XDG_STATE_HOME/trellis/current names.\n' +
      '\n' +
      'Examples:\n' +
      '  trellis logs accounts              every accounts instance (v1 and v2)\n' +
      '  trellis logs accounts-v2 --follow  the canary, as it logs\n' +
      '  trellis logs \'frontend.bank#0\' --proxy\n' +
      '  trellis logs control-plane -n 20',
    )
    .argument('<name>', 'a service, workload, instance, gateway, or control-plane')
    .option('--proxy', 'the sidecar\'s log instead of the app\'s')
    .option('-f, --follow', 'keep printing what is appended, until Ctrl-C')
    .option('-n, --tail <lines>', 'only the last lines of each log')
    .option('--state-dir <dir>', 'the state dir of the mesh')
    .action(async (name: string, opts: { proxy?: boolean; follow?: boolean; tail?: string; stateDir?: string }) => {
      const tail = opts.tail === undefined ? undefined : Number(opts.tail);
      if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw new CliError(`--tail ${opts.tail} is not a number of lines`, 2);
      const stateDir = findStateDir(opts.stateDir);
      const sel = selectLogs(stateDir, readMeshState(stateDir), name, opts.proxy === true);
      if (!sel.ok) {
        throw new CliError(`no service, workload or instance "${name}" in the mesh of ${stateDir}${sel.known.length ? `; known: ${sel.known.join(', ')}` : ''}`);
      }
      const prefix = sel.sources.length > 1;
      const write = (s: LogSource, lines: readonly string[]) => {
        if (lines.length) process.stdout.write(lines.map((l) => (prefix ? `[${s.label}] ${l}` : l)).join('\n') + '\n');
      };
      const starts = sel.sources.map((s) => fileSize(s.file));
      for (const s of sel.sources) write(s, tailLines(s.file, tail ?? Number.MAX_SAFE_INTEGER));
      if (!opts.follow) return;
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await Promise.all(sel.sources.map((s, i) => {
        let partial = '';
        return followFile(s.file, starts[i]!, (text) => {
          const lines = (partial + text).split('\n');
          partial = lines.pop() ?? '';
          write(s, lines);
        }, ac.signal);
      }));
    });
}
