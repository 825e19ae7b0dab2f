/**
 * What `trellis graph` and `trellis top` share: finding the control plane's
 * admin API (`--admin host:port`, else the running mesh's mesh.json, found
 * as `trellis status` finds it), fetching `/api/topology`
 * (trellis.dev/topology/v1, src/controlplane/topology.ts) with errors that
 * say what to do, and the number formats of both views.
 */
import type { ServiceNode, Signals, TopologyDoc } from '../controlplane/topology-graph.js';
import { durationArg } from './args.js';
import { CliError } from './cli-error.js';
import { httpGet } from './up/http-probe.js';
import { pidAlive } from './up/process-group.js';
import { findStateDir, MESH_FILE, readMeshState } from './up/state.js';

export interface TopologySource {
  /** `host:port` of the control plane's admin API. */
  readonly admin: string;
  /** Where it was found, for messages: `--admin` or the state dir. */
  readonly from: string;
}

/** The admin API: `--admin`, else the control plane of the mesh `trellis up` runs (state dir as `trellis status` finds it). */
export function topologySource(opts: { admin?: string; stateDir?: string }): TopologySource {
  if (opts.admin) {
    if (!/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/.test(opts.admin)) throw new CliError(`--admin must be host:port of the control plane's admin API, not "${opts.admin}"`, 2);
    return { admin: opts.admin, from: `--admin ${opts.admin}` };
  }
  const stateDir = findStateDir(opts.stateDir);
  const state = readMeshState(stateDir);
  if (!state) throw new CliError(`no mesh is running: there is no ${MESH_FILE} in ${stateDir} (start one with \`trellis up <dir>\`, or name a control plane with --admin host:port)`);
  if (!pidAlive(state.pid)) throw new CliError(`no mesh is running: ${stateDir}/${MESH_FILE} was left by trellis up (pid ${state.pid}), which is gone; remove it, or start the mesh again`);
  return { admin: `127.0.0.1:${state.controlPlane.admin}`, from: `the mesh in ${stateDir}` };
}

/** GET /api/topology over `windowMs`; a CliError that names the control plane when it does not answer or refuses. */
export async function fetchTopology(src: TopologySource, windowMs: number): Promise<TopologyDoc> {
  const url = `http://${src.admin}/api/topology?window=${windowMs / 1000}s`;
  let status: number;
  let body: string;
  try {
    ({ status, body } = await httpGet(url, 3000));
  } catch (e) {
    throw new CliError(`the control plane of ${src.from} does not answer on ${url}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new CliError(`${url} answered HTTP ${status} with something that is not JSON: ${body.slice(0, 120)}`);
  }
  if (status === 404) throw new CliError(`the control plane of ${src.from} has no /api/topology (an older version?)`);
  if (status !== 200) throw new CliError(`${url}: ${(doc as { error?: string }).error ?? `HTTP ${status}`}`);
  return doc as TopologyDoc;
}

/** `--window` / `--interval` values: Istio-style durations, at least 1 s / 100 ms. */
export function windowArg(flag: string, minMs: number) {
  const parse = durationArg(flag);
  return (v: string): number => {
    const ms = parse(v);
    if (ms < minMs) throw new CliError(`${flag} must be at least ${minMs >= 1000 ? `${minMs / 1000}s` : `${minMs}ms`}, not "${v}"`, 2);
    return ms;
  };
}

/** A node id without its kind: `workload:web-v1.shop` → `web-v1.shop`. */
export const shortId = (id: string): string => id.replace(/^(service|workload):/, '');

export const formatRps = (rps: number): string => (rps >= 100 ? rps.toFixed(0) : rps >= 10 ? rps.toFixed(1) : rps.toFixed(2));
export const formatRatio = (r: number): string => `${(r * 100).toFixed(1)}%`;
export const formatMs = (ms: number | undefined): string => (ms === undefined ? '-' : ms >= 1000 ? `${(ms / 1000).toFixed(2)}s` : ms >= 10 ? `${ms.toFixed(0)}ms` : `${ms.toFixed(1)}ms`);

/** `12.3 rps, 1.5% errors, p50 12ms, p99 48ms` */
export function signalsLine(s: Signals): string {
  const lat = s.latencyMs ? `, p50 ${formatMs(s.latencyMs.p50)}, p99 ${formatMs(s.latencyMs.p99)}` : '';
  return `${formatRps(s.rps)} rps, ${formatRatio(s.errorRatio)} errors${lat}`;
}

export const serviceNodes = (doc: TopologyDoc): ServiceNode[] => doc.nodes.filter((n): n is ServiceNode => n.kind === 'service');

/** `window 60s (42s covered), 5 of 5 proxies answered the last scrape` */
export function windowLine(doc: TopologyDoc): string {
  const s = doc.scrape;
  const covered = doc.window.coveredSeconds < doc.window.seconds ? ` (${Math.round(doc.window.coveredSeconds)}s covered so far)` : '';
  const failed = s.failed.length ? `; not answering: ${s.failed.join(', ')}` : '';
  return `window ${doc.window.seconds}s${covered}, ${s.answered} of ${s.proxies} proxies answered the last scrape${failed}`;
}
