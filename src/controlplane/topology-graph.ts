/**
 * The service graph's data and arithmetic (schema `trellis.dev/topology/v1`):
 * the document `GET /api/topology` answers, the series it is made of (read
 * from each proxy's Istio service metrics by `seriesOf`), the increases of
 * those series over a window as Prometheus's `increase()` sees counters
 * (`increases`), and the graph built from them (`buildGraph`): edges from a
 * source workload to a destination service with rate, errors and latency,
 * and nodes with their golden signals. The scraper that feeds it is
 * topology.ts; the rules for merging source and destination reports are in
 * its header.
 */
import type { Registry } from '../registry/types.js';
import { histogramQuantile, parsePromText } from '../telemetry/prom-text.js';

export const TOPOLOGY_SCHEMA = 'trellis.dev/topology/v1';

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
export interface Scrape {
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
export function increases(scrapes: readonly Scrape[], from: number, into: Map<string, number>): void {
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

export const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
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
