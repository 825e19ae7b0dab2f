/**
 * Process groups: every child of `trellis up` leads its own group
 * (`spawn(..., { detached: true })`), so a signal to `-pgid` reaches the
 * child and everything it started (a `sh -c` command's children, a node
 * cluster's workers).
 *
 * Whether a group is still there is read from /proc on Linux, so that
 * zombies (exited processes whose parent has not reaped them yet, common
 * when PID 1 of a container reaps nothing) do not count as alive. Elsewhere
 * `kill(-pgid, 0)` answers.
 */
import { readdirSync, readFileSync } from 'node:fs';

const HAS_PROC = (() => {
  try {
    readFileSync('/proc/self/stat', 'utf8');
    return true;
  } catch {
    return false;
  }
})();

/** Sends `signal` to every process of group `pgid`; false when the group is empty. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/** The processes of group `pgid` that have not exited (zombies excluded), by PID. */
export function groupMembers(pgid: number): number[] {
  if (!HAS_PROC) return signalGroup(pgid, 0) ? [pgid] : [];
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(Number(name));
  }
  return out;
}

/** Whether a process with this PID is running (a zombie is not). */
export function pidAlive(pid: number): boolean {
  if (HAS_PROC) {
    const st = procStat(pid);
    return st !== undefined && st.state !== 'Z' && st.state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** State and process group of a PID from /proc/<pid>/stat; undefined when it is gone. */
export function procStat(pid: number): { state: string; pgrp: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses; it ends at the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '', pgrp: Number(rest[2]) };
}

/** Polls until group `pgid` has no live member or `ms` pass; true when it is gone. */
export async function waitGroupGone(pgid: number, ms: number, pollMs = 25): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (groupMembers(pgid).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
