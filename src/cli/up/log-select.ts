/**
 * Which log files `trellis logs <name>` means: `control-plane`; an instance
 * (`accounts-v1.bank#0`); a workload or a service (`accounts-v1`,
 * `accounts`, `accounts.bank`) for all of its instances; a gateway. From
 * mesh.json while the mesh runs, else from the names of the files in logs/.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { logFile, logNames, type MeshState } from './state.js';

export interface LogSource {
  /** The instance (or `control-plane`), used as the line prefix when several files are shown. */
  readonly label: string;
  readonly file: string;
}

export type Selection = { readonly ok: true; readonly sources: readonly LogSource[] } | { readonly ok: false; readonly known: readonly string[] };

export function selectLogs(stateDir: string, state: MeshState | undefined, name: string, proxy: boolean): Selection {
  if (name === logNames.controlPlane) return { ok: true, sources: [{ label: name, file: logFile(stateDir, name) }] };
  const entries = state ? fromState(state) : fromFiles(stateDir);
  const matches = (e: Entry) => e.instance === name || [e.workload, e.service].some((x) => x !== undefined && (x === name || `${x}.${e.namespace}` === name));
  const hit = entries.filter(matches);
  if (!hit.length) {
    const known = new Set<string>([logNames.controlPlane]);
    for (const e of entries) { if (e.service) known.add(e.service); known.add(e.workload); known.add(e.instance); }
    return { ok: false, known: [...known] };
  }
  return {
    ok: true,
    sources: hit.map((e) => ({
      label: e.instance,
      file: logFile(stateDir, e.gateway ? logNames.ingress(e.instance) : proxy ? logNames.proxy(e.instance) : logNames.app(e.instance)),
    })),
  };
}

interface Entry {
  readonly instance: string;
  readonly workload: string;
  readonly namespace: string;
  readonly service?: string;
  readonly gateway: boolean;
}

function fromState(s: MeshState): Entry[] {
  return [
    ...s.ingress.map((g) => ({ instance: g.gateway, workload: g.workload, namespace: g.namespace, gateway: true })),
    ...s.instances.map((i) => ({ instance: i.instance, workload: i.workload, namespace: i.namespace, service: i.service, gateway: false })),
  ];
}

/** Instances named by the log files (`<workload>.<ns>[#i].app.log`, `ingress-<instance>.log`); services are unknown. */
function fromFiles(stateDir: string): Entry[] {
  let names: string[];
  try {
    names = readdirSync(join(stateDir, 'logs'));
  } catch {
    return [];
  }
  const out = new Map<string, Entry>();
  for (const n of names.sort()) {
    const m = /^(ingress-)?(([a-z0-9-]+)\.([a-z0-9-]+)(?:#\d+)?)(?:\.(?:app|proxy))?\.log$/.exec(n);
    if (!m || n === `${logNames.controlPlane}.log`) continue;
    out.set(m[2]!, { instance: m[2]!, workload: m[3]!, namespace: m[4]!, gateway: m[1] !== undefined });
  }
  return [...out.values()];
}
