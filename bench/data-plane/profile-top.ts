/**
 * `node dist/bench/data-plane/profile-top.js <file>… [--top N] [--per N]`:
 * where a sidecar's CPU went, from the profiles `npm run bench -- --profile
 * DIR` writes (`.cpuprofile`). Prints the functions with the most self time,
 * and self time summed by area (our proxy, undici, Node's HTTP, streams, net,
 * GC, …), so that the hot path can be read without a flame-graph viewer.
 * Idle time is left out of the percentages: they are shares of the time the
 * process was busy.
 *
 * A `.heapprofile` (sampler.ts) is read the same way for bytes
 * allocated: by function and by area, and with `--per N` (the requests made
 * while it sampled) in bytes per request.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Which part of the program a frame belongs to, from its URL. */
export function areaOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  const ours = /\/dist\/(src\/[^?]+)\.js/.exec(url);
  if (ours) return `trellis ${ours[1]!.split('/').slice(0, 2).join('/')}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm ${pkg[1]}`;
  if (/^node:internal\/(http|_http)|^node:_http|^node:http/.test(url)) return 'node http';
  if (/^node:internal\/streams|^node:stream/.test(url)) return 'node streams';
  if (/^node:net|^node:internal\/(net|stream_base_commons|tcp)/.test(url)) return 'node net';
  if (/^node:internal\/(timers|process\/task_queues)|^node:timers/.test(url)) return 'node timers/ticks';
  if (/^node:diagnostics_channel|^node:internal\/perf|^node:perf_hooks/.test(url)) return 'node diagnostics/perf';
  if (url.startsWith('node:')) return `node ${url.slice(5).replace(/^internal\//, '').split('/')[0]}`;
  return url ? 'other' : 'native (no url)';
}

/** A frame as the listings name it: function, then file (from dist/ or node_modules/) and 1-based line. */
function frameName(f: { readonly functionName: string; readonly url: string; readonly lineNumber: number }): string {
  const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
}

function top(file: string, n: number): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const special = new Set(['(garbage collector)', '(program)', '(idle)', '(root)']);
  /** The area of the nearest ancestor frame that has a URL (for a native frame), or the frame's own. */
  const areaCharged = (id: number): string => {
    let at: number | undefined = id;
    const own = byId.get(id)!.callFrame;
    if (special.has(own.functionName)) return areaOf(own.url, own.functionName);
    while (at !== undefined && !byId.get(at)!.callFrame.url) at = parent.get(at);
    const f = byId.get(at ?? id)!.callFrame;
    return areaOf(f.url, f.functionName);
  };
  const self = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample: it is charged to sample i.
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    busy += us;
    const key = frameName(f);
    fns.set(key, (fns.get(key) ?? 0) + us);
    const area = areaCharged(id);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const lines = (m: Map<string, number>, k: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, us]) => `  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`);
  return [
    `${basename(file)}: ${(busy / 1000).toFixed(0)} ms busy`,
    'self time by area (native frames charged to their JavaScript caller):', ...lines(areas, 20),
    `top ${n} functions by self time:`, ...lines(fns, n),
  ].join('\n');
}

/** Bytes allocated by function and by area, from a sampling heap profile; per request with `per`. */
export function heapTop(file: string, n: number, per: number | undefined): string {
  const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head;
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  // A native frame (no URL) is charged to the nearest JavaScript frame above it, as for CPU.
  const walk = (node: HeapNode, charged: string): void => {
    const f = node.callFrame;
    const area = f.url ? areaOf(f.url, f.functionName) : charged;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const key = frameName(f);
      fns.set(key, (fns.get(key) ?? 0) + node.selfSize);
      areas.set(area, (areas.get(area) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, area);
  };
  walk(head, 'native (no url)');
  const amount = (bytes: number) => (per ? `${(bytes / per).toFixed(0).padStart(6)} B/req` : `${(bytes / 1024).toFixed(0).padStart(7)} KiB`);
  const lines = (m: Map<string, number>, k: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, b]) => `  ${((100 * b) / (total || 1)).toFixed(1).padStart(5)}%  ${amount(b)}  ${name}`);
  return [
    `${basename(file)}: ${amount(total).trim()} allocated${per ? ` (${per} requests)` : ''}`,
    'allocated by area:', ...lines(areas, 20),
    `top ${n} functions by bytes allocated:`, ...lines(fns, n),
  ].join('\n');
}

const USAGE = `usage: node dist/bench/data-plane/profile-top.js <file.cpuprofile | file.heapprofile>… [--top N] [--per REQUESTS]

Where a profiled process's time or allocation went: self time (a .cpuprofile)
or bytes allocated (a .heapprofile, sampler.js) by area and by function.

  --top N         functions listed (default 30)
  --per REQUESTS  the requests made while sampling: bytes per request
  --help          this text
`;

function cli(args: string[]): number {
  const flag = (name: string): number | undefined => {
    const at = args.indexOf(name);
    if (at < 0) return undefined;
    const v = Number(args[at + 1]);
    args.splice(at, 2);
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} takes a positive whole number`);
    return v;
  };
  if (args.includes('--help') || args.includes('-h')) { process.stdout.write(USAGE); return 0; }
  let n: number;
  let per: number | undefined;
  try {
    n = flag('--top') ?? 30;
    per = flag('--per');
  } catch (e) {
    process.stderr.write(`profile-top: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const unknown = args.find((a) => a.startsWith('-'));
  if (unknown !== undefined) { process.stderr.write(`profile-top: unknown flag ${unknown}\n${USAGE}`); return 2; }
  if (args.length === 0) { process.stderr.write(USAGE); return 2; }
  for (const f of args) {
    let report: string;
    try {
      report = f.endsWith('.heapprofile') ? heapTop(f, n, per) : top(f, n);
    } catch (e) {
      process.stderr.write(`profile-top: ${f}: ${(e as Error).message}\n`);
      return 1;
    }
    process.stdout.write(`${report}\n\n`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) process.exitCode = cli(process.argv.slice(2));
