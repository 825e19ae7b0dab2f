import { Command, Option } from 'commander';
import { CliError } from '../cli-error.js';
import { fetchProxies, type ProxyStatus } from '../up/control-plane-admin.js';
import { pidAlive } from '../up/process-group.js';
import { findStateDir, MESH_FILE, readMeshState } from '../up/state.js';
import { formatStatus, statusReport } from '../up/status-report.js';

export function statusCommand(): Command {
  return new Command('status')
    .summary('show every proxy of the running mesh and whether its configuration is in sync')
    .description(
      'Like `istioctl proxy-status`: reads the running mesh\'s mesh.json (found\n' +
      'through $XDG_STATE_HOME/trellis/current, or --state-dir, or\n' +
      '$TRELLIS_STATE_DIR), asks the control plane\'s admin API for /proxies and\n' +
      'prints every proxy: instance, workload, kind, the config version it\n' +
      'acknowledged, its sync state and its ports.\n' +
      '  SYNCED  the last push was acknowledged\n' +
      '  STALE   a push is not acknowledged yet, or the proxy is not connected\n' +
      '  NACKED  the proxy refused the last push (the reason is printed)\n' +
      'Exit status: 0 when the control plane answered, 1 when no mesh runs or its\n' +
      'control plane does not answer.\n' +
      '\n' +
      '-o json prints this schema (trellis.dev/status/v1; fields are only added):\n' +
      '  { "schema": "trellis.dev/status/v1",\n' +
      '    "mesh": { "pid", "startedAt", "configDir", "stateDir",\n' +
      '              "status": "starting" | "running" | "stopping",\n' +
      '              "controlPlane": { "grpc": port, "admin": port } },\n' +
      '    "proxies": [ { "instance", "workload", "namespace",\n' +
      '                   "kind": "sidecar" | "gateway", "service": string | null,\n' +
      '                   "connected": bool,\n' +
      '                   "sync": "SYNCED" | "STALE" | "NACKED",\n' +
      '                   "nackReason": string | null,\n' +
      '                   "version": last acknowledged version | null,\n' +
      '                   "lastPushedVersion": string | null,\n' +
      '                   "ports": { "inbound", "outbound", "admin",\n' +
      '                              "app": port | null,\n' +
      '                              "listen": { "<server port>": port } | null }\n' +
      '                 } ],\n' +
      '    "summary": { "total", "synced", "stale", "nacked" } }',
    )
    .option('--state-dir <dir>', 'the state dir of the mesh (default: $TRELLIS_STATE_DIR, or the one the pointer file names)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: { stateDir?: string; output: 'text' | 'json' }) => {
      const stateDir = findStateDir(opts.stateDir);
      const state = readMeshState(stateDir);
      if (!state) throw new CliError(`no mesh is running: there is no ${MESH_FILE} in ${stateDir}`);
      if (!pidAlive(state.pid)) throw new CliError(`no mesh is running: ${stateDir}/${MESH_FILE} was left by trellis up (pid ${state.pid}), which is gone; remove it, or start the mesh again`);
      let proxies: ProxyStatus[];
      try {
        proxies = await fetchProxies(state.controlPlane.admin);
      } catch (e) {
        throw new CliError(`the control plane of the mesh in ${stateDir} does not answer on http://127.0.0.1:${state.controlPlane.admin}/proxies: ${(e as Error).message}${state.status === 'starting' ? ' (the mesh is still starting)' : ''}`);
      }
      const report = statusReport(state, proxies);
      process.stdout.write(opts.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : formatStatus(report));
    });
}
