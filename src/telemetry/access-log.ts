/**
 * Access logs: one line per request, written asynchronously in batches with
 * pino's sonic-boom destination to a file or to stdout/stderr. JSON lines use
 * the keys of Istio's default JSON access log plus both peers' principals and
 * workloads, and carry `"type":"access"` so that `trellis logs --access` can
 * pick them out of a proxy's log. TEXT lines follow Envoy's default format.
 *
 * `trace_id` joins the JSON line while tracing is on (tracing.ts).
 *
 * Configured as Istio's MeshConfig does: `accessLogFile` ("" off,
 * "/dev/stdout", or a path) and `accessLogEncoding` (JSON | TEXT); `filter`
 * `errors` keeps only responses ≥ 500, no response, or any response flag.
 * `accessLogFormat` (Envoy's command operators, as a TEXT template or JSON
 * fields) replaces the default lines: log-format.ts.
 */
import { createRequire } from 'node:module';
import type { DestinationStream, pino as Pino } from 'pino';
import type { RequestRecord } from '../protocol/request-record.js';
import type { LogFormat, WorkloadAccessLogging } from '../protocol/snapshot.js';
import { compileLogFilter } from './log-filter.js';
import { peersOf, UNKNOWN, type LabelTables, type Peer } from './istio-labels.js';
import { formatLines } from './log-format.js';

export interface AccessLogOptions {
  /** "/dev/stdout", "/dev/stderr" or a file path ("" turns logging off). */
  readonly file: string;
  /** JSON (the default) or TEXT. */
  readonly encoding?: 'JSON' | 'TEXT';
  /** `all` (the default) or `errors`: status ≥ 500, no response at all, or any response flag. */
  readonly filter?: 'all' | 'errors';
  /** MeshConfig `accessLogFormat`, parsed: lines in it instead of the default ones (`encoding` is then the format's own). */
  readonly format?: LogFormat;
  /** A Telemetry resource's sides: only the directions listed are logged, each for the requests its filter is true for. */
  readonly directions?: WorkloadAccessLogging['directions'];
}

/** The marker every JSON access log line carries. */
export const ACCESS_LOG_TYPE = 'access';

/**
 * pino, loaded when the first access log opens: a proxy without an access
 * log does not hold it in memory (about 9 MB of a sidecar's RSS). pino is
 * CommonJS, so `require` loads it synchronously.
 */
let loaded: typeof Pino | undefined;
const pinoModule = (): typeof Pino => (loaded ??= (createRequire(import.meta.url)('pino') as { pino: typeof Pino }).pino);

type Sonic = Omit<DestinationStream, 'write'> & { write(b: Buffer): boolean; end(): void; flush(): void; once(ev: string, fn: () => void): void; on(ev: 'error', fn: (err: Error) => void): void; on(ev: 'write', fn: (n: number) => void): void; on(ev: 'drop', fn: (b: Buffer) => void): void };

/**
 * Lines are encoded straight into a batch buffer, which is handed to the
 * destination in one piece when full, and at the latest every FLUSH_MS: one
 * write per line would cost a system call per request (the bench showed the
 * access log doubling a sidecar's CPU), and strings handed to sonic-boom are
 * measured and encoded again on every pass (byte counts, concatenation, a
 * re-encoding after each write). Buffers in its `buffer` content mode are
 * written as they are; with `maxWrite` at the batch size each batch goes out
 * in one write of its own, and batches queued behind a slow write are never
 * concatenated into a bigger copy.
 *
 * Each write goes through libuv's thread pool, and on two busy cores the
 * hand-off (a pool thread's wake-up, then the event loop's) costs more than
 * the write itself: measured with crossover.js (the log's cost, on ÷ off),
 * 16 KiB batches 1.19, 64 KiB 1.06–1.10, 256 KiB 1.03–1.07. Written on the
 * proxy's thread instead (sonic-boom's sync mode), 256 KiB batches gave
 * 1.070 and 1.045 in runs alternated with 1.062 and 1.063 through the pool:
 * no better, and a slow disk or a network file system would stall every
 * request.
 */
const BATCH_BYTES = 256 * 1024;
const FLUSH_MS = 250;
/** Written batch buffers kept for reuse (one is being filled, one or two being written). */
const FREE_BATCHES = 2;
/**
 * What may wait for a slow destination; lines beyond it are dropped (with one
 * warning), not held in memory. A sidecar's whole budget is 80 MB of RSS
 * (issue 5) and it runs at some 75: 16 MiB is a few seconds of lines at full
 * load, and a stalled disk cannot push the proxy far past its budget.
 */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

function destinationFor(file: string): Sonic {
  const dest = file === '/dev/stdout' ? 1 : file === '/dev/stderr' ? 2 : file;
  const s = pinoModule().destination({
    dest, sync: false, mkdir: typeof dest === 'string', contentMode: 'buffer', maxWrite: BATCH_BYTES, maxLength: MAX_QUEUED_BYTES,
  } as Parameters<typeof Pino.destination>[0]) as unknown as Sonic;
  // A log that cannot be written must not take the proxy down.
  s.on('error', (err) => process.emitWarning(`access log ${file}: ${err.message}`));
  s.once('drop', () => process.emitWarning(`access log ${file}: the destination is slower than the requests; lines are dropped while ${MAX_QUEUED_BYTES >> 20} MiB wait`));
  return s;
}

/** `workload.namespace`, or null for a peer the proxy cannot name (the caller, until mTLS carries its identity). */
const workloadOf = (p: Peer): string | null => (p.workload === UNKNOWN ? null : `${p.workload}.${p.namespace}`);

/**
 * JSON string literals of values seen before. Most fields of a line repeat
 * from request to request (method, authority, the cluster, route and
 * principals, which are the snapshot's own strings): their literal is made
 * once. Bounded: emptied when full, so that values that never repeat (paths
 * with ids in them) cost a little, never memory.
 */
const LITERALS = new Map<string, string>();
const LITERALS_MAX = 2048;
const LITERAL_MAX_LENGTH = 256;

/** A JSON string literal. */
function str(v: string): string {
  let j = LITERALS.get(v);
  if (j !== undefined) return j;
  j = JSON.stringify(v);
  if (v.length <= LITERAL_MAX_LENGTH) {
    if (LITERALS.size >= LITERALS_MAX) LITERALS.clear();
    LITERALS.set(v, j);
  }
  return j;
}

/** A JSON string literal, or null. */
const opt = (v: string | null | undefined): string => (v === undefined || v === null ? 'null' : str(v));

/**
 * The tail of a JSON line (what changes with every request) is written into
 * the batch byte by byte, with no string made for it: its constant parts
 * are pre-encoded, numbers are written as digits, ids copied a character at
 * a time. Built as one template string, a line cost ~950 bytes of
 * allocation (the string, its pieces, the numbers' strings, the flattened
 * copy that encoding needs), 9 % of all a sidecar allocated a request;
 * written this way, ~15 bytes.
 */
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const START_TIME = ascii(',"start_time":"');
const BYTES_RECEIVED = ascii('","bytes_received":');
const BYTES_SENT = ascii(',"bytes_sent":');
const DURATION = ascii(',"duration":');
const UPSTREAM_SERVICE_TIME = ascii(',"upstream_service_time":');
const REQUEST_ID = ascii(',"request_id":');
const ATTEMPTS = ascii(',"attempts":');
const TRACE_ID = ascii(',"trace_id":');
const NULL = ascii('null');
const END = ascii('}\n');
/** The most a tail takes besides its two ids: constants, six numbers of at most 22 characters each, the time. */
const TAIL_FIXED = 160 + 6 * 22;

/** Copies the bytes of a (short) constant: a loop beats a typed-array `set` call at these lengths. */
function put(b: Buffer, at: number, src: Uint8Array): number {
  for (let i = 0; i < src.length; i++) b[at + i] = src[i]!;
  return at + src.length;
}

/** Copies a segment (a few hundred bytes): memcpy through `set`. */
function copy(b: Buffer, at: number, src: Uint8Array): number {
  b.set(src, at);
  return at + src.length;
}

/** Writes `n` as JSON: digits for the integers requests carry, else JavaScript's own text (null when not finite). */
function putNumber(b: Buffer, at: number, n: number): number {
  if (n >= 0 && n <= 0xffffffff && Number.isInteger(n)) {
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    let i = at + digits;
    do { const q = Math.floor(n / 10); b[--i] = 48 + n - q * 10; n = q; } while (n > 0);
    return at + digits;
  }
  const t = Number.isFinite(n) ? String(n) : 'null';
  for (let i = 0; i < t.length; i++) b[at + i] = t.charCodeAt(i);
  return at + t.length;
}

/**
 * Writes `v` as a JSON string literal. Printable ASCII other than the quote
 * and the backslash (every UUID and hex id) is copied as it is; a value
 * with anything else goes through JSON.stringify. Room for six bytes a
 * character must be there.
 */
function putString(b: Buffer, at: number, v: string): number {
  b[at] = 34;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 34 || c === 92) return at + b.write(JSON.stringify(v), at, 'utf8');
    b[at + 1 + i] = c;
  }
  b[at + 1 + v.length] = 34;
  return at + v.length + 2;
}

/**
 * The ISO time of epoch milliseconds `ms` (24 ASCII bytes): the part up to
 * the second is kept for the last second asked for. Records arrive in the
 * order requests end, so their start times go back and forth between
 * milliseconds, but stay within a second or two.
 */
let isoSecond = NaN;
let isoPrefix: Uint8Array = new Uint8Array(0);
function putIsoTime(b: Buffer, at: number, ms: number): number {
  const sec = Math.floor(ms / 1000);
  if (sec !== isoSecond) { isoSecond = sec; isoPrefix = ascii(new Date(sec * 1000).toISOString().slice(0, 20)); }
  at = put(b, at, isoPrefix);
  const m = Math.floor(ms) - sec * 1000;
  b[at] = 48 + Math.floor(m / 100);
  b[at + 1] = 48 + (Math.floor(m / 10) % 10);
  b[at + 2] = 48 + (m % 10);
  b[at + 3] = 90; // Z
  return at + 4;
}

const dash = (v: string | number | undefined): string | number => (v === undefined || v === '' ? '-' : v);

const flagsOf = (r: RequestRecord): string => (r.responseFlags.length ? r.responseFlags.join(',') : '-');

/** How many distinct combinations each segment cache remembers (a sidecar sees a few routes, endpoints and statuses). */
const SEGMENT_SLOTS = 8;

/**
 * The request's part of a line (direction, method, authority, path,
 * protocol, status, flags, gRPC status): the same for most requests of a
 * route, so the text is remembered for the last few combinations, compared
 * field by field (the record's strings are mostly the very same objects).
 */
interface RequestSegment {
  readonly direction: string; readonly method: string; readonly authority: string; readonly path: string;
  readonly protocol: string; readonly status: number; readonly flags: string; readonly grpcStatus: string | undefined;
  readonly bytes: Buffer;
}

/** The peers' part of a line (upstream, cluster, route, principals, workloads, proxy), remembered the same way. */
interface PeerSegment {
  readonly tables: LabelTables | undefined; readonly direction: string; readonly upstream: string | undefined;
  readonly cluster: string | undefined; readonly route: string | undefined; readonly sourceIdentity: string | undefined;
  readonly destinationIdentity: string | undefined; readonly peerPrincipal: string | undefined; readonly proxy: string;
  readonly bytes: Buffer;
}

/** The records a Telemetry resource's sides keep: those of a listed direction that its filter (if any) is true for. */
function keeper(d: WorkloadAccessLogging['directions']): (r: RequestRecord) => boolean {
  const side = (s: { readonly filter?: Parameters<typeof compileLogFilter>[0] } | undefined) =>
    (s === undefined ? () => false : s.filter ? compileLogFilter(s.filter) : () => true);
  const inbound = side(d.inbound);
  const outbound = side(d.outbound);
  const gateway = side(d.gateway);
  return (r) => (r.direction === 'inbound' ? inbound(r) : r.direction === 'outbound' ? outbound(r) : gateway(r));
}

export class AccessLog {
  readonly #dest: Sonic;
  readonly #jsonLines: boolean;
  /** The lines of a format of the user's, when there is one. */
  readonly #formatted: ((r: RequestRecord) => string) | undefined;
  /** Which records a Telemetry resource keeps, when one decides. */
  readonly #keep: ((r: RequestRecord) => boolean) | undefined;
  readonly #errorsOnly: boolean;
  readonly #flusher: NodeJS.Timeout;
  /** Lines not handed to the destination yet, encoded, and how many bytes of the batch they fill. */
  #batch: Buffer = Buffer.allocUnsafeSlow(BATCH_BYTES);
  #used = 0;
  /**
   * Batch buffers the destination has written out, for the next batches: a
   * fresh buffer per batch is memory no cache holds, and every line
   * written into it misses. The destination reports written bytes in order
   * (`write` events), so a batch is free once the bytes up to its end are.
   */
  readonly #free: Buffer[] = [];
  readonly #handed: { readonly buf: Buffer | undefined; readonly end: number }[] = [];
  #bytesHanded = 0;
  #bytesWritten = 0;
  #lastDropped: Buffer | undefined;
  #tables: LabelTables | undefined;
  readonly #requestSegments: RequestSegment[] = [];
  readonly #peerSegments: PeerSegment[] = [];
  #nextRequestSlot = 0;
  #nextPeerSlot = 0;

  constructor(readonly options: AccessLogOptions) {
    this.#dest = destinationFor(options.file);
    this.#dest.on('write', (n: number) => this.#written(n));
    this.#dest.on('drop', (b: Buffer) => { this.#lastDropped = b; });
    this.#flusher = setInterval(() => this.#handOver(), FLUSH_MS);
    this.#flusher.unref();
    this.#errorsOnly = options.filter === 'errors';
    this.#jsonLines = (options.encoding ?? 'JSON') === 'JSON';
    this.#formatted = options.format ? formatLines(options.format) : undefined;
    this.#keep = options.directions ? keeper(options.directions) : undefined;
  }

  useTables(t: LabelTables): void {
    this.#tables = t;
  }

  log(r: RequestRecord): void {
    if (this.#errorsOnly && !(r.status >= 500 || r.status === 0 || r.responseFlags.length > 0)) return;
    if (this.#keep && !this.#keep(r)) return;
    if (this.#formatted) this.#line(this.#formatted(r));
    else if (this.#jsonLines) this.#json(r);
    else this.#line(this.#text(r));
  }

  /** A line as a string: encoded into the batch, or on its own when longer than a batch. */
  #line(line: string): void {
    // UTF-8 takes at most three bytes per UTF-16 unit.
    if (this.#used + line.length * 3 > BATCH_BYTES) {
      this.#handOver();
      if (line.length * 3 > BATCH_BYTES) return this.#write(Buffer.from(line, 'utf8'));
    }
    this.#used += this.#batch.write(line, this.#used);
  }

  /** Gives the batch to the destination, which writes it asynchronously; its buffer comes back for reuse once written. */
  #handOver(): void {
    if (this.#used === 0) return;
    // A batch the timer flushes mostly empty goes out as a copy of its lines, and its buffer stays: while the
    // destination is stalled, each one waiting would otherwise hold a whole batch buffer for a few lines.
    if (this.#used < BATCH_BYTES / 4) {
      const copy = Buffer.from(this.#batch.subarray(0, this.#used));
      this.#used = 0;
      this.#write(copy);
      return;
    }
    const full = this.#batch;
    const batch = full.subarray(0, this.#used);
    this.#used = 0;
    this.#write(batch, full);
    this.#batch = this.#free.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
  }

  /** Hands `b` to the destination; `pooled`, the batch buffer it is a view of, is reused once `b` is written (or dropped). */
  #write(b: Buffer, pooled?: Buffer): void {
    this.#lastDropped = undefined;
    try { this.#dest.write(b); } catch { return; /* closing */ }
    if (this.#lastDropped === b) {
      if (pooled) this.#release(pooled);
      return;
    }
    this.#bytesHanded += b.length;
    this.#handed.push({ buf: pooled, end: this.#bytesHanded });
  }

  #written(n: number): void {
    this.#bytesWritten += n;
    const h = this.#handed;
    while (h.length && h[0]!.end <= this.#bytesWritten) {
      const done = h.shift()!;
      if (done.buf) this.#release(done.buf);
    }
  }

  #release(b: Buffer): void {
    if (this.#free.length < FREE_BATCHES) this.#free.push(b);
  }

  /**
   * The JSON line, encoded straight into the batch: every string that a
   * request or the configuration can set goes through JSON.stringify,
   * numbers and the proxy's own tokens as they are. The two parts that
   * repeat from request to request come from the segment caches already
   * encoded, and are copied in; the rest, what changes with every request,
   * is written byte by byte (see putNumber, putString). No string is built
   * for a line: one is written for every request in every sidecar, and
   * flattening and encoding a 700-byte concatenation cost more than these
   * copies.
   */
  #json(r: RequestRecord): void {
    const req = this.#requestSegment(r);
    const peer = this.#peerSegment(r);
    const rid = r.requestId;
    const tid = r.traceId;
    const bound = req.length + peer.length + TAIL_FIXED + 6 * (rid.length + (tid === undefined ? 0 : tid.length));
    if (this.#used + bound > BATCH_BYTES) {
      this.#handOver();
      if (bound > BATCH_BYTES) {
        const b = Buffer.allocUnsafe(bound);
        this.#write(b.subarray(0, this.#tail(b, copy(b, copy(b, 0, req), peer), r)));
        return;
      }
    }
    const b = this.#batch;
    this.#used = this.#tail(b, copy(b, copy(b, this.#used, req), peer), r);
  }

  /** The tail of a JSON line at `at` in `b`, which has room for it; the offset after it. */
  #tail(b: Buffer, at: number, r: RequestRecord): number {
    at = putIsoTime(b, put(b, at, START_TIME), r.startTime);
    at = putNumber(b, put(b, at, BYTES_RECEIVED), r.bytesReceived);
    at = putNumber(b, put(b, at, BYTES_SENT), r.bytesSent);
    at = putNumber(b, put(b, at, DURATION), Math.round(r.durationMs));
    at = put(b, at, UPSTREAM_SERVICE_TIME);
    at = r.upstreamMs === undefined ? put(b, at, NULL) : putNumber(b, at, Math.round(r.upstreamMs));
    at = put(b, at, REQUEST_ID);
    at = r.requestId ? putString(b, at, r.requestId) : put(b, at, NULL);
    at = put(b, at, ATTEMPTS);
    at = r.attempts === undefined ? put(b, at, NULL) : putNumber(b, at, r.attempts);
    // Only while tracing is on (then every request has one, sampled or not).
    if (r.traceId !== undefined) at = putString(b, put(b, at, TRACE_ID), r.traceId);
    return put(b, at, END);
  }

  #requestSegment(r: RequestRecord): Buffer {
    const flags = flagsOf(r);
    const cache = this.#requestSegments;
    for (let i = 0; i < cache.length; i++) {
      const c = cache[i]!;
      if (c.status === r.status && c.path === r.path && c.method === r.method && c.authority === r.authority && c.flags === flags &&
        c.direction === r.direction && c.protocol === r.protocol && c.grpcStatus === r.grpcStatus) return c.bytes;
    }
    const bytes = Buffer.from(`{"type":"${ACCESS_LOG_TYPE}","direction":"${r.direction}","method":${str(r.method)},"authority":${str(r.authority)},"path":${str(r.path)}` +
      `,"protocol":${str(r.protocol)},"response_code":${r.status},"response_flags":"${flags}","grpc_status":${opt(r.grpcStatus)}`, 'utf8');
    const seg: RequestSegment = { direction: r.direction, method: r.method, authority: r.authority, path: r.path, protocol: r.protocol, status: r.status, flags, grpcStatus: r.grpcStatus, bytes };
    cache[this.#nextRequestSlot] = seg;
    this.#nextRequestSlot = (this.#nextRequestSlot + 1) % SEGMENT_SLOTS;
    return bytes;
  }

  #peerSegment(r: RequestRecord): Buffer {
    const t = this.#tables;
    const cache = this.#peerSegments;
    for (let i = 0; i < cache.length; i++) {
      const c = cache[i]!;
      if (c.upstream === r.upstream && c.cluster === r.cluster && c.route === r.route && c.tables === t && c.direction === r.direction &&
        c.sourceIdentity === r.sourceIdentity && c.destinationIdentity === r.destinationIdentity && c.peerPrincipal === r.peerPrincipal &&
        c.proxy === r.proxy) return c.bytes;
    }
    // The workloads depend on nothing but the fields compared above and the label tables.
    const p = t ? peersOf(r, t) : undefined;
    const bytes = Buffer.from(`,"upstream_host":${opt(r.upstream)},"upstream_cluster":${opt(r.cluster)},"route_name":${opt(r.route)}` +
      `,"source_principal":${opt(r.sourceIdentity)},"destination_principal":${opt(r.destinationIdentity)}` +
      `,"source_workload":${p ? opt(workloadOf(p.source)) : 'null'},"destination_workload":${p ? opt(workloadOf(p.destination)) : 'null'}` +
      `,"proxy":${str(r.proxy)}`, 'utf8');
    const seg: PeerSegment = {
      tables: t, direction: r.direction, upstream: r.upstream, cluster: r.cluster, route: r.route, sourceIdentity: r.sourceIdentity,
      destinationIdentity: r.destinationIdentity, peerPrincipal: r.peerPrincipal, proxy: r.proxy, bytes,
    };
    cache[this.#nextPeerSlot] = seg;
    this.#nextPeerSlot = (this.#nextPeerSlot + 1) % SEGMENT_SLOTS;
    return bytes;
  }

  #text(r: RequestRecord): string {
    const flags = flagsOf(r);
    const up = r.upstreamMs === undefined ? '-' : Math.round(r.upstreamMs);
    return `[${new Date(r.startTime).toISOString()}] "${r.method} ${r.path} ${r.protocol}" ${r.status} ${flags} ${r.bytesReceived} ${r.bytesSent} ${Math.round(r.durationMs)} ${up} "${dash(r.requestId)}" "${dash(r.authority)}" "${dash(r.upstream)}" ${dash(r.cluster)} ${dash(r.route)} ${dash(r.sourceIdentity)} ${dash(r.destinationIdentity)}\n`;
  }

  /** Writes what is buffered and closes the destination (stdout and stderr stay open). */
  close(): Promise<void> {
    clearInterval(this.#flusher);
    this.#handOver();
    return new Promise((resolve) => {
      const d = this.#dest;
      const timer = setTimeout(resolve, 2000);
      d.once('close', () => { clearTimeout(timer); resolve(); });
      try { d.end(); } catch { clearTimeout(timer); resolve(); }
    });
  }
}
