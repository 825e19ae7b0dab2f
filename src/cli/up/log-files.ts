/** Reading the log files of the state dir: the last lines, and following a file as it grows. */
import { closeSync, openSync, readSync, statSync, watch } from 'node:fs';

/** The last `n` lines of a file (`[]` when it does not exist). Reads at most the last 1 MiB. */
export function tailLines(file: string, n: number): string[] {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return [];
  }
  const len = Math.min(size, 1 << 20);
  const buf = Buffer.alloc(len);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, len, size - len);
  } finally {
    closeSync(fd);
  }
  const lines = buf.toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return n <= 0 ? [] : lines.slice(-n);
}

/**
 * Calls `onText` with what is appended to `file` from byte `from` on, until
 * `signal` aborts. A file that shrinks (truncated, replaced) is read again
 * from its start; a file that does not exist yet is waited for.
 */
export function followFile(file: string, from: number, onText: (text: string) => void, signal: AbortSignal): Promise<void> {
  let pos = from;
  const readMore = () => {
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return;
    }
    if (size < pos) pos = 0;
    if (size === pos) return;
    const buf = Buffer.alloc(size - pos);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, pos);
    } finally {
      closeSync(fd);
    }
    pos = size;
    onText(buf.toString('utf8'));
  };
  return new Promise((resolve) => {
    // fs.watch misses changes on some file systems; a slow poll backs it up.
    let watcher: ReturnType<typeof watch> | undefined;
    const rewatch = () => {
      if (watcher) return;
      try {
        watcher = watch(file, { persistent: true }, readMore);
        watcher.on('error', () => { watcher?.close(); watcher = undefined; });
      } catch {
        watcher = undefined;
      }
    };
    const timer = setInterval(() => { rewatch(); readMore(); }, 250);
    rewatch();
    readMore();
    signal.addEventListener('abort', () => {
      clearInterval(timer);
      watcher?.close();
      resolve();
    }, { once: true });
  });
}

/** Size of a file, 0 when it does not exist. */
export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
