/**
 * Trace context on the request path: reads W3C `traceparent`/`tracestate`
 * and B3 (single `b3` and multi `x-b3-*`) from the request headers, gives
 * this hop a span id of its own, and writes the context back for the
 * upstream request with this hop as the parent, in the formats that arrived
 * (W3C when none did). Called by the listeners only when the snapshot's mesh
 * settings turn tracing on; otherwise the headers pass untouched.
 *
 * Sampling is decided once, where a trace starts (no usable context came
 * in, or B3 deferred the decision): `sampling` percent of new traces. After
 * that the sampled flag is passed on as it came, never decided again.
 * Precedence when several formats arrive: W3C, then `b3`, then `x-b3-*`;
 * a malformed header counts as absent (and a `tracestate` without a valid
 * `traceparent` is dropped, as W3C says). 64-bit B3 trace ids are
 * left-padded to 128 bits, and go out in B3 as 64 bits again.
 *
 * Cost: a few string slices and one regex test per format present; the ids
 * are cut from the hex text of pooled random bytes, refilled 256 ids at a time.
 */
import { randomFillSync } from 'node:crypto';
import type { MeshSettings } from '../protocol/snapshot.js';
import type { Headers } from './headers.js';

/** This hop's place in its trace. */
export interface TraceHop {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** This hop's span: 16 hex digits. */
  readonly spanId: string;
  /** The span that called this hop (the incoming context's), absent where the trace starts here. */
  readonly parentSpanId: string | undefined;
  readonly sampled: boolean;
}

const W3C = 1;
const B3_SINGLE = 2;
const B3_MULTI = 4;

const ZERO16 = '0000000000000000';
const ZERO32 = ZERO16 + ZERO16;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-|$)/;
const B3 = /^([0-9a-f]{16}|[0-9a-f]{32})-([0-9a-f]{16})(?:-([01d])(?:-[0-9a-f]{16})?)?$/i;
const B3_TRACE_ID = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/i;
const B3_SPAN_ID = /^[0-9a-f]{16}$/i;

/** What came in: ids (when any), and the sampling decision (undefined: not made yet). */
interface Incoming {
  traceId: string | undefined;
  spanId: string | undefined;
  sampled: boolean | undefined;
}

/**
 * Ids are cut from the hex text of a pool of random bytes, made in one call
 * per 256 ids: a `toString('hex')` per id was a call into C++ for 16 or 32
 * characters, three a request in a traced mesh. The cuts share the pool's
 * text (V8 makes slices of 13 characters or more without copying): an id
 * that outlives its request (a span waiting for export) would keep its
 * pool's 8 KiB alive, so what keeps ids copies them (trace-spans.ts).
 */
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolHex = '';
let poolAt = POOL_BYTES;

/** Random lowercase hex of `bytes` bytes, never all zeros (invalid in both W3C and B3). */
export function randomHex(bytes: 8 | 16): string {
  for (;;) {
    if (poolAt + bytes > POOL_BYTES) { randomFillSync(pool); poolHex = pool.toString('hex'); poolAt = 0; }
    const s = poolHex.slice(poolAt * 2, (poolAt + bytes) * 2);
    poolAt += bytes;
    if (s !== ZERO16 && s !== ZERO32) return s;
  }
}

const one = (v: string | string[] | undefined): string | undefined => (typeof v === 'string' ? v.trim() : undefined);

function fromTraceparent(v: string | undefined, into: Incoming): boolean {
  if (v === undefined || !TRACEPARENT.test(v)) return false;
  // Version 00 has exactly these fields; a later version may append more, and ff is invalid.
  if ((v.startsWith('00') && v.length !== 55) || v.startsWith('ff')) return false;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  if (traceId === ZERO32 || spanId === ZERO16) return false;
  into.traceId = traceId;
  into.spanId = spanId;
  // The sampled flag is the low bit of the flags' second hex digit (the regex let only 0-9a-f through).
  const c = v.charCodeAt(54);
  into.sampled = ((c <= 57 ? c - 48 : c - 87) & 1) === 1;
  return true;
}

const pad = (traceId: string): string => (traceId.length === 16 ? ZERO16 + traceId : traceId).toLowerCase();
const b3Sampled = (s: string | undefined): boolean | undefined =>
  s === '1' || s === 'd' || s === 'true' ? true : s === '0' || s === 'false' ? false : undefined;

function fromB3Single(v: string | undefined, into: Incoming): boolean {
  if (v === undefined) return false;
  const m = B3.exec(v);
  if (!m) {
    // `b3: 0|1|d` carries only the decision.
    const s = v.length === 1 ? b3Sampled(v) : undefined;
    if (s !== undefined && into.sampled === undefined) into.sampled = s;
    return false;
  }
  const traceId = pad(m[1]!);
  const spanId = m[2]!.toLowerCase();
  if (traceId === ZERO32 || spanId === ZERO16) return false;
  into.traceId = traceId;
  into.spanId = spanId;
  into.sampled = b3Sampled(m[3]);
  return true;
}

function fromB3Multi(h: Headers, into: Incoming): boolean {
  const sampled = h['x-b3-flags'] === '1' ? true : b3Sampled(one(h['x-b3-sampled'])?.toLowerCase());
  const t = one(h['x-b3-traceid']);
  const s = one(h['x-b3-spanid']);
  if (t === undefined || s === undefined || !B3_TRACE_ID.test(t) || !B3_SPAN_ID.test(s)) {
    if (sampled !== undefined && into.sampled === undefined) into.sampled = sampled;
    return false;
  }
  const traceId = pad(t);
  const spanId = s.toLowerCase();
  if (traceId === ZERO32 || spanId === ZERO16) return false;
  into.traceId = traceId;
  into.spanId = spanId;
  into.sampled = sampled;
  return true;
}

/** B3 writes a 64-bit trace id as 64 bits (it came that way, or is indistinguishable from one that did). */
const b3TraceId = (traceId: string): string => (traceId.startsWith(ZERO16) ? traceId.slice(16) : traceId);

/** What startHop reads into, reused: it holds nothing past the call. */
const incoming: Incoming = { traceId: undefined, spanId: undefined, sampled: undefined };

/**
 * Reads the incoming context from `h` (the upstream request headers, a copy
 * of the downstream's), starts this hop, and rewrites the context headers in
 * `h` with this hop's span as the parent. `random` in [0, 1) decides a new
 * trace's sampling against `samplingPercent` (0–100).
 */
export function startHop(h: Headers, samplingPercent: number, random: () => number = Math.random): TraceHop {
  const tp = h['traceparent'];
  const b3 = h['b3'];
  const formats = (tp !== undefined ? W3C : 0) | (b3 !== undefined ? B3_SINGLE : 0)
    | (h['x-b3-traceid'] !== undefined || h['x-b3-spanid'] !== undefined || h['x-b3-sampled'] !== undefined ? B3_MULTI : 0);
  const inc = incoming;
  inc.traceId = undefined;
  inc.spanId = undefined;
  inc.sampled = undefined;
  const w3c = formats !== 0 && fromTraceparent(one(tp), inc);
  if (!w3c && formats !== 0) {
    if (!fromB3Single(one(b3), inc)) fromB3Multi(h, inc);
  }
  const traceId = inc.traceId ?? randomHex(16);
  const sampled = inc.sampled ?? random() * 100 < samplingPercent;
  const hop: TraceHop = { traceId, spanId: randomHex(8), parentSpanId: inc.spanId, sampled };
  write(h, hop, formats === 0 ? W3C : formats, w3c);
  return hop;
}

function write(h: Headers, hop: TraceHop, formats: number, continuesW3c: boolean): void {
  if (formats & W3C) {
    h['traceparent'] = `00-${hop.traceId}-${hop.spanId}-${hop.sampled ? '01' : '00'}`;
    // tracestate belongs to the traceparent it came with.
    if (!continuesW3c && h['tracestate'] !== undefined) delete h['tracestate'];
  } else if (h['tracestate'] !== undefined) {
    delete h['tracestate'];
  }
  const s = hop.sampled ? '1' : '0';
  if (formats & B3_SINGLE) {
    h['b3'] = `${b3TraceId(hop.traceId)}-${hop.spanId}-${s}${hop.parentSpanId ? `-${hop.parentSpanId}` : ''}`;
  }
  if (formats & B3_MULTI) {
    h['x-b3-traceid'] = b3TraceId(hop.traceId);
    h['x-b3-spanid'] = hop.spanId;
    if (hop.parentSpanId) h['x-b3-parentspanid'] = hop.parentSpanId;
    else delete h['x-b3-parentspanid'];
    h['x-b3-sampled'] = s;
  }
}

/** Starts the hop of a request whose upstream headers are built, when the mesh settings turn tracing on; else does nothing. */
export function traceRequest(ex: { trace: TraceHop | undefined; readonly headers: Headers }, mesh: MeshSettings): void {
  const t = mesh.tracing;
  if (t !== undefined) ex.trace = startHop(ex.headers, t.sampling);
}
