/**
 * Joins two connected sockets into one byte stream each way (an upgraded
 * HTTP/1.1 connection: WebSocket): back-pressure through pipe(), a
 * half-close (FIN) passed on as a half-close, a side that closes without its
 * end of stream (a reset, an error) cutting the other, and an idle limit —
 * no byte either way for `idleTimeoutMs` closes both. Every byte of the
 * stream is read from one socket and written to the other, so the idle
 * timer of one socket sees both directions (Node refreshes it on reads and
 * on writes).
 */
import type { Socket } from 'node:net';

export interface SpliceOptions {
  /** No bytes either way for this long closes both sides; 0: no limit. */
  readonly idleTimeoutMs: number;
  /** Bytes read from `a` (going to `b`), and from `b`; for the record. */
  readonly fromA?: (n: number) => void;
  readonly fromB?: (n: number) => void;
  /** Called once, when both sockets have closed. */
  readonly onClose?: () => void;
}

const ignore = (): void => undefined;

export function splice(a: Socket, b: Socket, o: SpliceOptions): void {
  let closed = 0;
  const link = (from: Socket, to: Socket, count: ((n: number) => void) | undefined) => {
    from.allowHalfOpen = true;
    // Errors end in 'close' with hadError (below); an 'error' without a listener would crash the process.
    from.on('error', ignore);
    from.once('close', (hadError) => {
      // A clean end was passed on by pipe(); anything else cuts the other side too.
      if (hadError || !from.readableEnded) to.destroy();
      if (++closed === 2) o.onClose?.();
    });
    if (count) from.on('data', (chunk: Buffer) => count(chunk.length));
    from.pipe(to);
  };
  link(a, b, o.fromA);
  link(b, a, o.fromB);
  b.setTimeout(0);
  if (o.idleTimeoutMs > 0) a.setTimeout(o.idleTimeoutMs, () => { a.destroy(); b.destroy(); });
  else a.setTimeout(0);
  a.resume();
  b.resume();
}
