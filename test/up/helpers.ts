/** Helpers of the `trellis up` tests: fixture paths, the journal the fixtures write, bounded waits. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';
import { groupMembers } from '../../src/cli/up/process-group.js';

export const FIXTURES = join(ROOT, 'test', 'up', 'fixtures');
export const PROC = join(FIXTURES, 'proc.mjs');
export const FAKE_TRELLIS = join(FIXTURES, 'fake-trellis.mjs');
export const FAKE_APP = join(FIXTURES, 'fake-app.mjs');

/** Directories made by tempDir in this test process, removed when it exits. */
const made: string[] = [];
process.once('exit', () => {
  for (const d of made) {
    try { rmSync(d, { recursive: true, force: true }); } catch { /* a file still held open: the system's tmp cleaning takes it */ }
  }
});

/** A fresh directory under the system's tmp, removed when the test process exits. */
export function tempDir(prefix = 'trellis-up-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export interface JournalEntry {
  readonly t: number;
  readonly pid: number;
  readonly event: string;
  readonly name?: string;
  readonly instance?: string;
  readonly [k: string]: unknown;
}

/** The lines the fixtures appended to `file`. */
export function readJournal(file: string): JournalEntry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalEntry);
}

/** Polls `check` every 25 ms until it returns a value other than undefined/false; fails after `ms` with `what` and the last value seen. */
export async function waitFor<T>(what: string, check: () => T | undefined | false, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Whether any process of these groups still runs (zombies do not count). */
export function liveGroups(pgids: readonly number[]): number[] {
  return pgids.flatMap((g) => groupMembers(g));
}

/** Kills what a test left (teardown): SIGKILL to every group that still has members. */
export function killGroups(pgids: readonly number[]): void {
  for (const g of pgids) {
    try { process.kill(-g, 'SIGKILL'); } catch { /* gone */ }
  }
}
