/**
 * Header handling on the hot path. Hop-by-hop fields (RFC 9110 §7.6.1: the
 * fixed list plus every field the Connection header names) are removed in
 * both directions; x-forwarded-for/-proto and x-request-id are set;
 * identity-carrying headers are stripped from traffic that enters the mesh
 * (DESIGN.md §5); a route's header operations compile to one function when
 * the snapshot is applied. Trace context headers are trace-context.ts's.
 */
import { randomFillSync } from 'node:crypto';
import type { HeaderOps } from '../protocol/snapshot.js';
import { SnapshotError } from './errors.js';

/** Lowercase names; Node and undici both accept this shape. */
export type Headers = Record<string, string | string[] | undefined>;
type HeaderSource = Readonly<Record<string, string | string[] | undefined>>;

const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade']);
/**
 * Dropped from requests as well: `proxy-authorization` is meant for this
 * proxy, and `expect: 100-continue` is answered by this proxy's server.
 */
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'proxy-authorization', 'expect']);

/**
 * Headers that carry a caller's identity. Only a proxy may set them: they are
 * removed from everything a peer, an app or the outside world sends in.
 */
export const IDENTITY_HEADERS: readonly string[] = Object.freeze([
  'x-forwarded-client-cert',
  'x-client-cert',
  'x-ssl-client-cert',
  'x-trellis-peer-identity',
  'x-trellis-source-identity',
  'x-envoy-peer-metadata',
  'x-envoy-peer-metadata-id',
  'x-istio-attributes',
]);

/** Field names listed in a Connection header other than the usual `keep-alive` / `close`. */
function connectionListed(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const s = (typeof v === 'string' ? v : v.join(',')).toLowerCase();
  if (s === 'keep-alive' || s === 'close') return undefined;
  const out = s.split(',').map((t) => t.trim()).filter((t) => t && t !== 'keep-alive' && t !== 'close');
  return out.length ? out : undefined;
}

function copyWithout(src: HeaderSource, drop: ReadonlySet<string>): Headers {
  const out: Headers = {};
  const listed = connectionListed(src.connection);
  for (const k in src) {
    if (drop.has(k) || k.charCodeAt(0) === 58 /* HTTP/2 pseudo-header */ || (listed !== undefined && listed.includes(k))) continue;
    const v = src[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The request headers to send upstream: the downstream's minus hop-by-hop fields. */
export function upstreamRequestHeaders(src: HeaderSource): Headers {
  return copyWithout(src, REQUEST_DROP);
}

/** The response headers to send downstream: the upstream's minus hop-by-hop fields. */
export function downstreamResponseHeaders(src: HeaderSource): Headers {
  return copyWithout(src, HOP_BY_HOP);
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Random bytes for request ids, 256 ids' worth at a time (as crypto.randomUUID batches them). */
const idBytes = Buffer.allocUnsafe(16 * 256);
let idAt = idBytes.length;
const idText = Buffer.allocUnsafe(36);

/**
 * A random (version 4) UUID, lowercase: crypto.randomUUID's format and
 * randomness, spelled into a buffer and read out as one string (randomUUID
 * joins twenty pieces, which the write upstream then has to flatten).
 */
export function requestIdUuid(): string {
  if (idAt === idBytes.length) { randomFillSync(idBytes); idAt = 0; }
  let o = 0;
  for (let i = 0; i < 16; i++) {
    let b = idBytes[idAt + i]!;
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    if (i === 4 || i === 6 || i === 8 || i === 10) idText[o++] = 0x2d;
    idText[o++] = HEX[b >> 4]!;
    idText[o++] = HEX[b & 15]!;
  }
  idAt += 16;
  return idText.toString('latin1', 0, 36);
}

/** Keeps a non-empty x-request-id, or creates one (a UUID); returns it. */
export function ensureRequestId(h: Headers): string {
  const v = h['x-request-id'];
  if (typeof v === 'string' && v.length > 0) return v;
  const id = requestIdUuid();
  h['x-request-id'] = id;
  return id;
}

/** Appends the peer's address to x-forwarded-for and sets x-forwarded-proto when absent. */
export function setForwarded(h: Headers, remoteAddress: string | undefined, scheme: string): void {
  if (remoteAddress) {
    const xff = h['x-forwarded-for'];
    h['x-forwarded-for'] = xff === undefined ? remoteAddress : `${typeof xff === 'string' ? xff : xff.join(', ')}, ${remoteAddress}`;
  }
  if (h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = scheme;
}

export function stripIdentityHeaders(h: Headers): void {
  for (let i = 0; i < IDENTITY_HEADERS.length; i++) {
    const name = IDENTITY_HEADERS[i]!;
    if (h[name] !== undefined) delete h[name];
  }
}

/** One prepared set of header operations; applied in place. */
export type HeaderEdit = (h: Headers) => void;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[\r\n\0]/;

function checkOps(ops: HeaderOps): void {
  for (const [k, v] of [...ops.set, ...ops.add]) {
    if (!TOKEN.test(k)) throw new SnapshotError(`header operation names an invalid header "${k}"`);
    if (BAD_VALUE.test(v)) throw new SnapshotError(`header operation on "${k}" has a value with CR, LF or NUL`);
  }
  for (const k of ops.remove) if (!TOKEN.test(k)) throw new SnapshotError(`header operation removes an invalid header "${k}"`);
}

function editFor(ops: HeaderOps): HeaderEdit {
  const { remove, set, add } = ops;
  return (h) => {
    for (let i = 0; i < remove.length; i++) delete h[remove[i]!];
    for (let i = 0; i < set.length; i++) { const [k, v] = set[i]!; h[k] = v; }
    for (let i = 0; i < add.length; i++) {
      const [k, v] = add[i]!;
      const cur = h[k];
      h[k] = cur === undefined ? v : typeof cur === 'string' ? [cur, v] : [...cur, v];
    }
  };
}

/**
 * Compiles levels of header operations, applied in the order given (the
 * route plan gives the weighted destination's, then the route's, as Envoy
 * evaluates them, so the route's win): each level removes, then sets, then
 * appends, as Envoy does. Throws a SnapshotError for a name or value Node
 * would refuse per request.
 */
export function compileHeaderOps(levels: readonly (HeaderOps | undefined)[]): HeaderEdit | undefined {
  const edits: HeaderEdit[] = [];
  for (const ops of levels) {
    if (!ops || (ops.set.length === 0 && ops.add.length === 0 && ops.remove.length === 0)) continue;
    checkOps(ops);
    edits.push(editFor(ops));
  }
  if (edits.length === 0) return undefined;
  if (edits.length === 1) return edits[0];
  return (h) => { for (const e of edits) e(h); };
}
