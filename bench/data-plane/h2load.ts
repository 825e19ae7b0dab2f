/**
 * The load generator: h2load from Debian's nghttp2-client, over HTTP/1.1
 * keep-alive (`--h1`), for a fixed duration (`-D`).
 *
 * - `max`: 32 connections, each sending its next request as soon as the last
 *   answer came (closed loop): throughput and CPU per request.
 * - `rate`: 1 000 requests/s in all, as 10 connections at `--rps 100` each
 *   (h2load paces per connection): latency at a load every scenario holds.
 *
 * h2load prints no percentiles; its `--log-file` has one row per request
 * (start µs, status, µs to the end of the response), from which p50/p90/p99
 * are taken (nearest rank). Errors are requests that did not end in 200:
 * failed streams (status -1), other statuses, and h2load's own failed count.
 * The Host header goes as `:authority` (a `host` header would be sent twice).
 */
import { readFileSync, rmSync } from 'node:fs';
import type { Children } from './children.js';

export type Mode = 'max' | 'rate';

export const MAX_CONNECTIONS = 32;
export const RATE_RPS = 1000;
const RATE_CONNECTIONS = 10;

export interface LoadResult {
  readonly rps: number;
  /** Requests answered 200. */
  readonly ok: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
}

export interface LoadTarget {
  readonly port: number;
  readonly authority: string;
}

/** The value at rank ceil(q·n) of sorted `xs` (nearest rank); NaN when empty. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Parses h2load's summary and its log file into a result. */
export function parseRun(stdout: string, log: string): LoadResult {
  const finished = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout);
  const counts = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  const codes = /status codes: (\d+) 2xx/.exec(stdout);
  if (!finished || !counts || !codes) throw new Error(`h2load's summary is not in the expected form (requests: … status codes: …):\n${stdout.slice(-2000)}`);
  const done = Number(counts[3]);
  const failed = Number(counts[5]);
  const durations: number[] = [];
  let bad = 0;
  for (const row of log.split('\n')) {
    if (!row) continue;
    const [, status, us] = row.split('\t');
    if (status === '200') durations.push(Number(us) / 1000);
    else bad++;
  }
  const sorted = Float64Array.from(durations).sort();
  return {
    rps: Number(finished[1]),
    ok: durations.length,
    errors: Math.max(bad, failed, done - Number(codes[1])),
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
  };
}

/** One h2load run against 127.0.0.1:`target.port`, bounded: killed `durationMs` + 15 s after it started. */
export async function runLoad(children: Children, target: LoadTarget, mode: Mode, durationMs: number, logFile: string): Promise<LoadResult> {
  const shape = mode === 'max' ? ['-c', String(MAX_CONNECTIONS)] : ['-c', String(RATE_CONNECTIONS), '--rps', String(RATE_RPS / RATE_CONNECTIONS)];
  const args = ['--h1', ...shape, '-D', `${Math.round(durationMs)}ms`, '--log-file', logFile, '-H', `:authority: ${target.authority}`, `http://127.0.0.1:${target.port}/`];
  rmSync(logFile, { force: true }); // h2load appends to it
  const h = children.start(`h2load (${mode})`, 'h2load', args);
  let overran = false;
  const bound = setTimeout(() => {
    overran = true;
    void children.stop(h, 1000);
  }, durationMs + 15_000);
  await h.exited;
  clearTimeout(bound);
  await children.stop(h, 1000); // forgets the group
  if (h.exit?.code !== 0) {
    const why = overran ? `killed: it ran past ${durationMs + 15_000} ms` : h.exit?.signal ? `ended by ${h.exit.signal}` : `status ${h.exit?.code}`;
    throw new Error(`h2load ${args.join(' ')} failed (${why}):\n${h.tail()}`);
  }
  return parseRun(h.out, readFileSync(logFile, 'utf8'));
}
