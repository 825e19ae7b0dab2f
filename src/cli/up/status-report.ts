/**
 * `trellis status`: mesh.json joined with the control plane's `/proxies`.
 * The JSON form (`-o json`) is a stable schema, `trellis.dev/status/v1`:
 *
 * ```
 * { "schema": "trellis.dev/status/v1",
 *   "mesh": { "pid", "startedAt", "status", "configDir", "stateDir", "controlPlane": { "grpc", "admin" } },
 *   "proxies": [ { "instance", "workload", "namespace", "kind": "sidecar" | "gateway", "service": string | null,
 *                  "connected": boolean, "sync": "SYNCED" | "STALE" | "NACKED", "nackReason": string | null,
 *                  "version": string | null, "lastPushedVersion": string | null,
 *                  "ports": { "inbound", "outbound", "admin", "app": number | null, "listen": { "<server port>": number } | null } } ],
 *   "summary": { "total", "synced", "stale", "nacked" } }
 * ```
 */
import type { ProxyStatus } from './control-plane-admin.js';
import type { MeshState } from './state.js';
import { formatTable } from './table.js';

export const STATUS_SCHEMA = 'trellis.dev/status/v1';

export interface ProxyReport {
  readonly instance: string;
  readonly workload: string;
  readonly namespace: string;
  readonly kind: 'sidecar' | 'gateway';
  readonly service: string | null;
  readonly connected: boolean;
  readonly sync: 'SYNCED' | 'STALE' | 'NACKED';
  readonly nackReason: string | null;
  /** The last snapshot version the proxy acknowledged. */
  readonly version: string | null;
  readonly lastPushedVersion: string | null;
  readonly ports: {
    readonly inbound: number | null;
    readonly outbound: number | null;
    readonly admin: number | null;
    readonly app: number | null;
    readonly listen: Readonly<Record<string, number>> | null;
  };
}

export interface StatusReport {
  readonly schema: typeof STATUS_SCHEMA;
  readonly mesh: Pick<MeshState, 'pid' | 'startedAt' | 'status' | 'configDir' | 'stateDir'> & { readonly controlPlane: { readonly grpc: number; readonly admin: number } };
  readonly proxies: readonly ProxyReport[];
  readonly summary: { readonly total: number; readonly synced: number; readonly stale: number; readonly nacked: number };
}

/** Every proxy mesh.json knows, then any other the control plane knows (a proxy started by hand), by instance. */
export function statusReport(state: MeshState, proxies: readonly ProxyStatus[]): StatusReport {
  const cp = new Map(proxies.map((p) => [p.instance, p]));
  const out: ProxyReport[] = [];
  const port = (hostPort: string | undefined) => (hostPort ? Number(hostPort.slice(hostPort.lastIndexOf(':') + 1)) || null : null);
  const fromCp = (p: ProxyStatus | undefined) => ({
    connected: p?.connected ?? false,
    sync: p?.sync ?? 'STALE',
    nackReason: p?.sync === 'NACKED' ? p.nackReason ?? '' : null,
    version: p?.lastAckedVersion ?? null,
    lastPushedVersion: p?.lastPushedVersion ?? null,
  });
  for (const g of state.ingress) {
    out.push({ instance: g.gateway, workload: g.workload, namespace: g.namespace, kind: 'gateway', service: null, ...fromCp(cp.get(g.gateway)),
      ports: { inbound: null, outbound: null, admin: g.adminPort, app: null, listen: { ...g.ports } } });
  }
  for (const i of state.instances) {
    out.push({ instance: i.instance, workload: i.workload, namespace: i.namespace, kind: 'sidecar', service: i.service, ...fromCp(cp.get(i.instance)),
      ports: { inbound: i.inboundPort, outbound: i.outboundPort, admin: i.adminPort, app: i.appPort, listen: null } });
  }
  const known = new Set(out.map((p) => p.instance));
  for (const p of proxies) {
    if (known.has(p.instance)) continue;
    out.push({ instance: p.instance, workload: p.workload, namespace: p.namespace, kind: p.kind === 'gateway' ? 'gateway' : 'sidecar', service: null, ...fromCp(p),
      ports: { inbound: port(p.listeners?.inbound), outbound: port(p.listeners?.outbound), admin: port(p.listeners?.admin), app: null, listen: null } });
  }
  const count = (s: ProxyReport['sync']) => out.filter((p) => p.sync === s).length;
  return {
    schema: STATUS_SCHEMA,
    mesh: { pid: state.pid, startedAt: state.startedAt, status: state.status, configDir: state.configDir, stateDir: state.stateDir, controlPlane: { grpc: state.controlPlane.grpc, admin: state.controlPlane.admin } },
    proxies: out,
    summary: { total: out.length, synced: count('SYNCED'), stale: count('STALE'), nacked: count('NACKED') },
  };
}

export function formatStatus(r: StatusReport): string {
  const rows = r.proxies.map((p) => [
    p.instance, `${p.workload}.${p.namespace}`, p.kind, p.version ?? '', p.connected ? p.sync : `${p.sync} (disconnected)`,
    p.ports.inbound ?? '', p.ports.outbound ?? '', p.ports.admin ?? '',
  ]);
  let out = formatTable(['INSTANCE', 'WORKLOAD', 'KIND', 'VERSION', 'SYNC', 'INBOUND', 'OUTBOUND', 'ADMIN'], rows);
  for (const p of r.proxies) if (p.sync === 'NACKED') out += `${p.instance}: NACKED: ${p.nackReason || '(no reason given)'}\n`;
  const s = r.summary;
  out += `\n${s.total} proxies: ${s.synced} SYNCED, ${s.stale} STALE, ${s.nacked} NACKED  (control plane admin http://127.0.0.1:${r.mesh.controlPlane.admin}/, config ${r.mesh.configDir})\n`;
  return out;
}
