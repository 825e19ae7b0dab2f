/**
 * `trellis top`: a live view of every service of the running mesh with its
 * golden signals — inbound requests per second, error %, p50 and p99
 * latency — and its instances in rotation, from the control plane's
 * `/api/topology`, busiest first. On a terminal it redraws in place every
 * `--interval` on the alternate screen (as `top` does) and puts the terminal
 * back on Ctrl-C or q; `--once`, or a stdout that is not a terminal, prints one
 * frame and exits. A control plane that stops answering is shown in the
 * frame, and the view keeps asking.
 */
import { Command } from 'commander';
import type { TopologyDoc } from '../../controlplane/topology-graph.js';
import { fetchTopology, formatMs, formatRatio, formatRps, serviceNodes, shortId, topologySource, windowArg, windowLine, type TopologySource } from '../topology-client.js';
import { formatTable } from '../up/table.js';
import { sleep } from '../up/http-probe.js';

/** One frame: a header line and a row per service (registry services and any service with traffic). */
export function topFrame(doc: TopologyDoc, intervalMs: number | undefined): string {
  const services = serviceNodes(doc).filter((s) => s.inRegistry || s.inbound)
    .sort((a, b) => (b.inbound?.rps ?? 0) - (a.inbound?.rps ?? 0) || (a.id < b.id ? -1 : 1));
  const rows = services.map((s) => {
    const i = s.inbound;
    return [
      shortId(s.id), s.inRegistry ? `${s.instances.inRotation}/${s.instances.total}` : '-',
      formatRps(i?.rps ?? 0), i ? formatRatio(i.errorRatio) : '-', formatMs(i?.latencyMs?.p50), formatMs(i?.latencyMs?.p99), i?.requests ?? 0,
    ];
  });
  const when = doc.generatedAt.slice(11, 19);
  const refresh = intervalMs ? `, every ${intervalMs / 1000}s (Ctrl-C to quit)` : '';
  return `trellis top  ${when}  ${services.length} services, ${windowLine(doc)}${refresh}\n\n` +
    formatTable(['SERVICE', 'IN ROTATION', 'RPS', 'ERRORS', 'P50', 'P99', 'REQUESTS'], rows);
}

const ALT_SCREEN = '\x1b[?1049h\x1b[?25l';
const RESTORE = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const CLEAR_LINE = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

/** Redraws every interval until SIGINT/SIGTERM, then restores the terminal. */
async function live(src: TopologySource, windowMs: number, intervalMs: number): Promise<void> {
  const out = process.stdout;
  let stop = false;
  const wake = new AbortController();
  const restore = () => out.write(RESTORE);
  const quit = () => { stop = true; wake.abort(); };
  // On a terminal, keys are read raw (as top does): Ctrl-C and q quit without a signal ever being raised,
  // so a shell between us and the terminal cannot die of SIGINT while we put the screen back.
  const keys = process.stdin.isTTY ? process.stdin : undefined;
  const onKey = (b: Buffer) => { if (b.includes(0x03) || b.includes(0x71) || b.includes(0x51)) quit(); };
  process.once('SIGINT', quit);
  process.once('SIGTERM', quit);
  process.once('exit', restore);
  if (keys) { keys.setRawMode(true); keys.on('data', onKey); keys.resume(); }
  out.write(ALT_SCREEN);
  try {
    while (!stop) {
      let frame: string;
      try {
        frame = topFrame(await fetchTopology(src, windowMs), intervalMs);
      } catch (e) {
        frame = `trellis top  ${new Date().toISOString().slice(11, 19)}\n\n${(e as Error).message}\n(asking again every ${intervalMs / 1000}s; Ctrl-C to quit)\n`;
      }
      if (stop) break;
      out.write(HOME + frame.split('\n').join(`${CLEAR_LINE}\n`) + CLEAR_BELOW);
      await sleep(intervalMs, wake.signal);
    }
  } finally {
    process.off('SIGINT', quit);
    process.off('SIGTERM', quit);
    process.off('exit', restore);
    if (keys) { keys.off('data', onKey); keys.setRawMode(false); keys.pause(); }
    restore();
  }
}

export function topCommand(): Command {
  return new Command('top')
    .summary('a live view of every service: requests per second, errors, latency, instances in rotation')
    .description(
      'Shows every service of the running mesh with its golden signals, busiest first:\n' +
      '  IN ROTATION  instances taking traffic / instances known\n' +
      '  RPS          inbound requests per second over --window\n' +
      '  ERRORS       share of them that failed (5xx, no response, upstream failures)\n' +
      '  P50, P99     latency, from the duration histograms (interpolated within a bucket)\n' +
      '  REQUESTS     inbound requests over the window\n' +
      'The numbers are what the service\'s own sidecars saw (every caller, retried\n' +
      'attempts included); for a service without sidecars, what its callers saw.\n' +
      'On a terminal the view refreshes every --interval until Ctrl-C; with --once, or\n' +
      'when stdout is not a terminal, it prints one frame and exits. The mesh is the\n' +
      'one `trellis up` runs, or the control plane --admin names.',
    )
    .option('--interval <duration>', 'time between refreshes', windowArg('--interval', 100), 2000)
    .option('--window <duration>', 'the window rates and latencies are computed over (at most 60s)', windowArg('--window', 1000), 30_000)
    .option('--once', 'print one frame and exit')
    .option('--state-dir <dir>', 'the state dir of the mesh (default: $TRELLIS_STATE_DIR, or the one the pointer file names)')
    .option('--admin <host:port>', 'the control plane\'s admin API, for a mesh not started by trellis up')
    .action(async (opts: { interval: number; window: number; once?: boolean; stateDir?: string; admin?: string }) => {
      const src = topologySource(opts);
      if (opts.once || !process.stdout.isTTY) {
        process.stdout.write(topFrame(await fetchTopology(src, opts.window), undefined));
        return;
      }
      await fetchTopology(src, opts.window); // fails at once when nothing answers; later failures show in the frame
      await live(src, opts.window, opts.interval);
    });
}
