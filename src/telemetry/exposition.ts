/**
 * Rendering registries for a scrape: the Prometheus text format (0.0.4) by
 * default, OpenMetrics 1.0 when the Accept header asks for
 * `application/openmetrics-text`. The process's own metrics (memory, CPU,
 * event-loop lag, GC: prom-client's default collectors) live in one
 * registry per process, created on first use and added to every scrape.
 */
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

// prom-client renames counters (drops `_total`) while it renders OpenMetrics; scrapes take turns so no render sees a name mid-change.
let turn: Promise<unknown> = Promise.resolve();

async function renderOnce(registries: readonly Registry[], openMetrics: boolean): Promise<Exposition> {
  const merged = Registry.merge([...registries]);
  if (!openMetrics) return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: await merged.metrics() };
  const names = merged.getMetricsAsArray().map((m) => [m, (m as unknown as { name: string }).name] as const);
  (merged as unknown as Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  try {
    return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: await merged.metrics() };
  } finally {
    for (const [m, name] of names) (m as unknown as { name: string }).name = name;
  }
}

/** Renders the registries (plus the process's) in the format the Accept header asks for. */
export function render(registries: readonly Registry[], accept: string | undefined): Promise<Exposition> {
  const next = turn.then(() => renderOnce([...registries, processMetrics()], wantsOpenMetrics(accept)));
  turn = next.catch(() => undefined);
  return next;
}
