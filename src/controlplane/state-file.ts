/**
 * What the control plane keeps in the state directory across restarts:
 * `<state-dir>/control-plane.json` with the instances registered when it
 * last wrote it, so that a restarted control plane knows which instances to
 * wait for during start-up grace. Written atomically (temp file + rename).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ControlPlaneState {
  readonly instances: readonly string[];
  readonly updatedAt: string;
}

export const STATE_FILE = 'control-plane.json';

/** The state the last run left, or undefined (no state dir, no file, unreadable). */
export function readState(stateDir: string | undefined): ControlPlaneState | undefined {
  if (!stateDir) return undefined;
  try {
    const raw = JSON.parse(readFileSync(join(stateDir, STATE_FILE), 'utf8')) as Partial<ControlPlaneState>;
    if (!Array.isArray(raw.instances) || !raw.instances.every((i) => typeof i === 'string')) return undefined;
    return { instances: raw.instances, updatedAt: String(raw.updatedAt ?? '') };
  } catch {
    return undefined;
  }
}

/** Writes the registered instances; failures are returned, not thrown (the state dir is an aid, not a requirement). */
export function writeState(stateDir: string | undefined, instances: readonly string[]): Error | undefined {
  if (!stateDir) return undefined;
  try {
    mkdirSync(stateDir, { recursive: true });
    const file = join(stateDir, STATE_FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    const body: ControlPlaneState = { instances: [...instances].sort(), updatedAt: new Date().toISOString() };
    writeFileSync(tmp, JSON.stringify(body, null, 2) + '\n');
    renameSync(tmp, file);
    return undefined;
  } catch (e) {
    return e as Error;
  }
}
