import { Command, Option } from 'commander';
import { createCompiler, simulate, type Simulation } from '../../compile/index.js';
import type { RouteMatch, StringMatcher } from '../../protocol/snapshot.js';
import { CliError, loadMesh, report } from '../mesh-input.js';
import { splitWorkload } from '../workload-arg.js';

const METHOD = /^[A-Z]+$/;

export function explainCommand(): Command {
  return new Command('explain')
    .summary("show what a workload's proxy does with one request")
    .description(
      'Compiles the snapshot of the calling workload\'s proxy and runs the request through the same\n' +
      'routing functions the proxy uses: which listener, virtual host and route apply (and which match\n' +
      'made it apply), where the traffic goes with what weights, which endpoints stand behind each\n' +
      'cluster, and why. Nothing is sent anywhere.\n\n' +
      'Example:\n' +
      '  trellis explain examples/bookinfo --from productpage-v1 GET http://reviews:9080/ -H end-user:jason',
    )
    .argument('<args...>', 'paths (files or directories), then METHOD and URL')
    .requiredOption('--from <workload>', 'the calling workload (name or name.namespace)')
    .option('-H, --header <name:value>', 'a request header (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((args: string[], opts: { from: string; header: string[]; output: 'text' | 'json' }) => {
      const at = args.findIndex((a, i) => METHOD.test(a) && i === args.length - 2);
      if (at < 1) throw new CliError('usage: trellis explain <paths...> --from <workload> <METHOD> <url>  (e.g. GET http://reviews:9080/)', 2);
      const paths = args.slice(0, at);
      const method = args[at]!;
      const url = args[at + 1]!;
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new CliError(`"${url}" is not an absolute URL; write it like http://reviews:9080/path`, 2);
      const headers: Record<string, string> = {};
      for (const h of opts.header) {
        const c = h.indexOf(':');
        if (c <= 0) throw new CliError(`header "${h}" must be name:value`, 2);
        headers[h.slice(0, c).trim().toLowerCase()] = h.slice(c + 1).trim();
      }
      const { config, registry, diagnostics } = loadMesh(paths);
      report(diagnostics, { quiet: true });
      const snap = createCompiler().compile(config, registry, splitWorkload(opts.from));
      const sim = simulate(snap, { url, method, headers });
      if (opts.output === 'json') {
        const { clusters, ...rest } = sim;
        const out = { ...rest, from: snap.node.id, identity: snap.node.identity, snapshotVersion: snap.version, clusters: clusters.map(({ cluster, ...c }) => ({ ...c, lb: cluster?.lb.policy, tls: cluster?.tls.mode })) };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      process.stdout.write(formatSimulation(sim, `${snap.node.id} (${snap.node.identity})`));
    });
}

function sm(m: StringMatcher): string {
  return `${m.kind} ${JSON.stringify(m.value)}${m.ignoreCase ? ' (ignore case)' : ''}`;
}

function describeMatch(m: RouteMatch): string {
  const parts: string[] = [];
  if (m.uri) parts.push(`uri ${sm(m.uri)}`);
  if (m.method) parts.push(`method ${sm(m.method)}`);
  if (m.authority) parts.push(`authority ${sm(m.authority)}`);
  if (m.scheme) parts.push(`scheme ${sm(m.scheme)}`);
  for (const h of m.headers) parts.push(`header ${h.name} ${h.match ? sm(h.match) : 'present'}`);
  for (const h of m.withoutHeaders) parts.push(`without header ${h.name} ${h.match ? sm(h.match) : 'present'}`);
  for (const q of m.queryParams) parts.push(`query ${q.name} ${q.match ? sm(q.match) : 'present'}`);
  if (m.port !== undefined) parts.push(`port ${m.port}`);
  if (m.sourceLabels) parts.push(`source labels ${Object.entries(m.sourceLabels).map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (m.sourceNamespace) parts.push(`source namespace ${m.sourceNamespace}`);
  return parts.join(', ') || 'anything';
}

export function formatSimulation(sim: Simulation, from: string): string {
  const r = sim.request;
  const lines = [`${r.method} ${r.scheme}://${r.host}${r.path} from ${from}`];
  const row = (k: string, v: string) => lines.push(`  ${k.padEnd(10)} ${v}`);
  row('listener', `outbound :${sim.listener.port} (${sim.listener.protocol})`);
  if (sim.virtualHost) row('host', sim.virtualHost + (sim.route?.source ? `  (${sim.route.source})` : ''));
  if (sim.route) {
    const why = sim.route.matched ? `, because match ${sim.route.matchIndex}: ${describeMatch(sim.route.matched)}` : ' (matches every request)';
    row('route', `"${sim.route.name}" (#${sim.route.index})${why}`);
    const a = sim.route.action;
    if (a.kind === 'forward') {
      row('timeout', a.timeoutMs > 0 ? `${a.timeoutMs}ms` : 'none');
      row('retries', a.retry.attempts > 0 ? `${a.retry.attempts} on ${a.retry.retryOn.join(',')}${a.retry.retriableStatusCodes.length ? ` (${a.retry.retriableStatusCodes.join(',')})` : ''}` : 'none');
      if (a.fault?.delay) row('fault', `delay ${a.fault.delay.fixedDelayMs}ms for ${a.fault.delay.percentage}%`);
      if (a.fault?.abort) row('fault', `abort ${a.fault.abort.httpStatus ?? a.fault.abort.grpcStatus} for ${a.fault.abort.percentage}%`);
      if (a.rewrite) row('rewrite', [a.rewrite.uri && `uri → ${a.rewrite.uri}`, a.rewrite.authority && `authority → ${a.rewrite.authority}`, a.rewrite.uriRegex && `uri ${a.rewrite.uriRegex.match} → ${a.rewrite.uriRegex.rewrite}`].filter(Boolean).join(', '));
    }
  }
  for (const c of sim.clusters) {
    const info = c.cluster ? `, ${c.cluster.lb.policy}, ${c.cluster.tls.mode}${c.cluster.source ? `, ${c.cluster.source}` : ''}` : ', NOT FOUND';
    row('cluster', `${c.name}  ${c.percent}%${info}`);
    for (const e of c.endpoints) {
      const loc = [e.locality.region, e.locality.zone, e.locality.subzone].filter(Boolean).join('/') || '-';
      lines.push(`  ${''.padEnd(10)}   ${e.instance.padEnd(28)} ${(e.address ? `${e.address}:${e.port}` : `(not running):${e.port}`).padEnd(22)} ${loc.padEnd(16)} ${e.health}`);
    }
  }
  row('result', `${sim.outcome}${sim.status ? ` ${sim.status}` : ''}${sim.responseFlag ? ` ${sim.responseFlag}` : ''}`);
  row('why', sim.reason);
  return lines.join('\n') + '\n';
}
