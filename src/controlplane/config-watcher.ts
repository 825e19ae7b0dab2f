/**
 * Watches a configuration directory and reloads it when a YAML file is
 * added, changed or removed. It polls (fs.watch with `recursive` is not
 * reliable on Linux for Node 20): every `pollMs` it lists the YAML files and
 * compares their mtime and size; a difference starts a `debounceMs` timer
 * (restarted by further differences) after which every file is read and the
 * ConfigStore decides what is in force.
 */
import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { yamlFiles } from '../api/load.js';
import { ConfigStore, type ConfigUpdate, type FileRead } from './config-store.js';

export interface ConfigWatcherOptions {
  /** The directory (or file) to watch. */
  readonly path: string;
  /** Interval between directory scans; 250 ms by default. */
  readonly pollMs?: number;
  /** Quiet time after a change before reloading; 100 ms by default. */
  readonly debounceMs?: number;
  /** File names in messages are relative to this directory when below it; the process's cwd by default. */
  readonly cwd?: string;
  /** Called after every reload (the first one included), whether or not the configuration changed. */
  readonly onUpdate: (u: ConfigUpdate) => void;
}

export interface ConfigWatcher {
  /** Loads the configuration now, then starts watching. Returns the first update. */
  start(): ConfigUpdate;
  /** Reloads now (used by tests and on SIGHUP). */
  reload(): ConfigUpdate;
  /** The text of every file version in force (ConfigStore.sources). */
  sources(): readonly { readonly file: string; readonly text: string }[];
  close(): void;
}

export function watchConfig(opts: ConfigWatcherOptions): ConfigWatcher {
  const store = new ConfigStore();
  const cwd = opts.cwd ?? process.cwd();
  const shown = (f: string) => {
    const rel = relative(cwd, f);
    return rel.startsWith('..') || rel === '' ? f : rel;
  };
  let signature = '';
  let poll: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;

  const scan = (): string => {
    let files: string[];
    try {
      files = yamlFiles(opts.path);
    } catch (e) {
      return `error:${(e as NodeJS.ErrnoException).code ?? ''}`;
    }
    const parts: string[] = [];
    for (const f of files) {
      try {
        const st = statSync(f);
        parts.push(`${f}:${st.mtimeMs}:${st.size}`);
      } catch {
        parts.push(`${f}:gone`);
      }
    }
    return parts.join('\n');
  };

  const reload = (): ConfigUpdate => {
    signature = scan();
    const reads = new Map<string, FileRead>();
    let files: string[] = [];
    try {
      files = yamlFiles(opts.path);
    } catch (e) {
      reads.set(shown(opts.path), { error: e as Error });
    }
    for (const f of files) {
      try {
        reads.set(shown(f), { text: readFileSync(f, 'utf8') });
      } catch (e) {
        reads.set(shown(f), { error: e as Error });
      }
    }
    const u = store.update(reads);
    opts.onUpdate(u);
    return u;
  };

  const tick = () => {
    const now = scan();
    if (now === signature) return;
    signature = now;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      reload();
    }, opts.debounceMs ?? 100);
  };

  return {
    start() {
      const u = reload();
      poll = setInterval(tick, opts.pollMs ?? 250);
      poll.unref();
      return u;
    },
    reload,
    sources: () => store.sources(),
    close() {
      if (poll) clearInterval(poll);
      if (debounce) clearTimeout(debounce);
      poll = debounce = undefined;
    },
  };
}
