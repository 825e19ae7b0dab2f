/**
 * A raw HTTP/1.1 client for zero-trust tests: it writes the request line and
 * header lines exactly as given (a target such as `/a/../b`, `%2F`, `#frag`
 * or `//x`, repeated headers, trailing spaces — bytes Node's own client or
 * undici would alter or refuse), over plaintext or TLS with a chosen client
 * certificate, and reads the answer until the server closes. Also CONNECT:
 * the tunnel's answer, then bytes through the tunnel.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** A parsed answer; `status` 0 when the connection closed before a status line. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  /** Whether the TLS handshake completed (false for plaintext). */
  readonly secured: boolean;
  /** The socket error, if one ended the exchange. */
  readonly error: string | undefined;
}

export interface RawRequest {
  readonly method: string;
  /** The request target, sent as is. */
  readonly target: string;
  readonly host: string;
  /** Extra header lines (name, value), sent in order, values as given. */
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: string;
}

/** `host:port` → parts. */
function split(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Opens a connection: TLS (no server-name check: the tests look at the client side) when `tls` is given. */
function open(address: string, tls: ConnectionOptions | undefined, ready: (s: Socket) => void): Socket {
  const { host, port } = split(address);
  if (!tls) {
    const s = connect({ host, port }, () => ready(s));
    return s;
  }
  const s = tlsConnect({ host, port, checkServerIdentity: () => undefined, ...tls }, () => ready(s));
  return s;
}

/** The head of a request: request line, host, the extra lines, connection: close. */
export function requestHead(r: RawRequest): string {
  let head = `${r.method} ${r.target} HTTP/1.1\r\nhost: ${r.host}\r\n`;
  for (const [k, v] of r.headers ?? []) head += `${k}: ${v}\r\n`;
  if (r.body !== undefined) head += `content-length: ${Buffer.byteLength(r.body)}\r\n`;
  return `${head}connection: close\r\n\r\n${r.body ?? ''}`;
}

/** Decodes a chunked body (the answer is complete: the server closed). */
function dechunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = raw.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(raw.toString('latin1', i, eol).split(';')[0]!, 16);
    if (!(size > 0)) break;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Parses what a server sent before closing. */
export function parseAnswer(raw: Buffer, secured: boolean, error: string | undefined): RawAnswer {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return { status: 0, headers: [], body: raw.toString('latin1'), secured, error };
  const lines = raw.toString('latin1', 0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers = lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const);
  const rest = raw.subarray(end + 4);
  const chunked = headers.some(([k, v]) => k === 'transfer-encoding' && /chunked/i.test(v));
  return { status, headers, body: (chunked ? dechunk(rest) : rest).toString('utf8'), secured, error };
}

/** The first value of a header of an answer. */
export function header(a: RawAnswer, name: string): string | undefined {
  return a.headers.find(([k]) => k === name)?.[1];
}

/** Sends one request (connection: close) and reads the answer until the server closes (5 s at most). */
export function rawHttp(address: string, r: RawRequest, tls?: ConnectionOptions): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let secured = false;
    let error: string | undefined;
    const s = open(address, tls, (sock) => { secured = !!tls; sock.write(requestHead(r)); });
    const timer = setTimeout(() => s.destroy(), 5_000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: Error & { code?: string }) => { error = e.code ?? e.message; });
    s.once('close', () => { clearTimeout(timer); resolve(parseAnswer(Buffer.concat(chunks), secured, error)); });
  });
}

/** What a CONNECT gave: the tunnel's answer and, when it opened, the answer to `then` sent through it. */
export interface TunnelAnswer {
  readonly connect: RawAnswer;
  readonly through?: RawAnswer;
}

/**
 * `CONNECT <authority>`; when the answer is 200, sends the HTTP request
 * `then` through the tunnel and reads its answer until the far end closes.
 */
export function rawConnect(address: string, authority: string, then: RawRequest, tls?: ConnectionOptions): Promise<TunnelAnswer> {
  return new Promise((resolve) => {
    let seen = Buffer.alloc(0);
    let secured = false;
    let error: string | undefined;
    let opened: RawAnswer | undefined;
    const s = open(address, tls, (sock) => { secured = !!tls; sock.write(`CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n\r\n`); });
    const timer = setTimeout(() => s.destroy(), 5_000);
    s.on('data', (c: Buffer) => {
      seen = Buffer.concat([seen, c]);
      if (opened) return;
      const end = seen.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = parseAnswer(seen.subarray(0, end + 4), secured, undefined);
      if (head.status !== 200) return; // a refusal: read it all until the close
      opened = head;
      seen = seen.subarray(end + 4);
      s.write(requestHead(then));
    });
    s.on('error', (e: Error & { code?: string }) => { error = e.code ?? e.message; });
    s.once('close', () => {
      clearTimeout(timer);
      if (!opened) { resolve({ connect: parseAnswer(seen, secured, error) }); return; }
      resolve({ connect: opened, through: parseAnswer(seen, secured, error) });
    });
  });
}
