/**
 * The state directory of a running mesh (docs/running-mesh.md): `mesh.json`
 * (who runs where), `logs/<name>.log`, and the pointer file
 * `$XDG_STATE_HOME/trellis/current` (or `~/.local/state/trellis/current`)
 * that lets `trellis status` and `trellis logs` find the mesh from any shell.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CliError } from '../cli-error.js';

/** `mesh.json`. Fields beyond docs/running-mesh.md (status, stateDir, pids, admin ports of gateways) are additions. */
export interface MeshState {
  /** PID of `trellis up`. */
  readonly pid: number;
  readonly startedAt: string;
  readonly status: 'starting' | 'running' | 'stopping';
  readonly configDir: string;
  readonly stateDir: string;
  readonly controlPlane: { readonly grpc: number; readonly admin: number; readonly pid?: number };
  readonly ingress: readonly IngressState[];
  readonly instances: readonly InstanceState[];
}

export interface IngressState {
  /** The gateway workload's instance, e.g. `ingressgateway.istio-system`. */
  readonly gateway: string;
  readonly workload: string;
  readonly namespace: string;
  /** The Gateway resources (`namespace/name`) that select it. */
  readonly gateways: readonly string[];
  /** Gateway server port → local port (`{"80": 41234}`). */
  readonly ports: Readonly<Record<string, number>>;
  readonly adminPort: number;
  readonly pid?: number;
}

export interface InstanceState {
  readonly instance: string;
  readonly service: string;
  readonly workload: string;
  readonly namespace: string;
  /** The `version` label; `''` when there is none. */
  readonly version: string;
  readonly region: string;
  readonly zone: string;
  readonly appPort: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  /** The per-upstream local ports, `<service>.<namespace>:<port>` → local port; absent when there are none. */
  readonly upstreams?: Readonly<Record<string, number>>;
  readonly pids: { readonly proxy?: number; readonly app?: number };
}

export const MESH_FILE = 'mesh.json';

/** Where `trellis up` keeps its state: `--state-dir`, else `TRELLIS_STATE_DIR`, else `<config dir>/.trellis`. */
export function stateDirForUp(flag: string | undefined, configDir: string, env = process.env): string {
  return resolve(flag || env.TRELLIS_STATE_DIR || join(configDir, '.trellis'));
}

/** The pointer file: `$XDG_STATE_HOME/trellis/current`, or `~/.local/state/trellis/current`. */
export function pointerFile(env = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'trellis', 'current');
}

/** The log file of a process: `control-plane`, `ingress-<instance>`, `<instance>.proxy`, `<instance>.app`. */
export function logFile(stateDir: string, name: string): string {
  return join(stateDir, 'logs', `${name}.log`);
}

export const logNames = {
  controlPlane: 'control-plane',
  ingress: (instance: string) => `ingress-${instance}`,
  proxy: (instance: string) => `${instance}.proxy`,
  app: (instance: string) => `${instance}.app`,
} as const;

/** Writes mesh.json atomically (a reader never sees half a file). */
export function writeMeshState(state: MeshState): void {
  mkdirSync(state.stateDir, { recursive: true });
  const file = join(state.stateDir, MESH_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

/** Points the pointer file at `stateDir`. */
export function writePointer(stateDir: string, env = process.env): void {
  const p = pointerFile(env);
  mkdirSync(dirname(p), { recursive: true });
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, stateDir + '\n');
  renameSync(tmp, p);
}

/** Removes mesh.json, and the pointer when it still points here (another mesh may have started since). */
export function removeMeshState(stateDir: string, env = process.env): void {
  rmSync(join(stateDir, MESH_FILE), { force: true });
  const p = pointerFile(env);
  if (readText(p)?.trim() === stateDir) rmSync(p, { force: true });
}

/** mesh.json of a state dir; undefined when there is none. Throws a CliError when it is not readable JSON. */
export function readMeshState(stateDir: string): MeshState | undefined {
  const file = join(stateDir, MESH_FILE);
  const text = readText(file);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as MeshState;
  } catch (e) {
    throw new CliError(`${file} is not valid JSON (${(e as Error).message}); remove it if no mesh runs from ${stateDir}`);
  }
}

/**
 * The state dir of the running mesh, for `trellis status` and `trellis logs`:
 * `--state-dir`, else `TRELLIS_STATE_DIR`, else the pointer file.
 */
export function findStateDir(flag: string | undefined, env = process.env): string {
  if (flag) return resolve(flag);
  if (env.TRELLIS_STATE_DIR) return resolve(env.TRELLIS_STATE_DIR);
  const p = pointerFile(env);
  const dir = readText(p)?.trim();
  if (!dir) throw new CliError(`no mesh is running: ${p} does not exist. Start one with \`trellis up <dir>\`, or name its state with --state-dir or TRELLIS_STATE_DIR`);
  return dir;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
