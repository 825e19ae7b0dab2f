/**
 * The service graph (`GET /api/topology`, schema `trellis.dev/topology/v1`):
 * who calls whom, with rate, errors and latency per edge, derived from the
 * Istio service metrics every connected proxy serves on its admin port.
 *
 * The scraper reads each proxy's `/metrics` on an interval (concurrently,
 * with a short timeout; a proxy that does not answer is skipped and counted
 * in `trellis_controlplane_scrapes_total{result}`), keeps only
 * `<prefix>requests_total` and `<prefix>request_duration_milliseconds_bucket`
 * (the prefix, `trellis_` or `istio_`, is found in each scrape), and keeps
 * the cumulative values of each scrape for `historyMs`. A window's counts
 * are the increases between scrapes, the way Prometheus's `increase()` sees
 * counters: a value that drops, or a new process behind the admin port
 * (`process_start_time_seconds` or the address changed), starts from zero
 * again, so a restarted proxy never makes a rate negative. A proxy whose
 * process started inside the window counts from zero; one that was running
 * before it counts from its first scrape.
 *
 * Edges go from a source workload to a destination service. Series reported
 * by the source proxy (`reporter="source"`) win; the destination's own
 * series fill in edges no source reports. Until the destination knows its
 * caller's identity (mTLS), it reports every caller as `unknown`, so its
 * `unknown` series stand for callers outside the mesh only where no source
 * proxy reports calling that service in the window. A service's own golden
 * signals (`inbound`) are what its proxies saw as destination (every caller,
 * retried attempts included), or, for a service without sidecars, the sum of
 * the edges into it.
 *
 * The graph's document and arithmetic are in topology-graph.ts.
 */
import { get } from 'node:http';
import { parseDuration } from '../api/duration.js';
import type { Registry } from '../registry/types.js';
import { buildGraph, increases, round, seriesOf, TOPOLOGY_SCHEMA, type Scrape, type TopologyDoc } from './topology-graph.js';

/** A proxy to scrape: its instance and admin `host:port`. */
export interface ScrapeTarget {
  readonly instance: string;
  readonly admin: string;
}

export type ScrapeResult = 'ok' | 'failed' | 'timeout';

export interface TopologyOptions {
  /** Between scrape rounds; 5 s by default. */
  readonly intervalMs?: number;
  /** How long one proxy may take to answer; the interval, within 250 ms – 2 s, by default. */
  readonly timeoutMs?: number;
  /** How far back the history goes: the longest window; 60 s. */
  readonly historyMs?: number;
  readonly targets: () => readonly ScrapeTarget[];
  readonly registry: () => Registry;
  /** Called once per proxy per round. */
  readonly onScrape?: (result: ScrapeResult) => void;
  /** Epoch milliseconds; Date.now by default. */
  readonly now?: () => number;
}

const MAX_EXPOSITION = 32 * 1024 * 1024;

/**
 * The families a scrape reads (`seriesOf`), asked of the proxy by name
 * (`/metrics?filter=`): a third of a sidecar's exposition, rendered and
 * parsed every interval. A proxy that ignores the filter sends everything,
 * which `seriesOf` reads as well.
 */
const TOPOLOGY_FAMILIES = encodeURIComponent('^(?!nodejs_|trellis_proxy_)\\w*(requests_total|request_duration_milliseconds)$|^process_start_time_seconds$');

/** GET `http://<admin>/metrics` as text; rejects on errors, non-200 and after `timeoutMs` (the error's `timeout` says which). */
function scrapeText(admin: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${admin}/metrics?filter=${TOPOLOGY_FAMILIES}`, { timeout: timeoutMs, agent: false, headers: { accept: 'text/plain' } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); return reject(new Error(`HTTP ${res.statusCode}`)); }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.length > MAX_EXPOSITION) req.destroy(new Error(`more than ${MAX_EXPOSITION} bytes of metrics`));
      });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { timeout: true })));
    req.on('error', reject);
  });
}

export class Topology {
  readonly intervalMs: number;
  readonly historyMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #history = new Map<string, Scrape[]>();
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #firstAt: number | undefined;
  #last: { at: number; proxies: number; failed: string[] } | undefined;

  constructor(readonly options: TopologyOptions) {
    this.intervalMs = options.intervalMs ?? 5000;
    this.historyMs = options.historyMs ?? 60_000;
    this.#timeoutMs = options.timeoutMs ?? Math.min(2000, Math.max(250, this.intervalMs));
    this.#now = options.now ?? Date.now;
  }

  /** Scrapes now and then every interval (nothing when the interval is 0). */
  start(): void {
    if (this.intervalMs <= 0 || this.#timer) return;
    void this.scrape();
    this.#timer = setInterval(() => void this.scrape(), this.intervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#round;
  }

  /** One round over every target; a round still running is not started again. */
  scrape(): Promise<void> {
    this.#round ??= this.#scrapeAll().finally(() => { this.#round = undefined; });
    return this.#round;
  }

  async #scrapeAll(): Promise<void> {
    const targets = this.options.targets();
    const failed: string[] = [];
    await Promise.all(targets.map(async (t) => {
      try {
        const { values, processStart } = seriesOf(await scrapeText(t.admin, this.#timeoutMs));
        const at = this.#now();
        let h = this.#history.get(t.instance);
        if (!h) this.#history.set(t.instance, (h = []));
        h.push({ at, admin: t.admin, processStart, values });
        this.options.onScrape?.('ok');
      } catch (e) {
        failed.push(t.instance);
        this.options.onScrape?.((e as { timeout?: boolean }).timeout ? 'timeout' : 'failed');
      }
    }));
    const now = this.#now();
    this.#firstAt ??= now;
    this.#last = { at: now, proxies: targets.length, failed: failed.sort() };
    this.#prune(now);
  }

  /** Drops scrapes older than the history, keeping the newest of them as the baseline of the longest window. */
  #prune(now: number): void {
    const edge = now - this.historyMs;
    for (const [instance, h] of this.#history) {
      let old = 0;
      while (old + 1 < h.length && h[old + 1]!.at <= edge) old++;
      if (old > 0) h.splice(0, old);
      if (h.length && h.at(-1)!.at < edge) this.#history.delete(instance);
    }
  }

  /** The graph over the last `windowMs` (at most the history). */
  graph(windowMs: number): TopologyDoc {
    const now = this.#now();
    const w = Math.min(Math.max(windowMs, 1), this.historyMs);
    const inc = new Map<string, number>();
    for (const h of this.#history.values()) increases(h, now - w, inc);
    const covered = this.#firstAt === undefined ? 0 : Math.min(w, now - this.#firstAt);
    const seconds = covered / 1000;
    const { nodes, edges } = buildGraph(inc, this.options.registry(), seconds);
    const last = this.#last;
    return {
      schema: TOPOLOGY_SCHEMA,
      generatedAt: new Date(now).toISOString(),
      window: { seconds: w / 1000, coveredSeconds: round(seconds) },
      scrape: {
        intervalSeconds: this.intervalMs / 1000,
        lastAt: last ? new Date(last.at).toISOString() : null,
        proxies: last?.proxies ?? 0,
        answered: last ? last.proxies - last.failed.length : 0,
        failed: last?.failed ?? [],
      },
      nodes,
      edges,
    };
  }
}

/** The admin API's answer to `/api/topology?window=<duration>` (60 s by default). */
export function topologyAnswer(t: Topology | undefined, window: string | null): { status: number; body: unknown } {
  if (!t || t.intervalMs <= 0) return { status: 503, body: { error: 'the topology is off: this control plane runs with --scrape-interval 0' } };
  const ms = window === null || window === '' ? t.historyMs : parseDuration(window);
  if (ms === undefined || ms <= 0 || ms > t.historyMs) {
    return { status: 400, body: { error: `window must be a duration like 30s or 1m, at most ${t.historyMs / 1000}s (the history the control plane keeps), not "${window}"` } };
  }
  return { status: 200, body: t.graph(ms) };
}
