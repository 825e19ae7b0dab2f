/**
 * Access logs: one line per request, written asynchronously with pino (its
 * sonic-boom destination) to a file or to stdout/stderr. JSON lines use the
 * keys of Istio's default JSON access log plus both peers' principals and
 * workloads, and carry `"type":"access"` so that `trellis logs --access` can
 * pick them out of a proxy's log. TEXT lines follow Envoy's default format.
 *
 * `trace_id` joins the JSON line while tracing is on (tracing.ts).
 *
 * Configured as Istio's MeshConfig does: `accessLogFile` ("" off,
 * "/dev/stdout", or a path) and `accessLogEncoding` (JSON | TEXT); `filter`
 * `errors` keeps only responses ≥ 500, no response, or any response flag.
 */
import { createRequire } from 'node:module';
import type { DestinationStream, pino as Pino } from 'pino';
import type { RequestRecord } from '../protocol/request-record.js';
import { peersOf, UNKNOWN, type LabelTables, type Peer } from './istio-labels.js';

export interface AccessLogOptions {
  /** "/dev/stdout", "/dev/stderr" or a file path ("" turns logging off). */
  readonly file: string;
  /** JSON (the default) or TEXT. */
  readonly encoding?: 'JSON' | 'TEXT';
  /** `all` (the default) or `errors`: status ≥ 500, no response at all, or any response flag. */
  readonly filter?: 'all' | 'errors';
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

type Sonic = DestinationStream & { end(): void; flush(): void; once(ev: string, fn: () => void): void; on(ev: 'error', fn: (err: Error) => void): void };

/**
 * Lines are gathered here up to about this many characters, then handed to
 * the destination in one piece, and handed over at the latest every
 * FLUSH_MS: one write per line would cost a system call per request (the
 * bench showed the access log doubling a sidecar's CPU), and one
 * destination call per line its bookkeeping (a byte count and a string
 * concatenation each).
 */
const BATCH_CHARS = 64 * 1024;
const FLUSH_MS = 250;

function destinationFor(file: string): Sonic {
  const dest = file === '/dev/stdout' ? 1 : file === '/dev/stderr' ? 2 : file;
  const s = pinoModule().destination({ dest, sync: false, mkdir: typeof dest === 'string' }) as unknown as Sonic;
  // A log that cannot be written must not take the proxy down.
  s.on('error', (err) => process.emitWarning(`access log ${file}: ${err.message}`));
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

/** Ids made of characters JSON never escapes (UUIDs, hex trace ids): quoted as they are, not cached (they never repeat). */
const PLAIN_ID = /^[0-9A-Za-z._-]*$/;
const id = (v: string): string => (PLAIN_ID.test(v) ? `"${v}"` : JSON.stringify(v));

/** The ISO time of the last start time asked for: several requests start in the same millisecond. */
let isoAt = NaN;
let iso = '';
function isoTime(ms: number): string {
  if (ms !== isoAt) { isoAt = ms; iso = new Date(ms).toISOString(); }
  return iso;
}

const dash = (v: string | number | undefined): string | number => (v === undefined || v === '' ? '-' : v);

export class AccessLog {
  readonly #dest: Sonic;
  readonly #jsonLines: boolean;
  readonly #errorsOnly: boolean;
  readonly #flusher: NodeJS.Timeout;
  /** Lines not handed to the destination yet, and their length in characters. */
  #pending: string[] = [];
  #pendingChars = 0;
  #tables: LabelTables | undefined;

  constructor(readonly options: AccessLogOptions) {
    this.#dest = destinationFor(options.file);
    this.#flusher = setInterval(() => this.#handOver(), FLUSH_MS);
    this.#flusher.unref();
    this.#errorsOnly = options.filter === 'errors';
    this.#jsonLines = (options.encoding ?? 'JSON') === 'JSON';
  }

  useTables(t: LabelTables): void {
    this.#tables = t;
  }

  log(r: RequestRecord): void {
    if (this.#errorsOnly && !(r.status >= 500 || r.status === 0 || r.responseFlags.length > 0)) return;
    const line = this.#jsonLines ? this.#json(r) : this.#text(r);
    this.#pending.push(line);
    this.#pendingChars += line.length;
    if (this.#pendingChars >= BATCH_CHARS) this.#handOver();
  }

  /** Gives the pending lines to the destination, which writes them asynchronously. */
  #handOver(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending.join('');
    this.#pending = [];
    this.#pendingChars = 0;
    try { this.#dest.write(batch); } catch { /* closing */ }
  }

  /**
   * The JSON line, written out directly: every string that a request or the
   * configuration can set goes through JSON.stringify, numbers and the
   * proxy's own tokens as they are. Half the CPU of a pino logger object per
   * line, which matters at one line per request in every sidecar.
   */
  #json(r: RequestRecord): string {
    const p = this.#tables ? peersOf(r, this.#tables) : undefined;
    const flags = r.responseFlags.length ? r.responseFlags.join(',') : '-';
    return `{"type":"${ACCESS_LOG_TYPE}","start_time":"${isoTime(r.startTime)}","direction":"${r.direction}"` +
      `,"method":${str(r.method)},"authority":${str(r.authority)},"path":${str(r.path)},"protocol":${str(r.protocol)}` +
      `,"response_code":${r.status},"response_flags":"${flags}","grpc_status":${opt(r.grpcStatus)}` +
      `,"bytes_received":${r.bytesReceived},"bytes_sent":${r.bytesSent},"duration":${Math.round(r.durationMs)}` +
      `,"upstream_service_time":${r.upstreamMs === undefined ? 'null' : Math.round(r.upstreamMs)}` +
      `,"upstream_host":${opt(r.upstream)},"upstream_cluster":${opt(r.cluster)},"route_name":${opt(r.route)}` +
      `,"source_principal":${opt(r.sourceIdentity)},"destination_principal":${opt(r.destinationIdentity)}` +
      `,"source_workload":${p ? opt(workloadOf(p.source)) : 'null'},"destination_workload":${p ? opt(workloadOf(p.destination)) : 'null'}` +
      `,"request_id":${r.requestId ? id(r.requestId) : 'null'},"attempts":${r.attempts ?? 'null'},"proxy":${str(r.proxy)}` +
      // Only while tracing is on (then every request has one, sampled or not).
      (r.traceId !== undefined ? `,"trace_id":${id(r.traceId)}` : '') +
      '}\n';
  }

  #text(r: RequestRecord): string {
    const flags = r.responseFlags.length ? r.responseFlags.join(',') : '-';
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
