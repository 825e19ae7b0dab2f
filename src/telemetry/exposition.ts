/**
 * Rendering registries for a scrape: the Prometheus text format (0.0.4) by
 * default, OpenMetrics 1.0 when the Accept header asks for
 * `application/openmetrics-text`. The process's own metrics (memory, CPU,
 * event-loop lag, GC: prom-client's default collectors) live in one
 * registry per process, created on first use and added to every scrape.
 * A scrape renders in slices between which the proxy's requests go on.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface Exposition {
  readonly contentType: string;
  readonly body: string;
}

let processRegistry: Registry | undefined;

/** The process-wide registry of prom-client's default metrics (`process_*`, `nodejs_*`, incl. `nodejs_eventloop_lag_seconds`). */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 20 });
  }
  return processRegistry;
}

/** True when the Accept header prefers OpenMetrics (Prometheus sends `application/openmetrics-text;version=1.0.0,...`). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && /application\/openmetrics-text/i.test(accept);
}

/**
 * Rendering stops for a turn of the event loop after this much work, so that
 * a scrape does not hold up the requests a proxy is carrying: rendered whole,
 * a sidecar's scrape (25 families, 130 KB) kept its event loop for 3–10 ms,
 * and each scrape showed in the latency of the requests in flight.
 */
const SLICE_MS = 0.5;

type Rendered = { name: string; readonly type: string };

// Counters lose `_total` while they render as OpenMetrics (prom-client adds it back to each sample); scrapes take turns so no render sees a name mid-change.
let turn: Promise<unknown> = Promise.resolve();

/**
 * One family at a time (prom-client's `getSingleMetricAsString`), joined as
 * prom-client's `metrics()` joins them, with a turn of the event loop
 * whenever a slice's worth of work is done. A family is rendered whole;
 * families rendered in different turns may be a few requests apart.
 */
async function renderOnce(registries: readonly Registry[], openMetrics: boolean, filter: RegExp | undefined): Promise<Exposition> {
  const merged = Registry.merge([...registries]);
  const metrics = (merged.getMetricsAsArray() as unknown as Rendered[]).filter((m) => !filter || filter.test(m.name));
  const names = metrics.map((m) => m.name);
  if (openMetrics) {
    (merged as unknown as Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const m of metrics) if (m.type === 'counter') m.name = m.name.replace(/_total$/, '');
  }
  try {
    const parts: string[] = [];
    let sliceStart = performance.now();
    for (const name of names) {
      parts.push(await merged.getSingleMetricAsString(name));
      if (performance.now() - sliceStart >= SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
    }
    return openMetrics
      ? { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: `${parts.join('\n')}\n# EOF\n` }
      : { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: `${parts.join('\n\n')}\n` };
  } finally {
    metrics.forEach((m, i) => { m.name = names[i]!; });
  }
}

/**
 * Renders the registries (plus the process's) in the format the Accept header
 * asks for; with `filter`, only the families whose name (as registered: a
 * counter's with `_total`) it matches.
 */
export function render(registries: readonly Registry[], accept: string | undefined, filter?: RegExp): Promise<Exposition> {
  const next = turn.then(() => renderOnce([...registries, processMetrics()], wantsOpenMetrics(accept), filter));
  turn = next.catch(() => undefined);
  return next;
}
