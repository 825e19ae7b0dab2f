/**
 * Start-up progress: one line per step. On a terminal the lines of steps
 * still running are redrawn in place (a spinner, then ✓ or ✗); otherwise
 * each step prints one plain line when it ends.
 */
import type { Writable } from 'node:stream';

export interface Step {
  /** Replaces the step's detail (on a terminal only: plain output prints only the end). */
  update(detail: string): void;
  done(detail?: string): void;
  fail(detail?: string): void;
}

export interface Progress {
  step(label: string): Step;
  /** A line of its own (a warning, a restart). */
  note(text: string): void;
  /** Stops redrawing; later output goes below. */
  close(): void;
}

type Line = { label: string; detail: string; state: 'run' | 'ok' | 'fail' | 'note' };

const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A progress display on `out`; `tty` decides between redrawn and plain lines. */
export function createProgress(out: Writable & { isTTY?: boolean; rows?: number }, tty = out.isTTY === true): Progress {
  return tty ? new TtyProgress(out) : new PlainProgress(out);
}

class PlainProgress implements Progress {
  constructor(readonly out: Writable) {}
  step(label: string): Step {
    let ended = false;
    const end = (mark: string, detail?: string) => {
      if (ended) return;
      ended = true;
      this.out.write(`${mark} ${label}${detail ? `  ${detail}` : ''}\n`);
    };
    return { update: () => {}, done: (d) => end('✓', d), fail: (d) => end('✗', d) };
  }
  note(text: string): void {
    this.out.write(`${text}\n`);
  }
  close(): void {}
}

class TtyProgress implements Progress {
  readonly #out: Writable & { rows?: number };
  /** Lines not yet final; everything above them has been printed for good. */
  #live: Line[] = [];
  #drawn = 0;
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Set when the live block grew taller than the screen: from then on, plain lines as steps end. */
  #plain = false;

  constructor(out: Writable & { rows?: number }) {
    this.#out = out;
  }

  step(label: string): Step {
    const line: Line = { label, detail: '', state: 'run' };
    this.#live.push(line);
    this.#tick();
    const set = (state: Line['state'], detail?: string) => {
      if (line.state !== 'run') return;
      line.state = state;
      if (detail !== undefined) line.detail = detail;
      if (this.#plain && !this.#closed) this.#out.write(`${this.#render(line)}\n`);
      else this.#draw();
    };
    return {
      update: (d) => { if (line.state === 'run') { line.detail = d; this.#draw(); } },
      done: (d) => set('ok', d),
      fail: (d) => set('fail', d),
    };
  }

  note(text: string): void {
    if (this.#plain) this.#out.write(`${text}\n`);
    else {
      this.#live.push({ label: text, detail: '', state: 'note' });
      this.#draw();
    }
  }

  close(): void {
    this.#draw();
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    this.#timer ??= setInterval(() => { this.#frame++; this.#draw(); }, 100);
    this.#timer.unref?.();
    this.#draw();
  }

  #draw(): void {
    if (this.#closed || this.#plain) return;
    const rows = Math.max(3, (this.#out.rows || 40) - 1);
    let text = this.#drawn ? `\x1b[${this.#drawn}F` : '';
    if (this.#live.length > rows) {
      // Cursor movement cannot reach above the screen: clear the block and go on with plain lines.
      this.#plain = true;
      // Lines that already ended are printed once more; the running ones print when they end.
      this.#out.write(text + '\x1b[J' + this.#live.filter((l) => l.state !== 'run').map((l) => `${this.#render(l)}\n`).join(''));
      this.#live = [];
      if (this.#timer) clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    for (const l of this.#live) text += `\x1b[2K${this.#render(l)}\n`;
    // Final lines at the top of the block have been printed for the last time.
    let i = 0;
    while (i < this.#live.length && this.#live[i]!.state !== 'run') i++;
    this.#live = this.#live.slice(i);
    this.#drawn = this.#live.length;
    if (!this.#live.some((l) => l.state === 'run') && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    this.#out.write(text);
  }

  #render(l: Line): string {
    if (l.state === 'note') return l.label;
    const mark = l.state === 'ok' ? '\x1b[32m✓\x1b[0m' : l.state === 'fail' ? '\x1b[31m✗\x1b[0m' : `\x1b[36m${SPIN[this.#frame % SPIN.length]}\x1b[0m`;
    return `${mark} ${l.label}${l.detail ? `  \x1b[2m${l.detail}\x1b[0m` : ''}`;
  }
}
