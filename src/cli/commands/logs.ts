import { Command } from 'commander';
import { CliError } from '../cli-error.js';
import { fileSize, followFile, tailLines } from '../up/log-files.js';
import { selectLogs, type LogSource, type Selection } from '../up/log-select.js';
import { findStateDir, readMeshState, type MeshState } from '../up/state.js';

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
      '  trellis logs control-plane -n 20\n' +
      '  trellis logs --access accounts     the access log lines of its sidecars\n' +
      '\n' +
      '--access prints only the access log lines (JSON, with "type":"access", or\n' +
      'TEXT in the default shape, [<start time>] "<method> <path> ...) of the\n' +
      'proxies of <name>, or of every proxy when no name is given. Proxies log\n' +
      'requests to their own log when MeshConfig accessLogFile is /dev/stdout, when a\n' +
      'Telemetry resource\'s envoy provider logs and MeshConfig names no file, or when\n' +
      'the mesh was started with TRELLIS_ACCESS_LOG_FILE=/dev/stdout. Lines of a\n' +
      'TEXT accessLogFormat of your own are not told apart from the proxy\'s other\n' +
      'lines: read them with --proxy, or log them to a file of their own.',
    )
    .argument('[name]', 'a service, workload, instance, gateway, or control-plane (optional with --access)')
    .option('--proxy', 'the sidecar\'s log instead of the app\'s')
    .option('--access', 'only the proxies\' access log lines (every proxy\'s when no name is given)')
    .option('-f, --follow', 'keep printing what is appended, until Ctrl-C')
    .option('-n, --tail <lines>', 'only the last lines of each log')
    .option('--state-dir <dir>', 'the state dir of the mesh')
    .action(async (name: string | undefined, opts: { proxy?: boolean; access?: boolean; follow?: boolean; tail?: string; stateDir?: string }) => {
      const tail = opts.tail === undefined ? undefined : Number(opts.tail);
      if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0)) throw new CliError(`--tail ${opts.tail} is not a number of lines`, 2);
      if (name === undefined && !opts.access) throw new CliError('name a service, workload, instance, gateway or control-plane (or give --access for every proxy)', 2);
      const stateDir = findStateDir(opts.stateDir);
      const state = readMeshState(stateDir);
      const sel = name !== undefined ? selectLogs(stateDir, state, name, opts.proxy === true || opts.access === true) : everyProxy(stateDir, state);
      if (!sel.ok) {
        throw new CliError(name === undefined
          ? `no running mesh in ${stateDir}: nothing to show the access logs of`
          : `no service, workload or instance "${name}" in the mesh of ${stateDir}${sel.known.length ? `; known: ${sel.known.join(', ')}` : ''}`);
      }
      const prefix = sel.sources.length > 1;
      const keep = opts.access ? (lines: readonly string[]) => lines.filter(isAccessLine) : (lines: readonly string[]) => lines;
      const write = (s: LogSource, all: readonly string[]) => {
        const lines = keep(all);
        if (lines.length) process.stdout.write(lines.map((l) => (prefix ? `[${s.label}] ${l}` : l)).join('\n') + '\n');
      };
      const starts = sel.sources.map((s) => fileSize(s.file));
      // With --access, -n counts access lines, not all the lines of the log.
      for (const s of sel.sources) {
        const lines = keep(tailLines(s.file, opts.access ? Number.MAX_SAFE_INTEGER : tail ?? Number.MAX_SAFE_INTEGER));
        write(s, opts.access && tail !== undefined ? lines.slice(Math.max(0, lines.length - tail)) : lines);
      }
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

/**
 * A TEXT access log line in the default shape: Trellis's own and Istio's
 * default format both begin `[<start time, ISO 8601>] "<method> `.
 */
const TEXT_ACCESS_LINE = /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\] "[A-Z-]* /;

/**
 * An access log line of a proxy: JSON (src/telemetry/access-log.ts marks
 * each with `"type":"access"`), or TEXT in the default shape. Lines of an
 * accessLogFormat of the user's own carry no mark, and are not picked out.
 */
export function isAccessLine(line: string): boolean {
  return line.startsWith('{"type":"access"') || TEXT_ACCESS_LINE.test(line);
}

/** The logs of every proxy of the running mesh: sidecars and ingress gateways. */
function everyProxy(stateDir: string, state: MeshState | undefined): Selection {
  if (!state) return { ok: false, known: [] };
  const names = [...state.instances.map((i) => i.instance), ...state.ingress.map((g) => g.gateway)];
  const sources = names.flatMap((n) => {
    const sel = selectLogs(stateDir, state, n, true);
    return sel.ok ? sel.sources : [];
  });
  return { ok: true, sources };
}
