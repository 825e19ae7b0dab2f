/**
 * `trellis explain`: one request from a workload, run through the proxy's
 * own decision functions on compiled snapshots — the caller's route,
 * clusters and endpoints (simulate), and the rate limits that would apply:
 * the caller's own outbound ones (RateLimitPolicy `enforce:
 * InboundAndOutbound`) and the destination's inbound ones, on the snapshot
 * of a workload behind each cluster.
 */
import { Command, Option } from 'commander';
import { createCompiler, simulate, type Compiler, type Simulation } from '../../compile/index.js';
import { simulateOutboundRateLimits, simulateRateLimits, type SimulatedLimit } from '../../compile/rate-limit-simulate.js';
import type { ConfigSet } from '../../api/config-set.js';
import { normalizePath } from '../../policy/path-normalize.js';
import type { Registry } from '../../registry/types.js';
import type { RouteMatch, Snapshot, StringMatcher } from '../../protocol/snapshot.js';
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
    .option('--claims <json>', 'the claims of a valid JWT the request carries, as JSON (e.g. \'{"group":"admins"}\'): gateways route on @request.auth.claims.* with them; without it the request has no valid token')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((args: string[], opts: { from: string; header: string[]; claims?: string; output: 'text' | 'json' }) => {
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
      let claims: Record<string, unknown> | undefined;
      if (opts.claims !== undefined) {
        try {
          claims = JSON.parse(opts.claims) as Record<string, unknown>;
        } catch (e) {
          throw new CliError(`--claims must be a JSON object: ${(e as Error).message}`, 2);
        }
        if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new CliError('--claims must be a JSON object, e.g. \'{"group":"admins"}\'', 2);
      }
      const { config, registry, diagnostics } = loadMesh(paths);
      report(diagnostics, { quiet: true });
      const compiler = createCompiler();
      const snap = compiler.compile(config, registry, splitWorkload(opts.from));
      const sim = simulate(snap, { url, method, headers, ...(claims ? { claims } : {}) });
      const limits = explainRateLimits(compiler, config, registry, snap, sim, headers);
      if (opts.output === 'json') {
        const { clusters, ...rest } = sim;
        const out = {
          ...rest, from: snap.node.id, identity: snap.node.identity, snapshotVersion: snap.version,
          clusters: clusters.map(({ cluster, ...c }) => ({ ...c, lb: cluster?.lb.policy, tls: cluster?.tls.mode })),
          rateLimits: limits,
        };
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      process.stdout.write(formatSimulation(sim, `${snap.node.id} (${snap.node.identity})`, limits));
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

/** A limit that would apply, and where: the destination service, and the workload that enforces it. */
export interface ExplainedLimit {
  readonly service: string;
  /** `workload.namespace` of the enforcing proxy: the caller's for the outbound side, a destination workload's for the inbound side. */
  readonly at: string;
  readonly side: SimulatedLimit['side'];
  readonly policy: string;
  readonly limit: string;
  readonly scope: SimulatedLimit['scope'];
  /** The bucket the request would take a token from (`""`: the shared one). */
  readonly key: string;
  readonly description: string;
  /** The compiled limit (src/protocol/rate-limit.ts). */
  readonly rule: SimulatedLimit['config'];
}

/**
 * The rate limits a forwarded request would meet: per destination service of
 * the chosen clusters, the caller's outbound limits (only when every cluster
 * is that one service, as the proxy applies them) and the inbound limits of
 * the first workload behind each cluster (the policies of a service are the
 * same for every workload it selects). The caller is known to the destination
 * by its principal only over the mesh's mTLS (ISTIO_MUTUAL).
 */
function explainRateLimits(compiler: Compiler, config: ConfigSet, registry: Registry, snap: Snapshot, sim: Simulation, headers: Readonly<Record<string, string>>): ExplainedLimit[] {
  if (sim.outcome !== 'FORWARD') return [];
  const n = normalizePath(sim.request.path, snap.mesh.pathNormalization);
  const path = n.ok ? n.path : sim.request.path;
  const method = sim.request.method;
  const principal = snap.node.identity.startsWith('spiffe://') ? snap.node.identity.slice('spiffe://'.length) : undefined;
  const out: ExplainedLimit[] = [];
  const add = (service: string, at: string, ls: readonly SimulatedLimit[]) => {
    for (const l of ls) out.push({ service, at, side: l.side, policy: l.policy, limit: l.limit, scope: l.scope, key: l.key, description: l.description, rule: l.config });
  };
  const services = [...new Set(sim.clusters.map((c) => c.cluster?.service ?? c.name.slice(c.name.lastIndexOf('|') + 1)))];
  if (services.length === 1) add(services[0]!, snap.node.id, simulateOutboundRateLimits(snap, { service: services[0]!, method, path, headers }));
  const seen = new Set<string>();
  for (const c of sim.clusters) {
    const e = c.endpoints[0];
    if (!c.cluster || !e) continue;
    const at = `${e.workload}.${e.namespace}`;
    if (seen.has(`${c.cluster.service}|${at}`)) continue;
    seen.add(`${c.cluster.service}|${at}`);
    const dest = compiler.compile(config, registry, { workload: e.workload, namespace: e.namespace });
    const mtls = c.cluster.tls.mode === 'ISTIO_MUTUAL';
    add(c.cluster.service, at, simulateRateLimits(dest, { service: c.cluster.service, method, path, headers, ...(mtls && principal ? { principal } : {}) }));
  }
  return out;
}

export function formatSimulation(sim: Simulation, from: string, limits: readonly ExplainedLimit[] = []): string {
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
  if (sim.outcome === 'FORWARD') {
    if (limits.length === 0) row('ratelimit', 'none applies');
    for (const l of limits) row('ratelimit', `${l.description}  (${l.side === 'outbound' ? 'outbound, at the caller' : 'inbound'} ${l.at})`);
  }
  row('result', `${sim.outcome}${sim.status ? ` ${sim.status}` : ''}${sim.responseFlag ? ` ${sim.responseFlag}` : ''}`);
  row('why', sim.reason);
  return lines.join('\n') + '\n';
}
