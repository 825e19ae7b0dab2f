import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { parseDuration } from '../../api/duration.js';
import { CliError, loadMesh, report } from '../mesh-input.js';
import { PROXY_NODE_FLAGS } from '../proxy-process.js';
import { planMesh, portsNeeded } from '../up/plan.js';
import { allocatePorts, PortPool } from '../up/ports.js';
import { createProgress } from '../up/progress.js';
import { RunningMesh, StartupError } from '../up/run-mesh.js';
import { stateDirForUp } from '../up/state.js';
import { formatSummary } from '../up/summary.js';

/** The argv that runs this very `trellis` (for its control-plane and proxy subcommands). */
const TRELLIS = [process.execPath, fileURLToPath(new URL('../main.js', import.meta.url))];
/** The same for proxies, with the node flags a proxy runs with (proxy-process.ts). */
const TRELLIS_PROXY = [process.execPath, ...PROXY_NODE_FLAGS, fileURLToPath(new URL('../main.js', import.meta.url))];

export interface UpCommandOptions {
  /** The argv that runs `trellis` for the control-plane and proxy subcommands; this very CLI by default (tests put stand-ins here). */
  readonly trellis?: readonly string[];
}

export function upCommand(co: UpCommandOptions = {}): Command {
  return new Command('up')
    .summary('run an app, its sidecars and a control plane on this machine')
    .description(
      'Reads the configuration in <dir> (App manifest, MeshConfig, Istio\n' +
      'resources), then starts, each in its own process group with its output in\n' +
      '<state>/logs/<name>.log:\n' +
      '  1. trellis control-plane, which watches <dir>: edits apply while it runs;\n' +
      '  2. a gateway proxy for every workload a Gateway selects (the ingress);\n' +
      '  3. for every instance of every App workload, its sidecar (trellis proxy)\n' +
      '     and, once that is ready, the app command (cwd <dir>; PORT, HTTP_PROXY,\n' +
      '     TRELLIS_OUTBOUND, SERVICE, WORKLOAD, NAMESPACE, INSTANCE, VERSION,\n' +
      '     for each of its `upstreams` TRELLIS_UPSTREAM_<SERVICE>[_<NS>]_<PORT>\n' +
      '     (127.0.0.1:<local port>, with _HOST and _PORT variants), and the\n' +
      '     manifest\'s env in its environment).\n' +
      'It waits until everything is ready, prints the instances, their ports and\n' +
      'the URL of the ingress, and keeps them running: a process that exits is\n' +
      'started again (backoff up to 10s; a crashed app only once its sidecar has\n' +
      'taken it out of rotation). Ctrl-C stops each instance\'s sidecar first (it\n' +
      'leaves rotation, waits until every caller has a snapshot without it, and\n' +
      'drains), then its app, and the control plane last (SIGTERM, SIGKILL after\n' +
      '--stop-timeout; sidecars get 7s more to leave).\n' +
      '\n' +
      'State (mesh.json, logs) goes to --state-dir, else $TRELLIS_STATE_DIR, else\n' +
      '<dir>/.trellis; its path is written to $XDG_STATE_HOME/trellis/current\n' +
      '(~/.local/state/trellis/current) for `trellis status` and `trellis logs`.\n' +
      'Configuration errors are printed as file:line:col and nothing is started\n' +
      '(exit 1).',
    )
    .argument('<dir>', 'the app directory (YAML files, and the commands the App manifest runs)')
    .option('--state-dir <dir>', 'where mesh.json and the logs go (default: $TRELLIS_STATE_DIR or <dir>/.trellis)')
    .option('--startup-timeout <duration>', 'how long start-up may take before it is given up', '60s')
    .option('--stop-timeout <duration>', 'how long each process may take to exit after SIGTERM before SIGKILL', '5s')
    .action(async (dir: string, opts: { stateDir?: string; startupTimeout: string; stopTimeout: string }) => {
      const startupTimeoutMs = durationFlag('--startup-timeout', opts.startupTimeout);
      const stopGraceMs = durationFlag('--stop-timeout', opts.stopTimeout);
      const configDir = resolve(dir);
      if (!isDirectory(configDir)) throw new CliError(`${dir} is not a directory: give the app directory (the one with app.yaml)`, 2);
      const { config, registry, diagnostics } = loadMesh([configDir]);
      if (report(diagnostics.filter((d) => d.level !== 'info')) > 0) {
        process.stderr.write('trellis up: the configuration has errors (above); nothing was started\n');
        process.exitCode = 1;
        return;
      }
      if (config.ofKind('App').length === 0) throw new CliError(`no App manifest (kind: App) in ${dir}: trellis up has nothing to run`);
      const pool = new PortPool(await allocatePorts(portsNeeded(config, registry)));
      const plan = planMesh(config, registry, () => pool.next());
      for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);

      const stateDir = stateDirForUp(opts.stateDir, configDir);
      const progress = createProgress(process.stdout);
      const ac = new AbortController();
      let mesh: RunningMesh | undefined;
      let stopRequested: ((sig: string) => void) | undefined;
      const stopped = new Promise<string>((r) => (stopRequested = r));
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals === 1) {
          process.stderr.write(`\n${sig}: stopping (again to kill everything at once)\n`);
          ac.abort();
          stopRequested?.(sig);
        } else {
          mesh?.killNow();
          process.exit(130);
        }
      };
      const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
      for (const s of sigs) process.on(s, onSignal);
      const lastResort = () => mesh?.killNow();
      process.on('exit', lastResort);
      try {
        process.stdout.write(`Starting ${plan.instances.length} instances${plan.gateways.length ? ` and ${plan.gateways.length} gateway${plan.gateways.length === 1 ? '' : 's'}` : ''} from ${configDir} (state: ${stateDir})\n`);
        try {
          mesh = await RunningMesh.start(plan, {
            configDir, stateDir, trellis: co.trellis ?? TRELLIS, proxyTrellis: co.trellis ?? TRELLIS_PROXY, env: process.env, startupTimeoutMs, stopGraceMs,
            progress, log: (line) => process.stdout.write(line + '\n'), signal: ac.signal,
          });
        } catch (e) {
          if (e instanceof StartupError) {
            if (!e.aborted) process.stderr.write(`trellis up: ${e.message}\n`);
            process.exitCode = e.aborted ? 130 : 1;
            return;
          }
          throw e;
        }
        process.stdout.write(formatSummary(plan, stateDir));
        await stopped;
        const results = await mesh.stop();
        const killed = results.filter((r) => r.by === 'SIGKILL').map((r) => r.name);
        const survivors = results.flatMap((r) => r.survivors);
        process.stdout.write(`stopped ${results.filter((r) => r.by !== 'none').length} processes${killed.length ? ` (SIGKILL: ${killed.join(', ')})` : ''}\n`);
        if (survivors.length) {
          process.stderr.write(`trellis up: processes still running after SIGKILL: ${survivors.join(', ')}\n`);
          process.exitCode = 1;
        }
      } finally {
        for (const s of sigs) process.off(s, onSignal);
        process.off('exit', lastResort);
      }
    });
}

function durationFlag(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new CliError(`${flag} ${v} is not a duration such as 30s or 500ms`, 2);
  return ms;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
