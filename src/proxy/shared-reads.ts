/**
 * Reads of an accepted socket into one buffer shared by the process, as
 * `net.connect`'s `onread` option gives client sockets (the upstream pool
 * uses it: h1-pool.ts). Node 20 has no such option for the sockets a server
 * accepts, so each read there allocates: a 64 KiB backing store trimmed to
 * what came, an ArrayBuffer, a Buffer, then a trip through the stream
 * machinery to a 'data' event. With the shared buffer a read is a call with
 * a view of it. Measured with a server answering h2load (`--h1`, 10
 * connections, 120-byte requests, 1.2 KB answers): 10.4–11.5 µs a request
 * with 'data' events, 8.6–10.2 with the shared buffer in plaintext; over TLS
 * 12.5–14.4 against 11.8–12.9.
 *
 * It uses what the `onread` option itself sets up: the socket handle's
 * `useUserBuffer` and three symbol-keyed fields of the socket that Node's
 * read path (`onStreamRead`) and `pause`/`resume` consult. Node does not
 * export the symbols; they are found by their descriptions on a socket made
 * with `onread`. Where any of this is missing (another Node line), nothing
 * changes: `readIntoShared` says no and the caller listens for 'data'.
 * `TRELLIS_SHARED_READS=off` turns it off, for comparison.
 *
 * The handle keeps reading into the shared buffer for the rest of its life.
 * A connection handed on to code that wants a stream (Node's HTTP server,
 * an upgrade) gets `readIntoStream`: each read is then copied and pushed
 * into the socket's readable side, as Node does without the option, and
 * 'data', backpressure (a full readable side stops the handle) and the end
 * of the stream behave as before. Node's HTTP parser, when it takes the
 * handle over (`consume`), reads from the handle itself and never sees the
 * shared buffer.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';

interface ReadSymbols {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly next: symbol;
}

function findSymbols(): ReadSymbols | undefined {
  try {
    // The types know `onread` on connect's options only; the constructor takes it the same way.
    const probe = new Socket({ onread: { buffer: Buffer.alloc(1), callback: () => undefined } } as SocketConstructorOpts);
    const by = new Map(Object.getOwnPropertySymbols(probe).map((s) => [s.description, s]));
    probe.destroy();
    const buffer = by.get('kBuffer');
    const callback = by.get('kBufferCb');
    const next = by.get('kBufferGen');
    return buffer && callback && next ? { buffer, callback, next } : undefined;
  } catch {
    return undefined;
  }
}

const SYMBOLS = process.env['TRELLIS_SHARED_READS'] === 'off' ? undefined : findSymbols();

/** Large enough for any read the kernel hands over at once on these sockets (libuv asks for 64 KiB). */
const SHARED = Buffer.allocUnsafeSlow(64 * 1024);

type Fields = Record<symbol, unknown>;
type Handle = { useUserBuffer?: (b: Uint8Array) => void };

/**
 * From now on `socket`'s reads arrive as `onRead(view)`, a view of the
 * shared buffer that is valid only during the call: whatever must outlive it
 * is copied. Data the socket's readable side holds already still comes as
 * 'data'. False (and nothing changed) where this Node cannot.
 */
export function readIntoShared(socket: Socket, onRead: (view: Buffer) => void): boolean {
  const k = SYMBOLS;
  const handle = (socket as unknown as { _handle?: Handle })._handle;
  if (k === undefined || typeof handle?.useUserBuffer !== 'function') return false;
  handle.useUserBuffer(SHARED);
  const f = socket as unknown as Fields;
  f[k.buffer] = SHARED;
  f[k.callback] = (n: number) => { onRead(SHARED.subarray(0, n)); };
  f[k.next] = null;
  return true;
}

/** A socket given `readIntoShared` reads into its readable side again ('data' events), each read copied. */
export function readIntoStream(socket: Socket): void {
  if (SYMBOLS === undefined) return;
  (socket as unknown as Fields)[SYMBOLS.callback] = (n: number) => socket.push(Buffer.from(SHARED.subarray(0, n)));
}
