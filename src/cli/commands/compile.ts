import { Command } from 'commander';
import { createCompiler, dumpSnapshot } from '../../compile/index.js';
import { CliError, loadMesh, report } from '../mesh-input.js';
import { splitWorkload } from '../workload-arg.js';

export function compileCommand(): Command {
  return new Command('compile')
    .summary("compile one proxy's snapshot")
    .description(
      'Compiles the snapshot the control plane would push to the proxy of one workload: its inbound\n' +
      'listeners, outbound route tables, clusters and endpoints. Without --dump, prints a summary.\n' +
      'With --dump, prints the snapshot as stable JSON (sorted keys; the format is docs/snapshot.md),\n' +
      'which upgrade checks compare across control-plane versions.',
    )
    .argument('<paths...>', 'YAML files or directories')
    .requiredOption('--proxy <workload>', 'the workload whose proxy to compile (name or name.namespace)')
    .option('--dump', 'print the whole snapshot as JSON')
    .action((paths: string[], opts: { proxy: string; dump?: boolean }) => {
      const { config, registry, diagnostics } = loadMesh(paths);
      if (report(diagnostics, { quiet: true }) > 0 && config.resources.length === 0) throw new CliError('no configuration could be loaded');
      const snap = createCompiler().compile(config, registry, splitWorkload(opts.proxy));
      if (opts.dump) {
        process.stdout.write(dumpSnapshot(snap));
        return;
      }
      const routes = snap.outbound.http.reduce((n, t) => n + t.virtualHosts.reduce((m, v) => m + v.routes.length, 0), 0);
      const eps = snap.endpoints.reduce((n, e) => n + e.endpoints.length, 0);
      const lines = [
        `proxy ${snap.node.id} (${snap.node.kind}), identity ${snap.node.identity}`,
        `version ${snap.version}`,
        `inbound: ${snap.inbound.map((l) => `${l.port}→${l.targetPort} ${l.service} (${l.protocol})`).join(', ') || 'none'}`,
        `outbound: ${snap.outbound.http.length} HTTP route table(s) on port(s) ${snap.outbound.http.map((t) => t.port).join(', ') || '-'}, ` +
          `${snap.outbound.http.reduce((n, t) => n + t.virtualHosts.length, 0)} virtual hosts, ${routes} routes; ${snap.outbound.tcp.length} TCP route(s)`,
        `clusters: ${snap.clusters.length}, endpoints: ${eps}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
