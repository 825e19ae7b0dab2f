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
 */
import { get } from 'node:http';
import { parseDuration } from '../api/duration.js';
import type { Registry } from '../registry/types.js';
import { histogramQuantile, parsePromText } from '../telemetry/prom-text.js';

export const TOPOLOGY_SCHEMA = 'trellis.dev/topology/v1';

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

/** Golden signals over a window. */
export interface Signals {
  readonly requests: number;
  /** 5xx, no response (`0`), upstream failure flags, non-zero gRPC status. */
  readonly errors: number;
  /** 4xx that are not errors. */
  readonly clientErrors: number;
  readonly rps: number;
  /** errors / requests. */
  readonly errorRatio: number;
  /** From the duration histogram's bucket increases, interpolated as Prometheus's histogram_quantile does; null without observations. */
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number } | null;
  readonly responseCodes: Readonly<Record<string, number>>;
}

export interface ServiceNode {
  readonly id: string;
  readonly kind: 'service';
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  /** Whether the registry knows it (a host seen only in metrics is not). */
  readonly inRegistry: boolean;
  /** Workload ids (`workload:name.namespace`) that run it. */
  readonly workloads: readonly string[];
  readonly instances: { readonly total: number; readonly inRotation: number };
  readonly inbound: (Signals & { readonly reporter: 'source' | 'destination' }) | null;
}

export interface WorkloadNode {
  readonly id: string;
  readonly kind: 'workload';
  readonly name: string;
  readonly namespace: string;
  /** Service ids it runs. */
  readonly services: readonly string[];
}

export interface UnknownNode {
  readonly id: 'unknown';
  readonly kind: 'unknown';
  readonly name: 'unknown';
}

export interface Edge extends Signals {
  /** A workload id, or `unknown`. */
  readonly source: string;
  /** A service id. */
  readonly destination: string;
  readonly reporter: 'source' | 'destination';
  /** `http` or `grpc`: the protocol of most of its requests. */
  readonly protocol: string;
  /** Requests by the workload that answered them (`name.namespace`). */
  readonly destinationWorkloads: Readonly<Record<string, number>>;
}

export interface TopologyDoc {
  readonly schema: typeof TOPOLOGY_SCHEMA;
  readonly generatedAt: string;
  readonly window: { readonly seconds: number; readonly coveredSeconds: number };
  readonly scrape: { readonly intervalSeconds: number; readonly lastAt: string | null; readonly proxies: number; readonly answered: number; readonly failed: readonly string[] };
  readonly nodes: readonly (ServiceNode | WorkloadNode | UnknownNode)[];
  readonly edges: readonly Edge[];
}

const LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'destination_service', 'destination_service_name', 'destination_service_namespace',
  'destination_workload', 'destination_workload_namespace', 'request_protocol', 'response_code', 'response_flags', 'grpc_response_status',
] as const;
const SEP = '\x1f';
const UNKNOWN = 'unknown';
/** Envoy response flags that mean the request failed, whatever its status (DPE, SI, DT: bad input, idle and overall timeouts). */
const FAILURE_FLAGS = new Set(['UH', 'UF', 'UC', 'UT', 'URX', 'NC', 'DC', 'DPE', 'SI', 'DT']);

/** The cumulative values of one scrape, by series key (`r` or `b<le>`, then LABELS' values). */
interface Scrape {
  readonly at: number;
  readonly admin: string;
  /** Epoch ms the proxy's process started (prom-client's process_start_time_seconds), when it says. */
  readonly processStart: number | undefined;
  readonly values: ReadonlyMap<string, number>;
}

/** Reads the service-metric series of one exposition into series keys. */
export function seriesOf(text: string): { values: Map<string, number>; processStart: number | undefined } {
  let prefix: string | undefined;
  const { samples } = parsePromText(text, (n) => n.endsWith('requests_total') || n.endsWith('request_duration_milliseconds_bucket') || n === 'process_start_time_seconds');
  const values = new Map<string, number>();
  let processStart: number | undefined;
  for (const s of samples) {
    if (s.name === 'process_start_time_seconds') { processStart = s.value * 1000; continue; }
    if (s.labels['reporter'] === undefined) continue;
    const counter = s.name.endsWith('requests_total');
    const p = s.name.slice(0, -(counter ? 'requests_total' : 'request_duration_milliseconds_bucket').length);
    // One prefix per proxy: the first family with Istio's labels names it.
    if ((prefix ??= p) !== p) continue;
    const kind = counter ? 'r' : `b${s.labels['le']}`;
    const key = [kind, ...LABELS.map((l) => s.labels[l] ?? '')].join(SEP);
    values.set(key, (values.get(key) ?? 0) + s.value);
  }
  return { values, processStart };
}

/** Increases of every series of one proxy's history over the window starting at `from` (see the header). */
function increases(scrapes: readonly Scrape[], from: number, into: Map<string, number>): void {
  let b = -1;
  for (let i = 0; i < scrapes.length; i++) if (scrapes[i]!.at <= from) b = i;
  const first = scrapes[Math.max(b, 0)];
  if (!first) return;
  const add = (k: string, v: number) => { if (v > 0) into.set(k, (into.get(k) ?? 0) + v); };
  if (b < 0 && first.processStart !== undefined && first.processStart >= from) for (const [k, v] of first.values) add(k, v);
  for (let i = Math.max(b, 0) + 1; i < scrapes.length; i++) {
    const prev = scrapes[i - 1]!;
    const cur = scrapes[i]!;
    const newProcess = cur.admin !== prev.admin || (cur.processStart !== undefined && prev.processStart !== undefined && Math.abs(cur.processStart - prev.processStart) >= 1000);
    for (const [k, v] of cur.values) {
      const p = newProcess ? undefined : prev.values.get(k);
      add(k, p === undefined || v < p ? v : v - p);
    }
  }
}

interface Acc {
  requests: number;
  errors: number;
  clientErrors: number;
  readonly codes: Map<string, number>;
  readonly protocols: Map<string, number>;
  readonly workloads: Map<string, number>;
  readonly buckets: Map<number, number>;
}

const newAcc = (): Acc => ({ requests: 0, errors: 0, clientErrors: 0, codes: new Map(), protocols: new Map(), workloads: new Map(), buckets: new Map() });
const bump = <K>(m: Map<K, number>, k: K, n: number) => m.set(k, (m.get(k) ?? 0) + n);

function addSeries(a: Acc, kind: string, l: Readonly<Record<(typeof LABELS)[number], string>>, n: number): void {
  if (kind !== 'r') {
    const le = kind.slice(1);
    bump(a.buckets, le === '+Inf' ? Infinity : Number(le), n);
    return;
  }
  const code = l.response_code;
  const failed = code === '0' || Number(code) >= 500 || l.response_flags.split(',').some((f) => FAILURE_FLAGS.has(f)) || (l.grpc_response_status !== '' && l.grpc_response_status !== '0');
  a.requests += n;
  if (failed) a.errors += n;
  else if (code.startsWith('4')) a.clientErrors += n;
  bump(a.codes, code, n);
  bump(a.protocols, l.request_protocol || 'http', n);
  if (l.destination_workload && l.destination_workload !== UNKNOWN) bump(a.workloads, `${l.destination_workload}.${l.destination_workload_namespace}`, n);
}

function signals(a: Acc, seconds: number): Signals {
  const buckets = [...a.buckets].map(([le, count]) => ({ le, count }));
  const q = (x: number) => round(histogramQuantile(x, buckets) ?? NaN);
  const p50 = q(0.5);
  return {
    requests: a.requests,
    errors: a.errors,
    clientErrors: a.clientErrors,
    rps: round(seconds > 0 ? a.requests / seconds : 0),
    errorRatio: round(a.requests > 0 ? a.errors / a.requests : 0, 4),
    latencyMs: Number.isNaN(p50) ? null : { p50, p90: q(0.9), p99: q(0.99) },
    responseCodes: Object.fromEntries([...a.codes].sort(([x], [y]) => Number(x) - Number(y))),
  };
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
const serviceId = (name: string, namespace: string, hostname: string) => `service:${namespace && namespace !== UNKNOWN ? `${name}.${namespace}` : hostname}`;

/** The nodes and edges of one window, from the summed increases of every proxy. */
export function buildGraph(inc: ReadonlyMap<string, number>, registry: Registry, seconds: number): { nodes: TopologyDoc['nodes']; edges: Edge[] } {
  const edges = new Map<string, { acc: Acc; l: Record<string, string> }>();
  const served = new Map<string, Acc>();
  for (const [key, n] of inc) {
    const [kind, ...vals] = key.split(SEP);
    const l = Object.fromEntries(LABELS.map((name, i) => [name, vals[i] ?? ''])) as Record<(typeof LABELS)[number], string>;
    const dest = serviceId(l.destination_service_name, l.destination_service_namespace, l.destination_service);
    const src = l.source_workload && l.source_workload !== UNKNOWN ? `workload:${l.source_workload}.${l.source_workload_namespace}` : UNKNOWN;
    const ek = `${l.reporter}${SEP}${src}${SEP}${dest}`;
    let e = edges.get(ek);
    if (!e) edges.set(ek, (e = { acc: newAcc(), l: { ...l, src, dest } }));
    addSeries(e.acc, kind!, l, n);
    let s = served.get(`${l.reporter}${SEP}${dest}`);
    if (!s) served.set(`${l.reporter}${SEP}${dest}`, (s = newAcc()));
    addSeries(s, kind!, l, n);
  }
  const bySource = [...edges.values()].filter((e) => e.l['reporter'] === 'source' && e.acc.requests > 0);
  const reportedBySource = new Set(bySource.map((e) => `${e.l['src']}${SEP}${e.l['dest']}`));
  const calledByMesh = new Set(bySource.map((e) => e.l['dest']));
  const fillIns = [...edges.values()].filter((e) => e.l['reporter'] === 'destination' && e.acc.requests > 0 &&
    !reportedBySource.has(`${e.l['src']}${SEP}${e.l['dest']}`) && (e.l['src'] !== UNKNOWN || !calledByMesh.has(e.l['dest']!)));
  const out: Edge[] = [...bySource, ...fillIns].map(({ acc, l }) => ({
    source: l['src']!,
    destination: l['dest']!,
    reporter: l['reporter'] as 'source' | 'destination',
    protocol: [...acc.protocols].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'http',
    destinationWorkloads: Object.fromEntries([...acc.workloads].sort(([x], [y]) => (x < y ? -1 : 1))),
    ...signals(acc, seconds),
  })).sort((a, b) => (a.source + a.destination < b.source + b.destination ? -1 : 1));
  return { nodes: nodesOf(out, edges, served, registry, seconds), edges: out };
}

function nodesOf(edges: readonly Edge[], all: Map<string, { l: Record<string, string> }>, served: Map<string, Acc>, registry: Registry, seconds: number): TopologyDoc['nodes'] {
  const services = new Map<string, { name: string; namespace: string; hostname: string; inRegistry: boolean; workloads: Set<string>; instances: Set<string>; inRotation: Set<string> }>();
  const workloads = new Map<string, { name: string; namespace: string; services: Set<string> }>();
  const workload = (name: string, namespace: string) => {
    const id = `workload:${name}.${namespace}`;
    if (!workloads.has(id)) workloads.set(id, { name, namespace, services: new Set() });
    return id;
  };
  for (const s of registry.services()) {
    const id = serviceId(s.name, s.namespace, s.hostname);
    const node = { name: s.name, namespace: s.namespace, hostname: s.hostname, inRegistry: true, workloads: new Set<string>(), instances: new Set<string>(), inRotation: new Set<string>() };
    services.set(id, node);
    for (const p of s.ports) {
      for (const e of registry.endpoints(s.hostname, p.port)) {
        const w = workload(e.workload, e.namespace);
        node.workloads.add(w);
        workloads.get(w)!.services.add(id);
        node.instances.add(e.instance);
        if (e.address !== undefined && (e.health === 'HEALTHY' || e.health === 'UNKNOWN')) node.inRotation.add(e.instance);
      }
    }
  }
  for (const { l } of all.values()) {
    if (!services.has(l['dest']!)) {
      services.set(l['dest']!, { name: l['destination_service_name']!, namespace: l['destination_service_namespace']!, hostname: l['destination_service']!, inRegistry: false, workloads: new Set(), instances: new Set(), inRotation: new Set() });
    }
  }
  for (const e of edges) {
    if (e.source !== UNKNOWN && !workloads.has(e.source)) {
      const [name, ...ns] = e.source.slice('workload:'.length).split('.');
      workload(name!, ns.join('.'));
    }
  }
  const inbound = (id: string): ServiceNode['inbound'] => {
    const dest = served.get(`destination${SEP}${id}`);
    if (dest && dest.requests > 0) return { ...signals(dest, seconds), reporter: 'destination' };
    const src = served.get(`source${SEP}${id}`);
    return src && src.requests > 0 ? { ...signals(src, seconds), reporter: 'source' } : null;
  };
  const sorted = <T>(m: Map<string, T>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return [
    ...sorted(services).map(([id, s]): ServiceNode => ({
      id, kind: 'service', name: s.name, namespace: s.namespace, hostname: s.hostname, inRegistry: s.inRegistry,
      workloads: [...s.workloads].sort(), instances: { total: s.instances.size, inRotation: s.inRotation.size }, inbound: inbound(id),
    })),
    ...sorted(workloads).map(([id, w]): WorkloadNode => ({ id, kind: 'workload', name: w.name, namespace: w.namespace, services: [...w.services].sort() })),
    ...(edges.some((e) => e.source === UNKNOWN) ? [{ id: UNKNOWN, kind: UNKNOWN, name: UNKNOWN } as const] : []),
  ];
}

/** A proxy's exposition is a few hundred kB at most (series are bounded by the mesh's names); more is a fault, not data. */
const MAX_EXPOSITION = 32 * 1024 * 1024;

/** GET `http://<admin>/metrics` as text; rejects on errors, non-200 and after `timeoutMs` (the error's `timeout` says which). */
function scrapeText(admin: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${admin}/metrics`, { timeout: timeoutMs, agent: false, headers: { accept: 'text/plain' } }, (res) => {
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
