/**
 * The listeners' own HTTP/1.1 server for the requests that make up nearly
 * all mesh traffic: a head that arrives whole, no body, no upgrade. Node's
 * `http.Server` spends more per request on its machinery (a Readable per
 * request, a Writable per response, header validation and events) than the
 * proxy spends on routing it; this reads the head off the socket, hands the
 * proxy's handler a request and a response with the shape it uses of
 * Node's (`FastRequest`, `FastResponse`), and writes the response head and
 * body with one write. Reads land in the process's shared read buffer
 * (shared-reads.ts) where this Node allows it: no allocation per read.
 *
 * Anything else goes to Node's server, which then keeps the connection
 * (`FastHost.fallback`, at a request boundary, with the bytes not yet
 * handled): a head split across reads (Node's headers timeout is the
 * slowloris bound), a body (Content-Length other than 0,
 * Transfer-Encoding), `Expect`, `Upgrade`, CONNECT and methods other than
 * the usual ones, gRPC, a repeated field (Node's rules for joining them
 * differ by name), and any byte Node's parser might refuse (a request
 * target or a field outside printable ASCII, obs-fold, a name that is not
 * a token, no Host on HTTP/1.1, a head over the listener's limit). So this
 * server is never more lenient than Node's: what it does not take, Node
 * judges with its own answers (400, 431, 413 …).
 *
 * The semantics are Node's where the proxy relies on them: keep-alive by
 * version and `Connection` (a response says `connection: keep-alive` with a
 * `keep-alive: timeout` hint, or `connection: close` and the connection
 * closes after it); a response without a length is chunked (HTTP/1.0: ends
 * with the connection); no body for HEAD, 1xx, 204 and 304; `Date` added;
 * header names and values checked as Node checks them (a bad one throws);
 * pipelined requests answered in order; the response's `close` event after
 * the response ended (`writableFinished`) or when the connection went away
 * before (the client's FIN aborts a request in flight, as Node's default
 * `httpAllowHalfOpen: false` does); the connection's timeout is the
 * listener's idle timeout between requests and its stream idle timeout
 * while one is in flight (`streamIdle` then answers for the exchange).
 */
import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Exchange } from './exchange.js';
import { lowerName, newFields, type ResponseHeaders } from './h1-response-parser.js';
import { attachLimits, type ProxyLimits } from './limits.js';
import { streamIdle } from './request-body.js';
import { readIntoShared, readIntoStream } from './shared-reads.js';

/** What a fast connection needs of its listener. */
export interface FastHost {
  readonly limits: ProxyLimits;
  readonly handler: RequestListener;
  /** Node's HTTP/1.1 server takes the connection from here on; `unread`: bytes it must parse first. */
  fallback(socket: Socket, unread: Buffer | undefined): void;
  /** The connection closed. */
  gone(c: FastConnection): void;
}

const END_OF_HEAD = Buffer.from('\r\n\r\n', 'latin1');
/** The methods taken here; any other goes to Node. */
const METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'POST', 'PUT', 'PATCH']);
/** A request target of printable ASCII only (what llhttp takes in strict mode, and less). */
const BAD_TARGET = /[^\x21-\x7e]/;
/** A field value of HTAB and printable ASCII only; obs-text goes to Node. */
const BAD_REQUEST_VALUE = /[^\t\x20-\x7e]/;
/** Node's checks on response fields (`checkIsHttpToken`, `checkInvalidHeaderChar`). */
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const BAD_RESPONSE_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Names already checked to be tokens. */
const TOKENS = new Set<string>();
const TOKENS_MAX = 1024;

function isToken(name: string): boolean {
  if (TOKENS.has(name)) return true;
  if (!TOKEN.test(name)) return false;
  if (TOKENS.size < TOKENS_MAX) TOKENS.add(name);
  return true;
}

/** A head this server takes: the request line's parts and the fields (lowercase names, each once). */
interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly minor: number;
  readonly headers: ResponseHeaders;
  readonly keepAlive: boolean;
}

const isWs = (c: number) => c === 32 || c === 9;

/** The head (without its final CRLF CRLF) as this server takes it, or undefined: Node's server is to judge it. */
export function simpleHead(head: string): RequestHead | undefined {
  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = head.length;
  const sp1 = head.indexOf(' ');
  if (sp1 <= 0 || sp1 > 7) return undefined;
  const method = head.slice(0, sp1);
  if (!METHODS.has(method)) return undefined;
  const sp2 = lineEnd - 9;
  if (sp2 <= sp1 + 1 || head.charCodeAt(sp2) !== 32 || !head.startsWith('HTTP/1.', sp2 + 1)) return undefined;
  const minor = head.charCodeAt(lineEnd - 1) - 48;
  if (minor !== 0 && minor !== 1) return undefined;
  const url = head.slice(sp1 + 1, sp2);
  if (BAD_TARGET.test(url)) return undefined;
  const headers = newFields();
  let close = false;
  let keepAliveToken = false;
  let at = lineEnd + 2;
  while (at < head.length) {
    let e = head.indexOf('\r\n', at);
    if (e < 0) e = head.length;
    if (isWs(head.charCodeAt(at))) return undefined;
    const colon = head.indexOf(':', at);
    if (colon <= at || colon >= e) return undefined;
    const name = lowerName(head.slice(at, colon));
    if (!isToken(name) || headers[name] !== undefined) return undefined;
    let vs = colon + 1;
    let ve = e;
    while (vs < ve && isWs(head.charCodeAt(vs))) vs++;
    while (ve > vs && isWs(head.charCodeAt(ve - 1))) ve--;
    const value = head.slice(vs, ve);
    if (BAD_REQUEST_VALUE.test(value)) return undefined;
    switch (name) {
      case 'content-length': if (value !== '0') return undefined; break;
      case 'transfer-encoding': case 'expect': case 'upgrade': case 'http2-settings': return undefined;
      case 'content-type': if (value.startsWith('application/grpc')) return undefined; break;
      case 'connection': {
        const v = value.toLowerCase();
        if (v === 'close') close = true;
        else if (v === 'keep-alive') keepAliveToken = true;
        else {
          for (const t of v.split(',')) {
            const token = t.trim();
            if (token === 'close') close = true;
            else if (token === 'keep-alive') keepAliveToken = true;
            else if (token === 'upgrade') return undefined;
          }
        }
        break;
      }
      default: break;
    }
    headers[name] = value;
    at = e + 2;
  }
  if (minor === 1 && headers.host === undefined) return undefined;
  return { method, url, minor, headers, keepAlive: close ? false : minor === 1 || keepAliveToken };
}

/** The request the handler gets: the parts of Node's IncomingMessage the proxy reads, for a request without a body. */
export class FastRequest extends EventEmitter {
  readonly complete = true;
  readonly readableEnded = true;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  readonly httpVersion: string;
  readonly aborted = false;
  destroyed = false;

  constructor(readonly socket: Socket, readonly method: string, readonly url: string, readonly headers: Record<string, string>, minor: number) {
    super();
    this.httpVersionMinor = minor;
    this.httpVersion = minor === 1 ? '1.1' : '1.0';
  }

  /** `[name, value, …]` as Node gives them (names here are lowercase). */
  get rawHeaders(): string[] {
    const out: string[] = [];
    for (const k in this.headers) out.push(k, this.headers[k]!);
    return out;
  }

  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.socket.destroy(err);
    return this;
  }

  // There is no body: nothing to read, pipe or drop.
  resume(): this { return this; }
  pause(): this { return this; }
  unpipe(): this { return this; }
  pipe<T extends NodeJS.WritableStream>(dest: T): T { dest.end(); return dest; }
}

/** A request class per listener, its prototype carrying the listener's limits (limitsOf). */
export function fastRequestClass(limits: ProxyLimits): typeof FastRequest {
  class ListenerRequest extends FastRequest {}
  attachLimits(ListenerRequest.prototype, limits);
  return ListenerRequest;
}

type OutgoingValue = string | number | readonly string[];

function headersSentError(what: string): Error {
  return Object.assign(new Error(`Cannot ${what} headers after they are sent to the client`), { code: 'ERR_HTTP_HEADERS_SENT' });
}

function checkField(name: string, value: string): void {
  if (!isToken(name)) throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), { code: 'ERR_INVALID_HTTP_TOKEN' });
  if (BAD_RESPONSE_VALUE.test(value)) throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), { code: 'ERR_INVALID_CHAR' });
}

let dateCache: string | undefined;

/** The Date header's value, computed once a second at most. */
function utcDate(): string {
  if (dateCache === undefined) {
    dateCache = new Date().toUTCString();
    setTimeout(() => { dateCache = undefined; }, 1000 - (Date.now() % 1000)).unref();
  }
  return dateCache;
}

/**
 * Up to this many bytes, a head and the body bytes that follow it go out as
 * one Buffer: one write, without the corked list and the writev that the
 * two writes would cost (the common response: head and body in one read
 * from the upstream). Larger bodies are not copied.
 */
const JOIN_MAX = 16 * 1024;

/** Whether `prefix` (latin1) and `body` are written as one Buffer (joined). */
const joinable = (prefix: string, body: Buffer | string): body is Buffer =>
  typeof body !== 'string' && prefix.length + body.length <= JOIN_MAX;

/** `prefix` and `suffix` (latin1, as the head is always written) around `body`, in one Buffer. */
function joined(prefix: string, body: Uint8Array, suffix = ''): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + body.length + suffix.length);
  const at = out.write(prefix, 0, 'latin1');
  out.set(body, at);
  if (suffix.length > 0) out.write(suffix, at + body.length, 'latin1');
  return out;
}

const emitClose = (res: FastResponse): void => { res.emit('close'); };

/** The response the handler writes: the parts of Node's ServerResponse the proxy uses. */
export class FastResponse extends EventEmitter {
  statusCode = 200;
  statusMessage: string | undefined;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  /** Whether the connection stays open after this response (the proxy clears it while draining). */
  shouldKeepAlive: boolean;
  /** The exchange forwarding this request, once it goes upstream (the stream idle timeout acts on it). */
  exchange: Exchange | undefined = undefined;
  #head: string | undefined;
  #chunked = false;
  #noBody = false;
  #set: Map<string, OutgoingValue> | undefined;
  #trailers: Record<string, string> | undefined;
  #closed = false;
  #drainWanted = false;

  constructor(readonly conn: FastConnection, readonly req: FastRequest, keepAlive: boolean) {
    super();
    this.shouldKeepAlive = keepAlive;
  }

  get socket(): Socket {
    return this.conn.socket;
  }

  get finished(): boolean {
    return this.writableEnded;
  }

  setHeader(name: string, value: OutgoingValue): this {
    if (this.headersSent) throw headersSentError('set');
    (this.#set ??= new Map()).set(name.toLowerCase(), value);
    return this;
  }

  getHeader(name: string): OutgoingValue | undefined {
    return this.#set?.get(name.toLowerCase());
  }

  hasHeader(name: string): boolean {
    return this.#set?.has(name.toLowerCase()) ?? false;
  }

  removeHeader(name: string): void {
    if (this.headersSent) throw headersSentError('remove');
    this.#set?.delete(name.toLowerCase());
  }

  getHeaders(): Record<string, OutgoingValue> {
    return Object.fromEntries(this.#set ?? []);
  }

  writeHead(status: number, reason?: string | Record<string, OutgoingValue | undefined>, fields?: Record<string, OutgoingValue | undefined>): this {
    if (this.headersSent) throw headersSentError('write');
    if (typeof reason === 'object') { fields = reason; reason = undefined; }
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw Object.assign(new RangeError(`Invalid status code: ${status}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    }
    this.statusCode = status;
    if (reason !== undefined) this.statusMessage = reason;
    let head = `HTTP/1.1 ${status} ${reason ?? this.statusMessage ?? STATUS_CODES[status] ?? 'unknown'}\r\n`;
    let length = false;
    let date = false;
    let te: string | undefined;
    let connection: string | undefined;
    const add = (k: string, v: OutgoingValue | undefined): void => {
      if (v === undefined) return;
      const lk = lowerName(k);
      if (lk === 'content-length') length = true;
      else if (lk === 'date') date = true;
      else if (lk === 'transfer-encoding') te = String(v);
      else if (lk === 'connection') { connection = String(v); return; }
      else if (lk === 'keep-alive') return;
      if (typeof v === 'object') {
        for (let i = 0; i < v.length; i++) { const s = String(v[i]); checkField(k, s); head += `${k}: ${s}\r\n`; }
      } else {
        const s = typeof v === 'string' ? v : String(v);
        checkField(k, s);
        head += `${k}: ${s}\r\n`;
      }
    };
    const set = this.#set;
    if (set) {
      // writeHead's fields win over setHeader's, whatever the case of their names (as Node's).
      const given = new Set<string>();
      if (fields) for (const k in fields) if (fields[k] !== undefined) given.add(k.toLowerCase());
      for (const [k, v] of set) if (!given.has(k)) add(k, v);
    }
    if (fields) for (const k in fields) add(k, fields[k]);
    if (!date) head += `date: ${utcDate()}\r\n`;
    const req = this.req;
    this.#noBody = req.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (connection !== undefined && /(^|,)\s*close\s*(,|$)/i.test(connection)) this.shouldKeepAlive = false;
    if (!this.#noBody && !length) {
      if (te !== undefined) this.#chunked = /(^|,)\s*chunked\s*$/i.test(te);
      else if (req.httpVersionMinor === 1) { this.#chunked = true; head += 'transfer-encoding: chunked\r\n'; }
      // HTTP/1.0 without a length: the body ends with the connection.
      else this.shouldKeepAlive = false;
    }
    if (this.shouldKeepAlive) {
      const idle = this.conn.host.limits.idleTimeoutMs;
      head += idle > 0 ? `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(idle / 1000)}\r\n\r\n` : 'connection: keep-alive\r\n\r\n';
    } else {
      head += 'connection: close\r\n\r\n';
    }
    this.#head = head;
    this.headersSent = true;
    return this;
  }

  addTrailers(fields: Record<string, string>): void {
    for (const k in fields) checkField(k, fields[k]!);
    this.#trailers = { ...this.#trailers, ...fields };
  }

  write(chunk: Buffer | string, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (typeof encoding === 'function') { cb = encoding; encoding = undefined; }
    if (this.writableEnded) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const s = this.conn.socket;
    const head = this.#head;
    const empty = chunk.length === 0;
    if (this.#noBody || (empty && head === undefined)) { if (cb) process.nextTick(cb); return true; }
    this.#head = undefined;
    const done = this.#track(cb);
    let ok: boolean;
    if (this.#chunked && !empty) {
      const size = typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
      const prefix = head === undefined ? `${size.toString(16)}\r\n` : `${head}${size.toString(16)}\r\n`;
      if (joinable(prefix, chunk)) {
        ok = s.write(joined(prefix, chunk, '\r\n'), done);
      } else {
        s.cork();
        s.write(prefix, 'latin1');
        s.write(chunk, encoding ?? 'utf8');
        ok = s.write('\r\n', 'latin1', done);
        s.uncork();
      }
    } else if (head !== undefined && !empty) {
      if (joinable(head, chunk)) {
        ok = s.write(joined(head, chunk), done);
      } else {
        s.cork();
        s.write(head, 'latin1');
        ok = s.write(chunk, encoding ?? 'utf8', done);
        s.uncork();
      }
    } else if (head !== undefined) {
      ok = s.write(head, 'latin1', done);
    } else {
      ok = s.write(chunk, encoding ?? 'utf8', done);
    }
    if (!ok && !this.#drainWanted) {
      this.#drainWanted = true;
      s.once('drain', () => { this.#drainWanted = false; this.emit('drain'); });
    }
    return ok;
  }

  end(chunk?: Buffer | string | (() => void), encoding?: BufferEncoding | (() => void), cb?: () => void): this {
    if (typeof chunk === 'function') { cb = chunk; chunk = undefined; }
    if (typeof encoding === 'function') { cb = encoding; encoding = undefined; }
    if (this.writableEnded) return this;
    if (!this.headersSent) {
      // The whole body is known: it goes with its length, as Node sends it.
      if (chunk !== undefined && !this.hasHeader('content-length') && !this.hasHeader('transfer-encoding')) {
        this.setHeader('content-length', typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length);
      }
      this.writeHead(this.statusCode);
    }
    const s = this.conn.socket;
    const head = this.#head;
    this.#head = undefined;
    const body = this.#noBody || chunk === undefined || chunk.length === 0 ? undefined : chunk;
    this.#endCb = cb;
    this.writableEnded = true;
    this.conn.flushing++;
    if (this.#chunked) {
      const out = head ?? '';
      let tail = '0\r\n';
      const t = this.#trailers;
      if (t) for (const k in t) tail += `${k}: ${t[k]}\r\n`;
      const done = this.#track(undefined);
      if (body !== undefined) {
        const size = typeof body === 'string' ? Buffer.byteLength(body, encoding) : body.length;
        const prefix = `${out}${size.toString(16)}\r\n`;
        if (joinable(prefix, body)) {
          s.write(joined(prefix, body, `\r\n${tail}\r\n`), done);
        } else {
          s.cork();
          s.write(prefix, 'latin1');
          s.write(body, encoding ?? 'utf8');
          s.write(`\r\n${tail}\r\n`, 'latin1', done);
          s.uncork();
        }
      } else {
        s.write(`${out}${tail}\r\n`, 'latin1', done);
      }
    } else if (body !== undefined) {
      const done = this.#track(undefined);
      if (head !== undefined && joinable(head, body)) {
        s.write(joined(head, body), done);
      } else if (head !== undefined) {
        s.cork();
        s.write(head, 'latin1');
        s.write(body, encoding ?? 'utf8', done);
        s.uncork();
      } else {
        s.write(body, encoding ?? 'utf8', done);
      }
    } else if (head !== undefined) {
      s.write(head, 'latin1', this.#track(undefined));
    }
    this.#ending = true;
    // Nothing of it is still on its way (its writes are with the kernel): finished now. (A write of nothing to wait on would cost a syscall.)
    if (this.#unacked === 0) process.nextTick(this.#flushed, null);
    this.conn.responseDone(this);
    return this;
  }

  #endCb: (() => void) | undefined;
  /** Writes of this response whose callback has not come. */
  #unacked = 0;
  #ending = false;
  #writeError: Error | null = null;

  /** The callback for one write of this response (and the caller's `cb`): when the last is back after `end`, the response is finished. */
  #track(cb: ((err?: Error | null) => void) | undefined): (err?: Error | null) => void {
    this.#unacked++;
    return cb ? (err) => { this.#wrote(err); cb(err); } : this.#wrote;
  }

  #wrote = (err?: Error | null): void => {
    this.#unacked--;
    if (err) this.#writeError ??= err;
    if (this.#ending && this.#unacked === 0) this.#flushed(this.#writeError);
  };

  /**
   * The response's last bytes are with the kernel (or the connection broke
   * first): only now is it finished, as Node's is, so that nothing (a drain
   * that waits for requests in flight, then closes every connection) cuts
   * bytes still on their way out.
   */
  #flushed = (err: Error | null): void => {
    this.conn.flushing--;
    if (!err) this.writableFinished = true;
    if (this.#closed) return;
    this.#closed = true;
    if (!err) { this.emit('finish'); this.#endCb?.(); }
    this.emit('close');
  };

  /** The connection went away before this response ended. */
  aborted(): void {
    if (this.#closed) return;
    this.#closed = true;
    process.nextTick(emitClose, this);
  }

  destroy(err?: Error): this {
    this.conn.socket.destroy(err);
    return this;
  }

  writeContinue(): void {
    this.conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }
}

/** The socket timeout a fast connection keeps: the shorter of the idle and stream idle timeouts (0: off); #onTimeout tells them apart. */
function baseTimeout(l: ProxyLimits): number {
  const a = l.idleTimeoutMs;
  const b = l.streamIdleTimeoutMs;
  return a > 0 && b > 0 ? Math.min(a, b) : a > 0 ? a : b;
}

/** One downstream connection served here until a request needs Node's server. */
export class FastConnection {
  /** Bytes received and not handled yet (pipelined requests, while one is answered). */
  #pending: Buffer | undefined;
  #res: FastResponse | undefined;
  /** What the socket's timeout is set to now (0: none). */
  #armedMs = 0;
  /** Quiet time the socket's timeout has counted since bytes last moved (its 'timeout' events), and the byte counts then. */
  #quietMs = 0;
  #seenRead = -1;
  #seenWritten = -1;
  #handedOver = false;
  #paused = false;

  /** Reads come as views of the process's shared buffer (shared-reads.ts); what the socket buffered before still comes as 'data'. */
  readonly #shared: boolean;

  constructor(readonly socket: Socket, readonly host: FastHost, readonly Request: typeof FastRequest) {
    socket.on('data', this.#onData);
    this.#shared = readIntoShared(socket, this.#onView);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('timeout', this.#onTimeout);
    this.#arm(baseTimeout(host.limits));
    socket.resume();
  }

  /** Responses ended whose last bytes are not written yet. */
  flushing = 0;

  /** A request is in flight, or a response on its way out. */
  get busy(): boolean {
    return this.#res !== undefined || this.flushing > 0;
  }

  #arm(ms: number): void {
    this.#armedMs = ms;
    this.socket.setTimeout(ms);
  }

  #onData = (chunk: Buffer): void => {
    this.#received(chunk, false);
  };

  /** A read into the shared buffer: `view` is overwritten by the next read, so what is kept is copied. */
  #onView = (view: Buffer): void => {
    this.#received(view, true);
  };

  #received(chunk: Buffer, shared: boolean): void {
    const pending = this.#pending;
    if (this.#res) {
      // Pipelined: it waits for the answer in flight (bounded: reading stops while a head's worth waits).
      const p = (this.#pending = pending ? Buffer.concat([pending, chunk]) : shared ? Buffer.from(chunk) : chunk);
      if (p.length > this.host.limits.maxRequestHeadersBytes && !this.#paused) { this.#paused = true; this.socket.pause(); }
      return;
    }
    if (pending) this.#consume(Buffer.concat([pending, chunk]), false);
    else this.#consume(chunk, shared);
  }

  /**
   * Serves the requests at the start of `data` while they are simple; hands the connection over at the first that is not.
   * `shared`: `data` is a view of the shared read buffer, valid until this returns.
   */
  #consume(data: Buffer, shared: boolean): void {
    this.#pending = undefined;
    const limit = this.host.limits.maxRequestHeadersBytes;
    const end = data.indexOf(END_OF_HEAD);
    if (end < 0 || end > limit) { this.#handOver(shared ? Buffer.from(data) : data); return; }
    const head = simpleHead(data.toString('latin1', 0, end));
    if (!head) { this.#handOver(shared ? Buffer.from(data) : data); return; }
    if (end + 4 < data.length) this.#pending = shared ? Buffer.from(data.subarray(end + 4)) : data.subarray(end + 4);
    const req = new this.Request(this.socket, head.method, head.url, head.headers as Record<string, string>, head.minor);
    const res = new FastResponse(this, req, head.keepAlive);
    this.#res = res;
    this.host.handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  }

  /** The response in flight ended: the connection waits for the next request, or closes. */
  responseDone(res: FastResponse): void {
    if (this.#res !== res) return;
    this.#res = undefined;
    const s = this.socket;
    if (!res.shouldKeepAlive || s.destroyed) { this.#pending = undefined; s.end(); return; }
    if (this.#paused) { this.#paused = false; s.resume(); }
    if (this.#pending) process.nextTick(this.#next);
  }

  #next = (): void => {
    const p = this.#pending;
    if (!p || this.#res || this.#handedOver || this.socket.destroyed) return;
    this.#consume(p, false);
  };

  #handOver(unread: Buffer): void {
    this.#handedOver = true;
    const s = this.socket;
    s.pause();
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('error', this.#onError);
    s.off('close', this.#onClose);
    s.off('timeout', this.#onTimeout);
    s.setTimeout(0);
    // Whoever takes the connection reads a stream: the shared buffer's reads become 'data' again.
    if (this.#shared) readIntoStream(s);
    this.host.gone(this);
    this.host.fallback(s, unread);
  }

  #onEnd = (): void => {
    // The client is done sending: a request in flight is abandoned (Node's httpAllowHalfOpen: false), the connection ends.
    this.#res?.aborted();
    this.#res = undefined;
    if (this.socket.writable) this.socket.end();
  };

  #onError = (): void => {
    this.socket.destroy();
  };

  #onClose = (): void => {
    this.#res?.aborted();
    this.#res = undefined;
    this.#pending = undefined;
    this.host.gone(this);
  };

  /**
   * The socket's timeout (the shorter of the two, set once: a request
   * changes no timer) went off after that long with no byte in or out. The
   * limit of the connection's state decides: the stream idle timeout while a
   * request is in flight (it answers for the exchange), the idle timeout
   * between requests (the connection closes). Quiet spells add up across
   * events until bytes move again; short of the limit, the timeout is set
   * for the rest of it.
   */
  #onTimeout = (): void => {
    const s = this.socket;
    const limits = this.host.limits;
    if (s.bytesRead !== this.#seenRead || s.bytesWritten !== this.#seenWritten) this.#quietMs = 0;
    this.#seenRead = s.bytesRead;
    this.#seenWritten = s.bytesWritten;
    this.#quietMs += this.#armedMs;
    const res = this.#res;
    const limit = res ? limits.streamIdleTimeoutMs : limits.idleTimeoutMs;
    if (limit > 0 && this.#quietMs >= limit) {
      const ex = res?.exchange;
      // A request in flight: the stream idle timeout answers for it; none: the keep-alive connection idled out.
      if (ex && !ex.closed) streamIdle(ex);
      else s.destroy();
      return;
    }
    const base = baseTimeout(limits);
    const next = limit > 0 ? Math.min(base, limit - this.#quietMs) : base;
    // With no limit in this state, the next bytes set it going again (Node refreshes a socket's timeout on activity).
    if (limit > 0 || next !== this.#armedMs) this.#arm(next);
  };
}
