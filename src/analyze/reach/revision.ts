/**
 * The two sides of `trellis reach --diff <old> <new>`, each a directory (or
 * file) on disk, or a git revision read with git into a temporary directory
 * that `cleanup()` removes:
 *
 * - `REV:path` — `path` (from the repository's top, as `git show REV:path`
 *   reads it; `REV:./path` from the current directory) at revision REV;
 * - `git:REV` — at revision REV, the same directory as the other side (when
 *   that is a directory inside the repository), else the current directory.
 *
 * Only the YAML files are read from the revision (what the loader reads).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { ReachArgError } from './resolve.js';

export interface DiffSide {
  /** What to load. */
  readonly path: string;
  /** How to name it in messages (`HEAD~1:examples/bank`, or the path). */
  readonly label: string;
  /** The directory to take file names relative to. */
  readonly root: string;
}

const YAML = /\.ya?ml$/i;

function git(cwd: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new ReachArgError(`git ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** Resolves both sides; the caller must call `cleanup()` (also on failure: it is safe to call at any time). */
export function diffSides(oldArg: string, newArg: string, cwd = process.cwd()): { old: DiffSide; new: DiffSide; cleanup: () => void } {
  const temps: string[] = [];
  const cleanup = () => { for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true }); };
  try {
    const side = (arg: string, other: string): DiffSide => {
      if (arg.startsWith('git:')) {
        const rev = arg.slice(4);
        const otherDir = !other.startsWith('git:') && existsSync(resolve(cwd, other)) ? resolve(cwd, other) : cwd;
        return fromRevision(rev, otherDir, cwd, temps, arg);
      }
      if (existsSync(resolve(cwd, arg))) return { path: resolve(cwd, arg), label: arg, root: resolve(cwd, arg) };
      const m = /^([^:]+):(.*)$/.exec(arg);
      if (!m) throw new ReachArgError(`--diff ${arg}: no such file or directory, and not a git revision (git:REV or REV:path)`);
      const top = git(cwd, ['rev-parse', '--show-toplevel']).trim();
      const path = m[2]!.startsWith('./') || m[2]!.startsWith('../') ? resolve(cwd, m[2]!) : join(top, m[2]!);
      return fromRevision(m[1]!, path, cwd, temps, arg);
    };
    return { old: side(oldArg, newArg), new: side(newArg, oldArg), cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

/** The YAML files under `absPath` at `rev`, written into a new temporary directory. */
function fromRevision(rev: string, absPath: string, cwd: string, temps: string[], label: string): DiffSide {
  const top = realpathSync(git(cwd, ['rev-parse', '--show-toplevel']).trim());
  const real = existsSync(absPath) ? realpathSync(absPath) : absPath;
  const rel = relative(top, real);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new ReachArgError(`--diff ${label}: ${absPath} is outside the git repository ${top}`);
  git(top, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
  const files = git(top, ['ls-tree', '-r', '-z', '--full-name', '--name-only', rev, '--', rel || '.']).split('\0').filter(Boolean);
  const dir = mkdtempSync(join(tmpdir(), 'trellis-reach-'));
  temps.push(dir);
  const yaml = files.filter((f) => YAML.test(f));
  if (files.length === 1 && files[0] === rel) {
    // A single file.
    const out = join(dir, rel.split('/').pop()!);
    writeFileSync(out, git(top, ['show', `${rev}:${rel}`]));
    return { path: out, label, root: dir };
  }
  if (yaml.length === 0) throw new ReachArgError(`--diff ${label}: no YAML file under ${rel || '.'} at ${rev}`);
  for (const f of yaml) {
    const out = join(dir, rel ? relative(rel, f) : f);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, git(top, ['show', `${rev}:${f}`]));
  }
  return { path: dir, label, root: dir };
}
