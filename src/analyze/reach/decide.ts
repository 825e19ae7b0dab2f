/**
 * One request from a source to a destination, decided by the proxies' own
 * functions on their compiled snapshots, in the order the data plane applies
 * them:
 *
 * 1. the caller's proxy (sidecar or gateway): `simulate()` — the router the
 *    outbound listener runs — picks the route and the clusters; the route's
 *    URI rewrite (src/proxy/rewrite.ts, the proxy's own) gives the path the
 *    destination receives; the cluster's TLS mode says whether the caller's
 *    identity travels (ISTIO_MUTUAL) or not;
 * 2. each workload behind those clusters, on its own snapshot: the inbound
 *    listener of the port, its PeerAuthentication mode (STRICT refuses
 *    plaintext, DISABLE refuses mTLS), path normalization
 *    (src/policy/path-normalize.ts), then the authorizer
 *    (src/policy/authorize.ts) — the very function the inbound chain calls.
 *
 * A caller without a proxy (a bare identity, or plaintext from outside the
 * mesh) skips step 1 and reaches every workload of the service directly.
 * Request headers and JWTs are not sent (RequestAuthentication lets a
 * request without a token through, as the proxy does); rate limits are not
 * evaluated.
 */
import { buildAuthorizer, type Authorizer, type AuthzDecision } from '../../policy/authorize.js';
import { normalizePath } from '../../policy/path-normalize.js';
import { compileRewrites } from '../../proxy/rewrite.js';
import type { Compiler } from '../../compile/index.js';
import { simulate, type Simulation } from '../../compile/index.js';
import type { ConfigSet } from '../../api/config-set.js';
import type { InboundListener, RouteMatch, Snapshot } from '../../protocol/snapshot.js';
import type { Registry } from '../../registry/types.js';
import type { ProbeSpec, ReachDecision, ReachDestination, ReachSource, TargetDecision } from './model.js';

/** Snapshots and authorizers, compiled once per workload for a whole matrix. */
export class ReachContext {
  readonly #snapshots = new Map<string, Snapshot>();
  readonly #authorizers = new WeakMap<Snapshot, Authorizer>();
  constructor(readonly config: ConfigSet, readonly registry: Registry, readonly compiler: Compiler) {}

  snapshot(workload: string, namespace: string): Snapshot {
    const k = `${workload}.${namespace}`;
    let s = this.#snapshots.get(k);
    if (!s) this.#snapshots.set(k, (s = this.compiler.compile(this.config, this.registry, { workload, namespace })));
    return s;
  }

  authorizer(s: Snapshot): Authorizer {
    let a = this.#authorizers.get(s);
    if (!a) this.#authorizers.set(s, (a = buildAuthorizer(s.authz)));
    return a;
  }
}

/** Where a request lands: a workload behind the destination, the inbound port, and how it arrives. */
interface Arrival {
  readonly workload: string;
  readonly namespace: string;
  readonly servicePort: number;
  readonly path: string;
  readonly authority: string;
  readonly mtls: boolean;
}

/** The decisions of every workload the request can reach, or one decision when it reaches none. */
export type Outcome = { readonly targets: readonly TargetDecision[] } | { readonly none: ReachDecision };

const refused = (kind: ReachDecision['kind'], reason: string): ReachDecision => ({ allowed: false, kind, reason });

/** Decides `probe` from `source` to `dest`. `onlyWorkloads` narrows the destination to some of its workloads. */
export function decide(ctx: ReachContext, source: ReachSource, dest: ReachDestination, probe: ProbeSpec, onlyWorkloads?: ReadonlySet<string>): Outcome {
  const arrivals = source.kind === 'sidecar' || source.kind === 'gateway' ? routed(ctx, source, dest, probe) : direct(ctx, source, dest, probe);
  if ('none' in arrivals) return arrivals;
  const list = onlyWorkloads ? arrivals.list.filter((a) => onlyWorkloads.has(`${a.workload}.${a.namespace}`)) : arrivals.list;
  if (list.length === 0) return { none: refused('routed-elsewhere', `the route does not lead to ${[...onlyWorkloads ?? []].join(', ')}`) };
  const principal = source.identity?.startsWith('spiffe://') ? source.identity.slice('spiffe://'.length) : undefined;
  const sourceIp = sourceAddress(ctx, source);
  return { targets: list.map((a) => ({ workload: `${a.workload}.${a.namespace}`, ...inbound(ctx, a, dest, probe, a.mtls ? principal : undefined, sourceIp) })) };
}

function sourceAddress(ctx: ReachContext, source: ReachSource): string {
  if (source.workload && source.namespace) return ctx.registry.workload(source.workload, source.namespace)?.address ?? '127.0.0.1';
  return '127.0.0.1';
}

/** The request through the caller's own proxy: route, rewrite, clusters of the destination, their workloads. */
function routed(ctx: ReachContext, source: ReachSource, dest: ReachDestination, probe: ProbeSpec): { list: Arrival[] } | { none: ReachDecision } {
  const snap = ctx.snapshot(source.workload!, source.namespace!);
  const sim = source.kind === 'gateway' ? gatewaySimulation(snap, dest, probe) : simulate(snap, request(dest.service, dest.port, probe));
  if (sim.outcome !== 'FORWARD' && sim.outcome !== 'TCP_PROXY') return { none: refused('not-forwarded', `not sent by the caller's proxy: ${sim.reason}`) };
  const live = sim.clusters.filter((c) => c.percent > 0);
  const ours = live.filter((c) => c.cluster?.service === dest.service && c.cluster.port === dest.port);
  if (ours.length === 0) {
    const where = [...new Set(live.map((c) => c.cluster ? `${c.cluster.service}:${c.cluster.port}` : c.name))].join(', ');
    const by = sim.route?.source ? ` (${sim.route.source}, route "${sim.route.name}")` : '';
    return { none: refused('routed-elsewhere', `routed to ${where || 'no cluster'}${by}, not here`) };
  }
  const a = sim.route?.action;
  if (a?.kind === 'forward' && (a.fault?.abort?.percentage ?? 0) >= 100) {
    return { none: refused('not-forwarded', `${sim.route!.name}: fault injection aborts every request with ${a.fault!.abort!.httpStatus ?? a.fault!.abort!.grpcStatus}`) };
  }
  let path = probe.path;
  let authority = `${dest.service}:${dest.port}`;
  if (a?.kind === 'forward' && sim.route) {
    // The proxy's rewrite, indexed by the applied match alternative + 1: only that alternative is needed.
    const r = sim.route;
    const rw = compileRewrites(r.matched ? new Array<RouteMatch>(r.matchIndex + 1).fill(r.matched) : [], a.rewrite);
    if (rw) path = rw[r.matched ? r.matchIndex + 1 : 0]!(path);
    if (a.rewrite?.authority) authority = a.rewrite.authority;
  }
  const list: Arrival[] = [];
  const seen = new Set<string>();
  for (const c of ours) {
    for (const e of c.endpoints) {
      const k = `${e.workload}.${e.namespace}`;
      if (seen.has(k)) continue;
      seen.add(k);
      list.push({ workload: e.workload, namespace: e.namespace, servicePort: c.cluster!.port, path, authority, mtls: c.cluster!.tls.mode === 'ISTIO_MUTUAL' });
    }
  }
  if (list.length === 0) return { none: refused('no-endpoint', `${ours.map((c) => c.name).join(', ')} has no endpoint: the proxy answers 503 (UH)`) };
  return { list };
}

function request(host: string, port: number, probe: ProbeSpec) {
  return { url: `http://${host}:${port}${probe.tcp ? '/' : probe.path}`, method: probe.tcp ? 'GET' : probe.method };
}

/** A gateway sends what arrives on its server ports: a request for the destination's host on each, the first that reaches it wins. */
function gatewaySimulation(snap: Snapshot, dest: ReachDestination, probe: ProbeSpec): Simulation {
  let first: Simulation | undefined;
  for (const t of snap.outbound.http) {
    const sim = simulate(snap, request(dest.service, t.port, probe));
    if (sim.clusters.some((c) => c.percent > 0 && c.cluster?.service === dest.service && c.cluster.port === dest.port)) return sim;
    first ??= sim;
  }
  return first ?? simulate(snap, request(dest.service, dest.port, probe));
}

/** A caller without a proxy: mTLS with its identity (or plaintext) straight to every workload of the service. */
function direct(ctx: ReachContext, source: ReachSource, dest: ReachDestination, probe: ProbeSpec): { list: Arrival[] } | { none: ReachDecision } {
  const eps = ctx.registry.endpoints(dest.service, dest.port);
  const list: Arrival[] = [];
  const seen = new Set<string>();
  for (const e of eps) {
    const k = `${e.workload}.${e.namespace}`;
    if (seen.has(k) || !ctx.registry.workload(e.workload, e.namespace)) continue;
    seen.add(k);
    list.push({ workload: e.workload, namespace: e.namespace, servicePort: dest.port, path: probe.path, authority: `${dest.service}:${dest.port}`, mtls: source.kind === 'identity' });
  }
  if (list.length === 0) return { none: refused('no-endpoint', `${dest.id} has no workload`) };
  return { list };
}

/** The destination workload's inbound proxy: listener, PeerAuthentication, path normalization, authorization. */
function inbound(ctx: ReachContext, a: Arrival, dest: ReachDestination, probe: ProbeSpec, principal: string | undefined, sourceIp: string): ReachDecision {
  const snap = ctx.snapshot(a.workload, a.namespace);
  const listener = pickListener(snap.inbound, dest.service, a.servicePort);
  if (!listener) return refused('not-forwarded', `${snap.node.id} serves no port ${a.servicePort} of ${dest.service}`);
  const mode = listener.mtls ?? 'PERMISSIVE';
  if (mode === 'STRICT' && !a.mtls) return refused('mtls-refused', `PeerAuthentication STRICT on port ${listener.port}: plaintext is refused`);
  if (mode === 'DISABLE' && a.mtls) return refused('mtls-refused', `PeerAuthentication DISABLE on port ${listener.port}: mTLS is refused`);
  const authorize = ctx.authorizer(snap);
  if (probe.tcp) return fromAuthz(snap, authorize({ tcp: true, ...(principal ? { principal } : {}), sourceIp, destinationPort: listener.targetPort }));
  const n = normalizePath(a.path, snap.mesh.pathNormalization);
  if (!n.ok) return refused('path-rejected', `${snap.node.id} ${n.status === 307 ? 'redirects' : 'rejects'} the path ${JSON.stringify(a.path)} (${n.status}): ${n.message}`);
  return fromAuthz(snap, authorize({
    tcp: false, ...(principal ? { principal } : {}), sourceIp, destinationPort: listener.targetPort,
    method: probe.method, path: n.path, host: a.authority, headers: () => undefined,
  }));
}

/** The inbound listener for a service port, as the proxy picks it (by port; else the only one). */
function pickListener(ls: readonly InboundListener[], service: string, port: number): InboundListener | undefined {
  return ls.find((l) => l.service === service && l.port === port) ?? ls.find((l) => l.port === port) ?? (ls.length === 1 ? ls[0] : undefined);
}

function fromAuthz(snap: Snapshot, d: AuthzDecision): ReachDecision {
  if (d.policy !== undefined) {
    const action = snap.authz?.policies.find((p) => p.name === d.policy)?.action;
    return { allowed: d.allowed, kind: action === 'ALLOW' ? 'allow-policy' : 'deny-policy', policy: d.policy, ...(d.rule !== undefined ? { rule: d.rule } : {}), reason: d.reason };
  }
  return { allowed: d.allowed, kind: d.allowed ? 'default-allow' : 'default-deny', reason: d.reason };
}
