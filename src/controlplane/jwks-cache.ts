/**
 * The control plane's JWKS cache: fetches the key set of every `jwksUri` the
 * configuration names, so that compilation stays pure (keys come in as data)
 * and proxies need no outbound access (keys travel inlined in snapshots).
 *
 * - GET over http or https (https verified against Node's CA roots, plus
 *   extra PEM roots if given), a timeout per URI (the rules' `timeout`, 5 s by
 *   default), bodies bounded (1 MiB by default), no redirects followed;
 * - refresh every 20 min (Istio's `PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`);
 *   after a failure, retry sooner with a doubling backoff (1 s up to 5 min);
 * - a failed refresh keeps the last good keys (and records the error);
 * - `onChange` fires when what compilation reads changes: the keys of a URI,
 *   or a URI without keys failing for the first time (its diagnostic).
 */
import { rootCertificates } from 'node:tls';
import { Agent, request } from 'undici';
import { deepFreeze, stableJson } from '../api/validate.js';
import { hashText } from '../compile/hash.js';
import { DEFAULT_JWKS_TIMEOUT_MS, type JwksEntry, type JwksSource } from '../compile/request-authentication.js';
import type { Jwk } from '../protocol/request-authn.js';

export interface JwksCacheOptions {
  /** Called (with the URI) when its entry changed in a way compilation reads. */
  readonly onChange?: (uri: string) => void;
  /** Called with a line for the log when a fetch fails or keys change. */
  readonly log?: (line: string) => void;
  /** Default 20 min. */
  readonly refreshIntervalMs?: number;
  /** First retry delay after a failure, doubled on each further failure. Default 1 s. */
  readonly retryInitialMs?: number;
  /** Longest retry delay. Default 5 min (never more than the refresh interval). */
  readonly retryMaxMs?: number;
  /** Largest accepted body. Default 1 MiB. */
  readonly maxBytes?: number;
  /** Extra trusted roots (PEM) for https URIs, besides Node's; for tests and private issuers. */
  readonly ca?: string | readonly string[];
}

export interface JwksCache {
  /** Fetches URIs not seen before at once, forgets URIs no longer named, updates timeouts. */
  sync(sources: readonly JwksSource[]): void;
  get(uri: string): JwksEntry | undefined;
  /** Every entry by URI, as `compileRequestAuthn` takes them: a new map after each change, else the same one. */
  entries(): ReadonlyMap<string, JwksEntry>;
  /** Resolves when every URI named so far has been tried at least once. */
  settled(): Promise<void>;
  /** Fetches one URI now, outside its schedule; resolves with its entry after the attempt. */
  refresh(uri: string): Promise<JwksEntry | undefined>;
  /** Stops every timer and fetch. */
  close(): Promise<void>;
}

/** Istio's default refresh interval. */
export const JWKS_REFRESH_INTERVAL_MS = 20 * 60_000;
export const JWKS_MAX_BYTES = 1024 * 1024;

interface UriState {
  readonly uri: string;
  timeoutMs: number;
  entry?: JwksEntry;
  failures: number;
  timer?: NodeJS.Timeout;
  inflight?: Promise<void>;
  readonly firstTry: Promise<void>;
  markTried: () => void;
}

export function createJwksCache(opts: JwksCacheOptions = {}): JwksCache {
  const refreshMs = opts.refreshIntervalMs ?? JWKS_REFRESH_INTERVAL_MS;
  const retryInitialMs = opts.retryInitialMs ?? 1000;
  const retryMaxMs = Math.min(opts.retryMaxMs ?? 5 * 60_000, refreshMs);
  const maxBytes = opts.maxBytes ?? JWKS_MAX_BYTES;
  const extraCa = opts.ca === undefined ? [] : typeof opts.ca === 'string' ? [opts.ca] : [...opts.ca];
  const dispatcher = new Agent({
    connect: extraCa.length ? { ca: [...rootCertificates, ...extraCa] } : {},
    keepAliveTimeout: 1000,
  });
  const closing = new AbortController();
  const states = new Map<string, UriState>();
  let view: ReadonlyMap<string, JwksEntry> = new Map();
  let closed = false;

  const rebuildView = () => {
    const m = new Map<string, JwksEntry>();
    for (const s of states.values()) if (s.entry) m.set(s.uri, s.entry);
    view = m;
  };

  const schedule = (s: UriState, delay: number) => {
    if (closed || states.get(s.uri) !== s) return;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => void attempt(s), delay);
    s.timer.unref();
  };

  const attempt = (s: UriState): Promise<void> => {
    if (s.inflight) return s.inflight;
    clearTimeout(s.timer);
    const live = () => states.get(s.uri) === s;
    s.inflight = (async () => {
      const before = s.entry;
      try {
        const keys = await fetchJwks(s.uri, { timeoutMs: s.timeoutMs, maxBytes, dispatcher, signal: closing.signal });
        const version = hashText(stableJson(keys));
        s.failures = 0;
        if (before?.version === version && before.error === undefined) {
          // Same keys as before: nothing changes.
        } else {
          s.entry = Object.freeze({ keys, version });
          if (live()) rebuildView();
          if (before?.version !== version && live()) {
            opts.log?.(`JWKS ${s.uri}: ${before?.keys ? 'keys changed' : 'keys fetched'} (${keys.length} keys)`);
            opts.onChange?.(s.uri);
          }
        }
        schedule(s, refreshMs);
      } catch (e) {
        if (closed) return;
        const error = (e as Error).message;
        s.entry = Object.freeze({ ...(before?.keys ? { keys: before.keys, version: before.version } : {}), error });
        if (live()) rebuildView();
        const delay = Math.min(retryInitialMs * 2 ** s.failures, retryMaxMs);
        s.failures++;
        opts.log?.(`JWKS ${s.uri}: fetch failed: ${error}; ${before?.keys ? 'keeping the last good keys; ' : ''}retry in ${Math.round(delay / 100) / 10} s`);
        if (!before?.keys && before?.error === undefined && live()) opts.onChange?.(s.uri);
        schedule(s, delay);
      } finally {
        s.inflight = undefined;
        s.markTried();
      }
    })();
    return s.inflight;
  };

  return {
    sync(sources) {
      if (closed) return;
      const named = new Set<string>();
      for (const src of sources) {
        named.add(src.uri);
        const old = states.get(src.uri);
        if (old) {
          old.timeoutMs = src.timeoutMs;
          continue;
        }
        let markTried!: () => void;
        const firstTry = new Promise<void>((resolve) => (markTried = resolve));
        const s: UriState = { uri: src.uri, timeoutMs: src.timeoutMs || DEFAULT_JWKS_TIMEOUT_MS, failures: 0, firstTry, markTried };
        states.set(src.uri, s);
        void attempt(s);
      }
      let removed = false;
      for (const [uri, s] of states) {
        if (named.has(uri)) continue;
        clearTimeout(s.timer);
        states.delete(uri);
        s.markTried();
        removed = true;
      }
      if (removed) rebuildView();
    },
    get: (uri) => states.get(uri)?.entry,
    entries: () => view,
    async settled() {
      await Promise.all([...states.values()].map((s) => s.firstTry));
    },
    async refresh(uri) {
      const s = states.get(uri);
      if (!s || closed) return undefined;
      await attempt(s);
      return s.entry;
    },
    async close() {
      if (closed) return;
      closed = true;
      closing.abort();
      for (const s of states.values()) {
        clearTimeout(s.timer);
        s.markTried();
      }
      await Promise.allSettled([...states.values()].map((s) => s.inflight));
      await dispatcher.destroy();
    },
  };
}

interface FetchOptions {
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly dispatcher: Agent;
  readonly signal: AbortSignal;
}

/** One GET of a JWKS document: its keys (objects with a `kty`), or an error whose message says what went wrong. */
export async function fetchJwks(uri: string, o: FetchOptions): Promise<readonly Jwk[]> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = AbortSignal.any([o.signal, timeout]);
  let text: string;
  try {
    const res = await request(uri, {
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json' },
      dispatcher: o.dispatcher,
      signal,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    });
    const discard = () => {
      res.body.on('error', () => {});
      res.body.destroy();
    };
    if (res.statusCode < 200 || res.statusCode > 299) {
      discard();
      throw new Error(`HTTP status ${res.statusCode}`);
    }
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > o.maxBytes) {
      discard();
      throw new Error(`the key set is ${declared} bytes, more than the ${o.maxBytes} accepted`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > o.maxBytes) {
        discard();
        throw new Error(`the key set is larger than the ${o.maxBytes} bytes accepted`);
      }
      chunks.push(chunk as Buffer);
    }
    text = Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    if (timeout.aborted) throw new Error(`no answer within ${o.timeoutMs} ms`);
    if (o.signal.aborted) throw new Error('the cache was closed');
    const err = e as Error & { code?: string; cause?: { code?: string; message?: string } };
    throw new Error(err.cause?.message ? `${err.message}: ${err.cause.message}` : err.message);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`the answer is not JSON: ${(e as Error).message}`);
  }
  const list = doc !== null && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(list)) throw new Error('the answer is not a JSON Web Key Set (an object with a "keys" list)');
  const keys = list.filter((k): k is Jwk => k !== null && typeof k === 'object' && !Array.isArray(k) && typeof (k as { kty?: unknown }).kty === 'string');
  for (const k of keys) deepFreeze(k);
  return Object.freeze(keys);
}
