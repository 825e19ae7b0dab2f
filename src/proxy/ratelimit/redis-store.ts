/**
 * The global store: one Redis server shared by every replica of a service.
 * Each decision is one atomic Lua script (a token bucket or a fixed window)
 * on Redis's own clock, so replicas with skewed clocks still share one
 * bucket. The store never makes a request wait long:
 *
 * - `enableOfflineQueue: false` — while the connection is down, a call fails
 *   at once instead of queueing until Redis comes back;
 * - `commandTimeout` — a call that gets no answer within the policy's
 *   timeout fails;
 * - `maxRetriesPerRequest: 0` — a call in flight when the connection drops
 *   fails rather than being sent again.
 *
 * A failed call is `undefined`: the stage applies the policy's failure mode.
 * The client reconnects by itself (every 50 ms at first, then at most every
 * 500 ms), so limits resume as soon as Redis is back.
 *
 * ioredis (some 20 MiB of resident memory) is loaded when the first store is
 * made, so only proxies with a global limit carry it. A new store is given
 * a start: calls made before its first connection wait for it, at most
 * STARTUP_GRACE_MS once, so that a policy that has just arrived does not
 * answer its first requests by its failure mode only because the client was
 * still loading or connecting. After that, a call never waits for a
 * connection.
 */
import type { Redis } from 'ioredis';
import type { RateLimitAlgorithm } from '../../protocol/rate-limit.js';
import type { LimitOutcome } from './local.js';

/** KEYS[1]: the bucket; ARGV: kind (b|w), requests, period or window ms, burst. Returns {allowed, remaining, retry-after ms}. */
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local requests = tonumber(ARGV[2])
local span = tonumber(ARGV[3])
if ARGV[1] == 'b' then
  local burst = tonumber(ARGV[4])
  local rate = requests / span
  local h = redis.call('HMGET', KEYS[1], 'v', 't')
  local v = tonumber(h[1])
  local at = tonumber(h[2])
  if v == nil then v = burst; at = now end
  if now > at then v = v + (now - at) * rate; at = now end
  if v > burst then v = burst end
  local ok = 0
  local wait = 0
  if v >= 1 then v = v - 1; ok = 1 else wait = math.ceil((1 - v) / rate) end
  redis.call('HSET', KEYS[1], 'v', tostring(v), 't', tostring(at))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
  return {ok, math.floor(v), wait}
end
local index = math.floor(now / span)
local k = KEYS[1] .. ':' .. index
local n = redis.call('INCR', k)
if n == 1 then redis.call('PEXPIRE', k, span + 1000) end
if n > requests then return {0, 0, (index + 1) * span - now} end
return {1, requests - n, 0}
`;

interface ScriptClient extends Redis {
  trellisRateLimit(key: string, kind: string, requests: number, span: number, burst: number): Promise<[number, number, number]>;
}

let ioredis: Promise<{ Redis: typeof import('ioredis').Redis }> | undefined;

/** How long the calls of a new store wait for its first connection. */
export const STARTUP_GRACE_MS = 1000;

export class RedisStore {
  readonly address: string;
  #client: ScriptClient | undefined;
  /** Until the first connection (or STARTUP_GRACE_MS): what calls wait for. */
  #starting: Promise<void> | undefined;
  #closed = false;
  #lastError: string | undefined;

  constructor(address: string, timeoutMs: number) {
    this.address = address;
    let timer: NodeJS.Timeout | undefined;
    const started = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, STARTUP_GRACE_MS);
      timer.unref();
      (ioredis ??= import('ioredis')).then(
        ({ Redis }) => {
          if (this.#closed) return resolve();
          this.#client = this.#connect(Redis, address, timeoutMs);
          this.#client.once('ready', () => resolve());
        },
        (err: Error) => { this.#lastError = `ioredis cannot be loaded: ${err.message}`; resolve(); },
      );
    });
    this.#starting = started.then(() => { clearTimeout(timer); this.#starting = undefined; });
  }

  #connect(Redis: typeof import('ioredis').Redis, address: string, timeoutMs: number): ScriptClient {
    const cut = address.lastIndexOf(':');
    const host = address.slice(0, cut).replace(/^\[|\]$/g, '');
    const client = new Redis({
      host,
      port: Number(address.slice(cut + 1)),
      enableOfflineQueue: false,
      commandTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      retryStrategy: (times: number) => Math.min(50 * times, 500),
      enableReadyCheck: false,
    }) as ScriptClient;
    client.defineCommand('trellisRateLimit', { numberOfKeys: 1, lua: SCRIPT });
    // A dead Redis is an expected state (the failure mode decides); the client keeps reconnecting.
    client.on('error', (err: Error) => { this.#lastError = err.message; });
    return client;
  }

  /** Whether the connection is up now. */
  get connected(): boolean {
    return this.#client?.status === 'ready';
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** One decision for `key` under `alg`; undefined when Redis could not answer in time. */
  async take(key: string, alg: RateLimitAlgorithm): Promise<LimitOutcome | undefined> {
    try {
      if (this.#starting) await this.#starting;
      const client = this.#client;
      if (!client) return undefined;
      const [ok, remaining, wait] = alg.kind === 'token-bucket'
        ? await client.trellisRateLimit(key, 'b', alg.requests, alg.periodMs, alg.burst)
        : await client.trellisRateLimit(`${key}:w${alg.windowMs}`, 'w', alg.requests, alg.windowMs, 0);
      return { allowed: ok === 1, limit: alg.requests, remaining, retryAfterMs: wait };
    } catch (err) {
      this.#lastError = (err as Error)?.message ?? String(err);
      return undefined;
    }
  }

  close(): void {
    this.#closed = true;
    this.#client?.disconnect();
  }
}
