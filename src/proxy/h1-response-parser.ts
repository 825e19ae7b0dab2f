/**
 * An incremental HTTP/1.1 response parser (RFC 9112) for the proxy's own
 * upstream connections (h1-pool.ts): bytes in as the socket reads them,
 * a head, body chunks and an end out, with back-pressure (`pause` keeps the
 * unread rest of a buffer until `resume`). Pure: no socket, no clock.
 *
 * What it takes: a status line `HTTP/1.0` or `HTTP/1.1`; header lines
 * `name: value` (optional whitespace trimmed, names lowercased, order and
 * repeats kept; the hop-by-hop ones — Connection, Keep-Alive,
 * Transfer-Encoding, TE, Upgrade, Proxy-Connection and the fields the
 * Connection header lists — read for the framing and left out); a body framed by `Transfer-Encoding: chunked` (extensions
 * ignored, trailers kept), by `Content-Length` (repeats must agree), or by
 * the connection's end; no body for HEAD, 204 and 304. Interim 1xx responses
 * are skipped (RFC 9110 §15.2: a client must read them even unasked); a 101
 * is refused, since the proxy never asks to upgrade these connections.
 *
 * What it refuses, as an error that errors.ts classifies as a protocol error
 * (503 UC, or a cut response once it has begun): a malformed status line,
 * header line or chunk, obs-fold, Content-Length with Transfer-Encoding,
 * conflicting lengths, a head or trailer block over `maxHeaderSize`. Header
 * names and values are checked again by Node when they are written
 * downstream; this parser makes sure the framing is unambiguous.
 */

/** Response fields as undici hands them to a dispatch handler: lowercase names, a repeated field as an array. */
export type ResponseHeaders = Record<string, string | string[]>;

/** Where a parsed response goes. */
export interface ResponseSink {
  /** A final response head (status ≥ 200), hop-by-hop fields left out. */
  onHead(status: number, headers: ResponseHeaders): void;
  onBody(chunk: Buffer): void;
  /** The response is complete; the trailers of a chunked body (empty otherwise). */
  onEnd(trailers: ResponseHeaders): void;
}

/** An error with a code errors.ts classifies (undici's codes where undici had one). */
export function upstreamError(message: string, code: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/**
 * The prototype of parsed field objects: empty and without Object.prototype
 * behind it, so that a field named `constructor` or `__proto__` is a field
 * like any other, while V8 keeps the objects in fast mode (Object.create(null)
 * would make dictionaries).
 */
const FIELDS_PROTO = Object.create(null) as object;

/** Whether an object is fields this parser made (a fresh object, hop-by-hop fields left out). */
export function isParsedFields(h: object): boolean {
  return Object.getPrototypeOf(h) === FIELDS_PROTO;
}

export function newFields(): ResponseHeaders {
  return Object.create(FIELDS_PROTO) as ResponseHeaders;
}

function addField(h: ResponseHeaders, name: string, value: string): void {
  const cur = h[name];
  if (cur === undefined) h[name] = value;
  else if (typeof cur === 'string') h[name] = [cur, value];
  else cur.push(value);
}

const HEAD = 0;
const FIXED = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4;
const TRAILERS = 5;
const UNTIL_CLOSE = 6;
const DONE = 7;

const NO_TRAILERS: ResponseHeaders = Object.freeze({}) as ResponseHeaders;
const END_OF_HEAD = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
/** `buf.latin1Slice`: the string of bytes as they are, without `toString`'s argument handling. */
const latin1 = (buf: Buffer, start: number, end: number): string => (buf as Buffer & { latin1Slice(s: number, e: number): string }).latin1Slice(start, end);
/** Hex digits allowed in a chunk size: up to 2^48 bytes, well inside exact integers. */
const MAX_SIZE_DIGITS = 12;

const malformed = (what: string) => upstreamError(`the upstream's response is malformed: ${what}`, 'TRL_UPSTREAM_MALFORMED_RESPONSE');

const isWs = (c: number) => c === 32 || c === 9;

export class ResponseParser {
  /** After the head: whether the connection may carry another request. */
  keepAlive = false;
  /** The server's `Keep-Alive: timeout=N`, in ms; undefined without one. */
  keepAliveHintMs: number | undefined;
  /** Bytes arrived after the response ended (nothing was asked for): the connection must not be reused. */
  garbage = false;
  #state = DONE;
  #noBody = false;
  #remaining = 0;
  /** Bytes of a head or line not complete yet. */
  #partial: Buffer | undefined;
  /** CRLF bytes seen after a chunk's data. */
  #crlf = 0;
  #trailers: ResponseHeaders = NO_TRAILERS;
  #trailerBytes = 0;
  #paused = false;
  #executing = false;
  /** The buffer being parsed is reused by the caller afterwards (execute's `transient`). */
  #transient = false;
  #rest: Buffer | undefined;
  #halted = false;

  constructor(readonly sink: ResponseSink, readonly maxHeaderSize: number) {}

  /** Expects the response to a new request; `noBody`: it was a HEAD request. */
  reset(noBody: boolean): void {
    this.#state = HEAD;
    this.#noBody = noBody;
    this.#partial = undefined;
    this.#rest = undefined;
    this.#paused = false;
    this.#halted = false;
    this.garbage = false;
    this.keepAlive = false;
    this.keepAliveHintMs = undefined;
  }

  /** Between a request's end and the next: nothing expected. */
  get idle(): boolean {
    return this.#state === DONE;
  }

  /** The body ends with the connection (no length, not chunked). */
  get untilClose(): boolean {
    return this.#state === UNTIL_CLOSE;
  }

  /** No more callbacks (the call was aborted). */
  halt(): void {
    this.#halted = true;
    this.#rest = undefined;
  }

  pause(): void {
    this.#paused = true;
  }

  /** Goes on with the bytes left when paused; an error as `execute` gives one. */
  resume(): Error | undefined {
    if (!this.#paused) return undefined;
    this.#paused = false;
    if (this.#executing) return undefined;
    const rest = this.#rest;
    this.#rest = undefined;
    return rest ? this.execute(rest) : undefined;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The connection ended: completes a body that runs to the end; else an error when a response was under way. */
  finish(): Error | undefined {
    if (this.#state === UNTIL_CLOSE) { this.#complete(NO_TRAILERS); return undefined; }
    if (this.#state === DONE) return undefined;
    return upstreamError('the upstream closed the connection before the response ended', 'UND_ERR_SOCKET');
  }

  /**
   * Parses what arrived; an error (the connection is then unusable) or
   * undefined. `transient`: the caller reuses `chunk`'s memory once this
   * returns (a socket's `onread` buffer), so what the parser keeps or hands
   * on — body chunks, a partial line, bytes left while paused — is copied.
   */
  execute(chunk: Buffer, transient = false): Error | undefined {
    if (this.#paused && !this.#executing) {
      this.#rest = this.#rest ? Buffer.concat([this.#rest, chunk]) : transient ? copyOf(chunk) : chunk;
      return undefined;
    }
    let buf = chunk;
    if (this.#partial) {
      // (A concatenation is new memory: nothing of it needs copying.)
      buf = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
      transient = false;
    }
    this.#transient = transient;
    this.#executing = true;
    try {
      this.#run(buf);
      return undefined;
    } catch (err) {
      this.#state = DONE;
      this.#halted = true;
      return err as Error;
    } finally {
      this.#executing = false;
      this.#transient = false;
    }
  }

  /** What of the buffer being parsed outlives the call: a copy when the buffer is transient. */
  #keep(b: Buffer): Buffer {
    return this.#transient ? copyOf(b) : b;
  }

  #run(buf: Buffer): void {
    let pos = 0;
    while (pos < buf.length && !this.#halted) {
      if (this.#paused) { this.#rest = this.#keep(buf.subarray(pos)); return; }
      switch (this.#state) {
        case HEAD: {
          const end = buf.indexOf(END_OF_HEAD, pos);
          if (end < 0 || end - pos > this.maxHeaderSize) {
            // (The bytes may end inside the CRLF CRLF that ends a head of just the limit's size.)
            if (buf.length - pos > this.maxHeaderSize + 3) throw malformed(`its head is over ${this.maxHeaderSize} bytes`);
            this.#partial = this.#keep(buf.subarray(pos));
            return;
          }
          const head = latin1(buf, pos, end);
          pos = end + 4;
          this.#head(head);
          // (#head moved the state on; the switch's narrowing does not know.)
          if ((this.#state as number) === DONE) { this.#complete(NO_TRAILERS, buf, pos); return; }
          break;
        }
        case FIXED:
        case CHUNK_DATA: {
          const n = Math.min(this.#remaining, buf.length - pos);
          const part = n === buf.length && pos === 0 ? buf : buf.subarray(pos, pos + n);
          pos += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = this.#state === FIXED ? DONE : CHUNK_END;
          this.sink.onBody(this.#keep(part));
          if (this.#state === DONE) { this.#complete(NO_TRAILERS, buf, pos); return; }
          break;
        }
        case CHUNK_END: {
          const want = this.#crlf === 0 ? 13 : 10;
          if (buf[pos] !== want) throw malformed('a chunk does not end with CRLF');
          pos++;
          if (++this.#crlf === 2) { this.#crlf = 0; this.#state = CHUNK_SIZE; }
          break;
        }
        case CHUNK_SIZE:
        case TRAILERS: {
          const eol = buf.indexOf(CRLF, pos);
          if (eol < 0) {
            if (buf.length - pos > this.maxHeaderSize) throw malformed('a chunk size or trailer line is too long');
            this.#partial = this.#keep(buf.subarray(pos));
            return;
          }
          const line = latin1(buf, pos, eol);
          pos = eol + 2;
          if (this.#state === CHUNK_SIZE) this.#chunkSize(line);
          else if (line.length === 0) { this.#complete(this.#trailers, buf, pos); return; }
          else this.#trailer(line);
          break;
        }
        case UNTIL_CLOSE: {
          const part = pos === 0 ? buf : buf.subarray(pos);
          pos = buf.length;
          this.sink.onBody(this.#keep(part));
          break;
        }
        default:
          // A response ended and no request is on its way: whatever came is not an answer to anything.
          this.garbage = true;
          return;
      }
    }
  }

  // The head's framing fields, read by #field (instance fields, so that the per-line work is a small function V8 optimizes early).
  #length = -1;
  #te: string | undefined;
  #close = false;
  #keepAliveToken = false;
  #hint: number | undefined;
  #listed: string[] | undefined;

  #head(head: string): void {
    let eol = head.indexOf('\r\n');
    if (eol < 0) eol = head.length;
    const status = statusOf(head, eol);
    const minor = head.charCodeAt(7) - 48;
    const headers = newFields();
    this.#length = -1;
    this.#te = undefined;
    this.#close = false;
    this.#keepAliveToken = false;
    this.#hint = undefined;
    this.#listed = undefined;
    let at = eol + 2;
    while (at < head.length) {
      let e = head.indexOf('\r\n', at);
      if (e < 0) e = head.length;
      this.#field(head, at, e, headers);
      at = e + 2;
    }
    if (status < 200) {
      if (status === 101) throw malformed('101 Switching Protocols without an upgrade request');
      return; // interim: the final response follows
    }
    this.keepAlive = !this.#close && (minor === 1 || this.#keepAliveToken);
    this.keepAliveHintMs = this.#hint;
    // Fields the Connection header names are hop-by-hop too (RFC 9110 §7.6.1).
    // (Set by #field; the compiler's narrowing does not see that.)
    const listed = this.#listed as string[] | undefined;
    if (listed) for (const name of listed) delete headers[name];
    const length = this.#length;
    const te = this.#te as string | undefined;
    let next: number;
    if (this.#noBody || status === 204 || status === 304) next = DONE;
    else if (te !== undefined) {
      if (length >= 0) throw malformed('both Content-Length and Transfer-Encoding');
      const codings = te.toLowerCase().split(',');
      next = codings[codings.length - 1]!.trim() === 'chunked' ? CHUNK_SIZE : UNTIL_CLOSE;
    } else if (length >= 0) {
      next = length === 0 ? DONE : FIXED;
      this.#remaining = length;
    } else {
      next = UNTIL_CLOSE;
    }
    if (next === UNTIL_CLOSE) this.keepAlive = false;
    if (next === CHUNK_SIZE) { this.#trailers = NO_TRAILERS; this.#trailerBytes = 0; this.#crlf = 0; }
    this.#state = next;
    this.sink.onHead(status, headers);
  }

  /** One header line, `head[at, e)`: into `headers`, or into the framing state when it is hop-by-hop. */
  #field(head: string, at: number, e: number, headers: ResponseHeaders): void {
    if (isWs(head.charCodeAt(at))) throw malformed('obsolete line folding in a header');
    const colon = head.indexOf(':', at);
    if (colon <= at || colon >= e || isWs(head.charCodeAt(colon - 1))) throw malformed(`header line "${head.slice(at, Math.min(e, at + 60))}"`);
    let vs = colon + 1;
    let ve = e;
    while (vs < ve && isWs(head.charCodeAt(vs))) vs++;
    while (ve > vs && isWs(head.charCodeAt(ve - 1))) ve--;
    const name = lowerName(head.slice(at, colon));
    const value = head.slice(vs, ve);
    switch (name) {
      case 'content-length': {
        const n = contentLength(value);
        if (n < 0 || (this.#length >= 0 && n !== this.#length)) throw malformed(`content-length "${value.slice(0, 40)}"`);
        this.#length = n;
        headers[name] = value;
        return;
      }
      // Hop-by-hop fields end here: they describe this connection, not the response.
      case 'transfer-encoding': this.#te = this.#te === undefined ? value : `${this.#te}, ${value}`; return;
      case 'connection': this.#connection(value); return;
      case 'keep-alive': this.#hint = keepAliveTimeout(value) ?? this.#hint; return;
      case 'te': case 'upgrade': case 'proxy-connection': return;
      default: addField(headers, name, value);
    }
  }

  #connection(value: string): void {
    const v = value.toLowerCase();
    if (v === 'keep-alive') { this.#keepAliveToken = true; return; }
    if (v === 'close') { this.#close = true; return; }
    for (const t of v.split(',')) {
      const token = t.trim();
      if (token === 'close') this.#close = true;
      else if (token === 'keep-alive') this.#keepAliveToken = true;
      else if (token) (this.#listed ??= []).push(token);
    }
  }


  #chunkSize(line: string): void {
    let size = 0;
    let i = 0;
    for (; i < line.length; i++) {
      const c = line.charCodeAt(i);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      size = size * 16 + d;
    }
    if (i === 0 || i > MAX_SIZE_DIGITS) throw malformed(`chunk size "${line.slice(0, 40)}"`);
    if (i < line.length) {
      let j = i;
      while (j < line.length && isWs(line.charCodeAt(j))) j++;
      if (j < line.length && line.charCodeAt(j) !== 59 /* ; */) throw malformed(`chunk size "${line.slice(0, 40)}"`);
    }
    if (size === 0) { this.#state = TRAILERS; return; }
    this.#remaining = size;
    this.#state = CHUNK_DATA;
  }

  #trailer(line: string): void {
    this.#trailerBytes += line.length + 2;
    if (this.#trailerBytes > this.maxHeaderSize) throw malformed(`its trailers are over ${this.maxHeaderSize} bytes`);
    if (isWs(line.charCodeAt(0))) throw malformed('obsolete line folding in a trailer');
    const colon = line.indexOf(':');
    if (colon <= 0 || isWs(line.charCodeAt(colon - 1))) throw malformed(`trailer line "${line.slice(0, 60)}"`);
    if (this.#trailers === NO_TRAILERS) this.#trailers = newFields();
    addField(this.#trailers, line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }

  #complete(trailers: ResponseHeaders, buf?: Buffer, pos = 0): void {
    this.#state = DONE;
    if (this.#halted) return;
    // Nothing is pipelined: bytes after the end answer no request.
    if (buf !== undefined && pos < buf.length) this.garbage = true;
    this.sink.onEnd(trailers);
  }
}

/** The status of a status line `HTTP/1.x NNN reason` ending at `eol`; throws for anything else. */
function statusOf(head: string, eol: number): number {
  if (eol < 12 || !head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 32 || (eol > 12 && head.charCodeAt(12) !== 32)) {
    throw malformed(`status line "${head.slice(0, Math.min(eol, 60))}"`);
  }
  const minor = head.charCodeAt(7) - 48;
  const s0 = head.charCodeAt(9) - 48, s1 = head.charCodeAt(10) - 48, s2 = head.charCodeAt(11) - 48;
  if ((minor !== 0 && minor !== 1) || s0 < 1 || s0 > 9 || s1 < 0 || s1 > 9 || s2 < 0 || s2 > 9) {
    throw malformed(`status line "${head.slice(0, Math.min(eol, 60))}"`);
  }
  return s0 * 100 + s1 * 10 + s2;
}

/**
 * Lowercase names seen before, by the name as sent: most responses repeat a
 * few names in the same case. The names kept are V8's internalized copies
 * (a property key's own string): a fields object indexed with one finds the
 * property without looking the string up in V8's string table first, as it
 * must for a string just cut from a head (simpleHead 4 % faster in a loop).
 */
const LOWER = new Map<string, string>();
const LOWER_MAX = 512;

export function lowerName(raw: string): string {
  const hit = LOWER.get(raw);
  if (hit !== undefined) return hit;
  const lower = raw.toLowerCase();
  if (LOWER.size >= LOWER_MAX) return lower;
  const key = Object.keys({ [lower]: 0 })[0]!;
  LOWER.set(raw, key);
  return key;
}

/** The `timeout=N` of a Keep-Alive value, in ms. */
function keepAliveTimeout(v: string): number | undefined {
  // What Node's servers send: `timeout=5`.
  const lower = v.startsWith('timeout=') ? v : v.toLowerCase();
  let i = lower.indexOf('timeout');
  if (i < 0) return undefined;
  i += 7;
  while (isWs(lower.charCodeAt(i))) i++;
  if (lower.charCodeAt(i) !== 61 /* = */) return undefined;
  i++;
  while (isWs(lower.charCodeAt(i))) i++;
  let n = 0;
  const start = i;
  for (let c = lower.charCodeAt(i) - 48; c >= 0 && c <= 9 && i - start < 10; c = lower.charCodeAt(++i) - 48) n = n * 10 + c;
  return i > start ? n * 1000 : undefined;
}

/** A copy in memory of its own (small ones from Node's shared pool). */
function copyOf(b: Buffer): Buffer {
  const c = Buffer.allocUnsafe(b.length);
  b.copy(c);
  return c;
}

/** A Content-Length value: its digits as a number, -1 when it is not one. */
function contentLength(v: string): number {
  if (v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}
