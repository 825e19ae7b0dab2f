/**
 * CPU time and resident memory of a process group, from /proc (Linux only):
 * utime + stime of /proc/<pid>/stat in clock ticks (`getconf CLK_TCK`,
 * 100 on Linux here: 10 ms of resolution, so a round must cost a proxy well
 * over a second of CPU for its per-request figure to be good to 1 %), and
 * VmRSS of /proc/<pid>/status. A group is summed over its members (an nginx
 * master and its worker; a trellis proxy is one process), read afresh every
 * time so that a restarted worker is not missed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { groupMembers } from '../../src/cli/up/process-group.js';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process is gone
  }
}

/** CPU time in microseconds: user (utime) and kernel (stime). */
export interface CpuTime {
  readonly user: number;
  readonly sys: number;
}

/** utime and stime of one process. */
function cpuOf(pid: number): CpuTime {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return { user: 0, sys: 0 };
  // "pid (comm) state ...": fields after the comm start at field 3 (state); utime is field 14, stime 15.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(rest[11]) * 1e6) / CLK_TCK, sys: (Number(rest[12]) * 1e6) / CLK_TCK };
}

/** VmRSS of one process, in bytes. */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU time used so far by the group's live members. */
export function groupCpu(pgid: number): CpuTime {
  return groupMembers(pgid).map(cpuOf).reduce((a, b) => ({ user: a.user + b.user, sys: a.sys + b.sys }), { user: 0, sys: 0 });
}

/**
 * The highest RSS of each group while a run lasts, sampled every `everyMs`.
 * The members are listed once at the start (scanning /proc four times a
 * second would cost the machine's cores more than the reading itself).
 */
export function sampleRss(pgids: readonly number[], everyMs = 250): { stop(): number[] } {
  const members = pgids.map(groupMembers);
  const now = () => members.map((pids) => pids.reduce((sum, pid) => sum + rssBytes(pid), 0));
  const peak = now();
  const take = () => now().forEach((b, i) => (peak[i] = Math.max(peak[i]!, b)));
  const t = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(t);
      take();
      return peak;
    },
  };
}
