/**
 * Small HTTP clients for readiness and the admin APIs: one GET with a
 * timeout, and bounded polling until an answer is 2xx.
 */
import { get } from 'node:http';
import { connect } from 'node:net';

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** GET `url`; rejects on connection errors and after `timeoutMs`. */
export function httpGet(url: string, timeoutMs = 1000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** GET `url` and parse JSON; rejects on a non-2xx answer. */
export async function getJson<T>(url: string, timeoutMs = 2000): Promise<T> {
  const r = await httpGet(url, timeoutMs);
  if (r.status < 200 || r.status > 299) throw new Error(`GET ${url}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body) as T;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function tcpOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, timeout: timeoutMs });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('timeout', () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(false));
  });
}

export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

/** The outcome of a bounded wait: ready after `ms`, or not, with the last thing seen. */
export type WaitResult = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly ms: number; readonly last: string };

/**
 * Calls `check` until it answers `true`, the time is up or `signal` aborts.
 * `check` returns true, or a string saying what it saw instead.
 */
export async function pollUntil(check: () => Promise<true | string>, o: PollOptions): Promise<WaitResult> {
  const began = Date.now();
  const interval = o.intervalMs ?? 100;
  let last = 'not checked yet';
  for (;;) {
    if (o.signal?.aborted) return { ok: false, ms: Date.now() - began, last: 'aborted' };
    try {
      const r = await check();
      if (r === true) return { ok: true, ms: Date.now() - began };
      last = r;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() - began >= o.timeoutMs) return { ok: false, ms: Date.now() - began, last };
    await sleep(interval, o.signal);
  }
}

/** A GET of `url` that answers 2xx. */
export function httpOk(url: string, o: PollOptions): Promise<WaitResult> {
  return pollUntil(async () => {
    const r = await httpGet(url, Math.min(1000, o.timeoutMs));
    return r.status >= 200 && r.status < 300 ? true : `HTTP ${r.status} from ${url}`;
  }, o);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
