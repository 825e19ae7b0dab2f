/**
 * Reads the SNI (server_name) from a TLS ClientHello without terminating
 * TLS, the way Envoy's tls_inspector does: TLS records of type handshake →
 * the first handshake message, which must be a ClientHello (reassembled when
 * it spans several records) → its extensions → server_name's host_name.
 *
 * `parseClientHello` is pure: it looks at the bytes that have arrived and
 * says "need more", the result, or why the input is not a ClientHello; it
 * never throws. `peekClientHello` buffers a socket's first bytes (bounded in
 * size and time) until it can decide, and hands them back untouched so they
 * can be forwarded as they are.
 */
import type { Socket } from 'node:net';
import type { ErrorKind } from './errors.js';

/** How the proxy closes a connection whose ClientHello it cannot use (codes permanent, as errors.ts's). */
export const HELLO_ERRORS = {
  /** What arrived is not a TLS ClientHello (or not one the proxy takes): a downstream protocol error. */
  NOT_A_HELLO: { code: 'TRL_PROXY_NOT_CLIENT_HELLO', status: 400, flag: 'DPE', source: 'downstream', message: 'not a TLS ClientHello' },
  /** The ClientHello did not arrive in time. */
  TIMEOUT: { code: 'TRL_PROXY_CLIENT_HELLO_TIMEOUT', status: 408, flag: 'DT', source: 'downstream', message: 'ClientHello timeout' },
} as const satisfies Record<string, ErrorKind>;

/** What a complete ClientHello says. */
export interface ClientHello {
  /** The host_name of the server_name extension, lowercase, without a trailing dot; undefined when the client sent none. */
  readonly serverName: string | undefined;
  /** ALPN protocol names offered, in order (empty when none). */
  readonly alpn: readonly string[];
}

export type HelloError = 'NOT_TLS' | 'MALFORMED' | 'TOO_LARGE' | 'TIMEOUT' | 'CLOSED';

export type ParseResult =
  | { readonly kind: 'more' }
  | { readonly kind: 'hello'; readonly hello: ClientHello }
  | { readonly kind: 'error'; readonly code: HelloError; readonly reason: string };

/** Envoy's tls_inspector `max_client_hello_size` default. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;
/** Envoy's `listener_filters_timeout` default: the ClientHello must have arrived within it. */
export const CLIENT_HELLO_TIMEOUT_MS = 15_000;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
/** RFC 8446 §5.1: a plaintext record's fragment is at most 2^14 bytes. */
const MAX_RECORD = 16384;

const MORE: ParseResult = Object.freeze({ kind: 'more' });
const error = (code: HelloError, reason: string): ParseResult => ({ kind: 'error', code, reason });

/**
 * Decides on the bytes that have arrived: `more` while the ClientHello is
 * incomplete (and could still be one), the hello, or an error saying why the
 * input is not a usable ClientHello. Input past the ClientHello is ignored.
 */
export function parseClientHello(buf: Buffer, maxBytes = MAX_CLIENT_HELLO_BYTES): ParseResult {
  if (buf.length === 0) return MORE;
  if (buf[0] !== RECORD_HANDSHAKE) {
    return error('NOT_TLS', (buf[0]! & 0x80) !== 0 ? 'an SSLv2-style ClientHello (no SNI)' : `the first byte is 0x${buf[0]!.toString(16).padStart(2, '0')}, not a TLS handshake record`);
  }
  // Reassemble the handshake bytes from consecutive handshake records.
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  let at = 0;
  while (need < 0 || have < need) {
    if (buf.length < at + 5) return buf.length > maxBytes ? error('TOO_LARGE', `no ClientHello within ${maxBytes} bytes`) : MORE;
    if (buf[at] !== RECORD_HANDSHAKE) return error('MALFORMED', `record ${parts.length + 1} is of type ${buf[at]}, not handshake, before the ClientHello ended`);
    if (buf[at + 1] !== 3) return error('NOT_TLS', `record version ${buf[at + 1]}.${buf[at + 2]} is not TLS`);
    const len = buf.readUInt16BE(at + 3);
    if (len === 0 || len > MAX_RECORD) return error('MALFORMED', `a handshake record of ${len} bytes`);
    if (at + 5 + len > maxBytes) return error('TOO_LARGE', `the ClientHello is larger than ${maxBytes} bytes`);
    if (buf.length < at + 5 + len) return MORE;
    const frag = buf.subarray(at + 5, at + 5 + len);
    parts.push(frag);
    have += len;
    at += 5 + len;
    if (need < 0 && have >= 4) {
      const head = parts.length === 1 ? frag : Buffer.concat(parts);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return error('MALFORMED', `the first handshake message is of type ${head[0]}, not ClientHello`);
      need = 4 + head.readUIntBE(1, 3);
      if (need > maxBytes) return error('TOO_LARGE', `a ClientHello of ${need} bytes is larger than ${maxBytes}`);
    }
  }
  const hs = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return parseBody(hs.subarray(4, need));
}

/** The ClientHello body (after its 4-byte handshake header). */
function parseBody(b: Buffer): ParseResult {
  const r = new Reader(b);
  // legacy_version, random, legacy_session_id, cipher_suites, legacy_compression_methods
  if (!r.skip(2 + 32)) return error('MALFORMED', 'the ClientHello ends inside its random');
  const sid = r.u8();
  if (sid === undefined || sid > 32 || !r.skip(sid)) return error('MALFORMED', 'a bad session id');
  const cs = r.u16();
  if (cs === undefined || cs < 2 || cs % 2 !== 0 || !r.skip(cs)) return error('MALFORMED', 'bad cipher suites');
  const cm = r.u8();
  if (cm === undefined || cm < 1 || !r.skip(cm)) return error('MALFORMED', 'bad compression methods');
  if (r.left === 0) return { kind: 'hello', hello: { serverName: undefined, alpn: [] } };
  const extLen = r.u16();
  if (extLen === undefined || extLen !== r.left) return error('MALFORMED', 'the extensions do not fill the ClientHello');
  let serverName: string | undefined;
  let alpn: string[] = [];
  const seen = new Set<number>();
  while (r.left > 0) {
    const type = r.u16();
    const len = r.u16();
    if (type === undefined || len === undefined || len > r.left) return error('MALFORMED', 'an extension runs past the ClientHello');
    if (seen.has(type)) return error('MALFORMED', `extension ${type} appears twice`);
    seen.add(type);
    const data = r.take(len)!;
    if (type === EXT_SERVER_NAME) {
      const sn = serverNameOf(data);
      if (typeof sn === 'object') return sn;
      serverName = sn;
    } else if (type === EXT_ALPN) {
      const a = alpnOf(data);
      if (!a) return error('MALFORMED', 'a bad ALPN extension');
      alpn = a;
    }
  }
  return { kind: 'hello', hello: { serverName, alpn } };
}

/** RFC 6066 §3: a list of (name_type, name); the host_name entry, validated and lowercased. */
function serverNameOf(data: Buffer): string | undefined | ParseResult {
  const r = new Reader(data);
  const listLen = r.u16();
  if (listLen === undefined || listLen !== r.left || listLen === 0) return error('MALFORMED', 'a bad server_name list');
  let name: string | undefined;
  while (r.left > 0) {
    const type = r.u8();
    const len = r.u16();
    if (type === undefined || len === undefined || len > r.left) return error('MALFORMED', 'a server_name entry runs past its list');
    const bytes = r.take(len)!;
    if (type !== 0) continue;
    if (name !== undefined) return error('MALFORMED', 'two host_name entries in server_name');
    if (len === 0 || len > 255) return error('MALFORMED', `a host_name of ${len} bytes`);
    for (const c of bytes) {
      // Letters, digits, '-', '.', '_' and '*' (some clients send them); nothing that could smuggle another name.
      const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x2a;
      if (!ok) return error('MALFORMED', `the host_name has the byte 0x${c.toString(16).padStart(2, '0')}`);
    }
    name = bytes.toString('latin1').toLowerCase();
    if (name.endsWith('.')) name = name.slice(0, -1);
    if (name === '') return error('MALFORMED', 'an empty host_name');
  }
  return name;
}

function alpnOf(data: Buffer): string[] | undefined {
  const r = new Reader(data);
  const listLen = r.u16();
  if (listLen === undefined || listLen !== r.left) return undefined;
  const out: string[] = [];
  while (r.left > 0) {
    const len = r.u8();
    if (!len || len > r.left) return undefined;
    out.push(r.take(len)!.toString('latin1'));
  }
  return out;
}

/** Bounds-checked big-endian reads; undefined past the end. */
class Reader {
  #at = 0;
  constructor(readonly b: Buffer) {}
  get left(): number { return this.b.length - this.#at; }
  skip(n: number): boolean {
    if (n > this.left) return false;
    this.#at += n;
    return true;
  }
  u8(): number | undefined {
    return this.left >= 1 ? this.b[this.#at++] : undefined;
  }
  u16(): number | undefined {
    if (this.left < 2) return undefined;
    const v = this.b.readUInt16BE(this.#at);
    this.#at += 2;
    return v;
  }
  take(n: number): Buffer | undefined {
    if (n > this.left) return undefined;
    const v = this.b.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }
}

export type PeekResult =
  | { readonly ok: true; readonly hello: ClientHello; readonly bytes: Buffer }
  | { readonly ok: false; readonly code: HelloError; readonly reason: string; readonly bytes: Buffer };

export interface PeekOptions {
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
}

/**
 * Reads `socket` (paused or flowing) until its first bytes are a complete
 * ClientHello or cannot be one, within `timeoutMs` and `maxBytes`, then
 * pauses it and calls `done` once with what it saw and every byte read (to
 * be forwarded first). The socket's end or close before that is `CLOSED`.
 * The caller decides what to do with the socket; this never destroys it.
 */
export function peekClientHello(socket: Socket, o: PeekOptions, done: (r: PeekResult) => void): void {
  const maxBytes = o.maxBytes ?? MAX_CLIENT_HELLO_BYTES;
  const timeoutMs = o.timeoutMs ?? CLIENT_HELLO_TIMEOUT_MS;
  let buf: Buffer = Buffer.alloc(0);
  let settled = false;
  const finish = (r: PeekResult) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onEnd);
    socket.pause();
    done(r);
  };
  const fail = (code: HelloError, reason: string) => finish({ ok: false, code, reason, bytes: buf });
  const onData = (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const r = parseClientHello(buf, maxBytes);
    if (r.kind === 'hello') finish({ ok: true, hello: r.hello, bytes: buf });
    else if (r.kind === 'error') fail(r.code, r.reason);
  };
  const onEnd = () => fail('CLOSED', `the client closed after ${buf.length} bytes, before its ClientHello was complete`);
  const timer = setTimeout(() => fail('TIMEOUT', `no complete ClientHello within ${timeoutMs} ms (${buf.length} bytes arrived)`), timeoutMs);
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  socket.once('error', onEnd);
  socket.resume();
}
