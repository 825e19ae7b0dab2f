/**
 * The control plane's events, one per thing an operator wants to see in its
 * log: configuration loaded or rejected, proxies connecting, pushes, ACKs
 * and NACKs. `formatEvent` renders one line (the CLI prints them).
 */
import { formatDiagnostic, type Diagnostic } from '../api/diagnostic.js';

export type ControlPlaneEvent =
  | { readonly type: 'listening'; readonly grpc: string; readonly admin: string }
  | { readonly type: 'config-loaded'; readonly resources: number; readonly files: number }
  | { readonly type: 'config-rejected'; readonly diagnostics: readonly Diagnostic[]; readonly files: readonly string[] }
  | { readonly type: 'proxy-connected'; readonly instance: string; readonly inbound: string; readonly servingVersion?: string; readonly reconnect: boolean }
  | { readonly type: 'proxy-disconnected'; readonly instance: string }
  | { readonly type: 'proxy-gone'; readonly instance: string }
  | { readonly type: 'refused'; readonly instance?: string; readonly peer: string; readonly code: string; readonly reason: string }
  | { readonly type: 'push'; readonly instance: string; readonly version: string; readonly reason: string }
  | { readonly type: 'ack'; readonly instance: string; readonly version: string; readonly latencyMs?: number }
  | { readonly type: 'nack'; readonly instance: string; readonly version: string; readonly reason: string }
  | { readonly type: 'health'; readonly instance: string; readonly healthy: boolean; readonly detail?: string }
  | { readonly type: 'grace'; readonly state: 'waiting' | 'ended'; readonly why?: string; readonly missing: readonly string[]; readonly graceMs?: number }
  | { readonly type: 'leaving'; readonly instance: string; readonly detail?: string }
  | { readonly type: 'drained'; readonly instance: string; readonly why: 'acked' | 'timeout'; readonly waitedMs: number; readonly pending: readonly string[] }
  | { readonly type: 'withdrawn'; readonly instance: string; readonly message: string }
  | { readonly type: 'ca'; readonly source: 'state-dir' | 'files' | 'ephemeral'; readonly trustDomain: string; readonly rootFingerprint: string }
  | { readonly type: 'certified'; readonly instance: string; readonly identity: string; readonly notAfter: string; readonly via: 'join-token' | 'certificate'; readonly peer: string }
  | { readonly type: 'certify-refused'; readonly instance: string; readonly peer: string; readonly reason: string }
  | { readonly type: 'error'; readonly instance?: string; readonly message: string };

const list = (xs: readonly string[]) => (xs.length > 8 ? `${xs.slice(0, 8).join(',')},…(${xs.length})` : xs.join(',')) || '-';

/** One log line (diagnostics of a rejected edit follow on their own lines). */
export function formatEvent(e: ControlPlaneEvent): string {
  switch (e.type) {
    case 'listening':
      return `listening grpc=${e.grpc} admin=${e.admin}`;
    case 'config-loaded':
      return `config loaded: ${e.resources} resources from ${e.files} files`;
    case 'config-rejected':
      return `config rejected in ${list(e.files)} (last good version stays in force):\n` + e.diagnostics.map((d) => `  ${formatDiagnostic(d)}`).join('\n');
    case 'proxy-connected':
      return `proxy connected instance=${e.instance} inbound=${e.inbound || '-'}${e.reconnect ? ' (reconnect)' : ''}${e.servingVersion ? ` serving=${e.servingVersion}` : ''}`;
    case 'proxy-disconnected':
      return `proxy disconnected instance=${e.instance}`;
    case 'proxy-gone':
      return `proxy gone instance=${e.instance} (forgotten after --gone-after)`;
    case 'refused':
      return `registration refused instance=${e.instance ?? '-'} peer=${e.peer} ${e.code}: ${e.reason}`;
    case 'push':
      return `push instance=${e.instance} version=${e.version} reason=${e.reason}`;
    case 'ack':
      return `ack instance=${e.instance} version=${e.version}${e.latencyMs !== undefined ? ` latency=${e.latencyMs.toFixed(1)}ms` : ''}`;
    case 'nack':
      return `nack instance=${e.instance} version=${e.version}: ${e.reason}`;
    case 'health':
      return `health instance=${e.instance} ${e.healthy ? 'healthy' : 'unhealthy'}${e.detail ? `: ${e.detail}` : ''}`;
    case 'grace':
      return e.state === 'waiting'
        ? `registration grace: waiting up to ${e.graceMs} ms for ${e.missing.length} instances before pushing to proxies that serve a snapshot`
        : `registration grace ended (${e.why})${e.missing.length ? `; not registered: ${list(e.missing)}` : ''}`;
    case 'leaving':
      return `leaving instance=${e.instance}: out of rotation, waiting for the callers' ACKs${e.detail ? ` (${e.detail})` : ''}`;
    case 'drained':
      return e.why === 'acked'
        ? `drained instance=${e.instance}: every connected proxy ACKed a snapshot without it after ${Math.round(e.waitedMs)} ms`
        : `drained instance=${e.instance}: leave grace passed after ${Math.round(e.waitedMs)} ms; not ACKed by ${list(e.pending)}`;
    case 'withdrawn':
      return `withdrawn instance=${e.instance}: ${e.message}`;
    case 'ca':
      return `CA ${e.source === 'files' ? 'plugged in from files' : e.source === 'ephemeral' ? 'ephemeral (no --state-dir: certificates do not survive a restart)' : 'in the state dir'} trust-domain=${e.trustDomain} root-sha256=${e.rootFingerprint}`;
    case 'certified':
      return `certificate issued instance=${e.instance} identity=${e.identity} not-after=${e.notAfter} via=${e.via} peer=${e.peer}`;
    case 'certify-refused':
      return `certificate refused instance=${e.instance || '-'} peer=${e.peer}: ${e.reason}`;
    case 'error':
      return `error${e.instance ? ` instance=${e.instance}` : ''}: ${e.message}`;
  }
}
