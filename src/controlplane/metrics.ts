/**
 * The control plane's metrics, in Prometheus text format: pushes, push
 * latency (change → sent, and sent → acked), NACKs, connected proxies,
 * configuration reloads and errors. Kept as plain counters; nothing is
 * computed until /metrics is read.
 */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

class Histogram {
  readonly counts = BUCKETS.map(() => 0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) this.counts[i]!++;
  }

  render(name: string): string[] {
    const out = BUCKETS.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`);
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return out;
  }
}

export class ControlPlaneMetrics {
  pushes = 0;
  nacks = 0;
  acks = 0;
  refusals = 0;
  reloadsOk = 0;
  reloadsRejected = 0;
  /** Time from the first change of a debounce window to the push being sent. */
  readonly convergence = new Histogram();
  /** Time from a push being sent to its ACK. */
  readonly pushLatency = new Histogram();

  /** Renders every metric; the gauges are read from the live state. */
  render(g: { connectedProxies: number; knownProxies: number; configErrors: number; registeredInstances: number }): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string, body: string[]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...body);
    };
    metric('trellis_controlplane_pushes_total', 'counter', 'Snapshots pushed to proxies.', [`trellis_controlplane_pushes_total ${this.pushes}`]);
    metric('trellis_controlplane_acks_total', 'counter', 'Snapshots proxies acknowledged.', [`trellis_controlplane_acks_total ${this.acks}`]);
    metric('trellis_controlplane_nacks_total', 'counter', 'Snapshots proxies rejected (NACK).', [`trellis_controlplane_nacks_total ${this.nacks}`]);
    metric('trellis_controlplane_registrations_refused_total', 'counter', 'Registrations refused (unknown instance, claims that disagree).', [`trellis_controlplane_registrations_refused_total ${this.refusals}`]);
    metric('trellis_controlplane_config_reloads_total', 'counter', 'Configuration reloads by result.', [
      `trellis_controlplane_config_reloads_total{result="ok"} ${this.reloadsOk}`,
      `trellis_controlplane_config_reloads_total{result="rejected"} ${this.reloadsRejected}`,
    ]);
    metric('trellis_controlplane_push_convergence_seconds', 'histogram', 'Time from a change to the push that carries it.', this.convergence.render('trellis_controlplane_push_convergence_seconds'));
    metric('trellis_controlplane_push_latency_seconds', 'histogram', 'Time from a push to its acknowledgement.', this.pushLatency.render('trellis_controlplane_push_latency_seconds'));
    metric('trellis_controlplane_connected_proxies', 'gauge', 'Proxies with an open stream.', [`trellis_controlplane_connected_proxies ${g.connectedProxies}`]);
    metric('trellis_controlplane_known_proxies', 'gauge', 'Proxies known, connected or not yet gone.', [`trellis_controlplane_known_proxies ${g.knownProxies}`]);
    metric('trellis_controlplane_registered_instances', 'gauge', 'Instances with a registration (in rotation or not).', [`trellis_controlplane_registered_instances ${g.registeredInstances}`]);
    metric('trellis_controlplane_config_errors', 'gauge', 'Errors in the configuration directory (rejected edits included).', [`trellis_controlplane_config_errors ${g.configErrors}`]);
    return lines.join('\n') + '\n';
  }
}
