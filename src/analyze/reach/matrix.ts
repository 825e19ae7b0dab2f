/**
 * The reachability matrix: for every source (each workload of the registry,
 * and a plaintext caller from outside the mesh) × every destination (each
 * port of each service with workloads behind it), the methods and paths
 * allowed and what decides each. Every answer comes from the proxies' own
 * decision functions on compiled snapshots (decide.ts); this module only
 * chooses the requests (probes.ts) and sums the answers up (summary.ts).
 *
 *   const m = reachMatrix(config, registry);
 *   m.cells.find((c) => c.from === 'frontend.bank' && c.to === 'accounts.bank:8080')?.summary
 *   // → "GET (any path); everything else denied"
 */
import type { ConfigSet } from '../../api/config-set.js';
import { createCompiler } from '../../compile/index.js';
import type { Registry, Service } from '../../registry/types.js';
import type { AuthzPolicy } from '../../protocol/authz.js';
import { decide, ReachContext } from './decide.js';
import {
  REACH_SCHEMA, type ProbeSpec, type ReachCell, type ReachDecision, type ReachDestination, type ReachMatrix, type ReachProbe, type ReachSource,
} from './model.js';
import { addPolicyConditions, addRouteConditions, emptyConditions, isHttpProtocol, probesOf, type ProbeConditions } from './probes.js';
import { decidedBy, summarize } from './summary.js';
import { describeDecision } from './model.js';

export interface MatrixOptions {
  /** Only these sources (ids), in this order; default: every workload, then `plaintext`. */
  readonly sources?: readonly ReachSource[];
  /** Only these destinations; default: every service port with workloads. */
  readonly destinations?: readonly ReachDestination[];
  /** Conditions to probe per destination id instead of the mesh's own (to compare two meshes on the same requests). */
  readonly conditions?: ReadonlyMap<string, ProbeConditions>;
  /** Narrow a destination to some of its workloads (`name.namespace`), by destination id. */
  readonly onlyWorkloads?: ReadonlyMap<string, ReadonlySet<string>>;
  /** These requests to every HTTP destination instead of the planned ones (one question: `--from A --to B GET /x`). */
  readonly probes?: readonly ProbeSpec[];
  /** Snapshots already compiled for this configuration (see `reachContext`). */
  readonly context?: ReachContext;
}

/** Compiles snapshots once for everything asked of one configuration. */
export function reachContext(config: ConfigSet, registry: Registry): ReachContext {
  return new ReachContext(config, registry, createCompiler());
}

/** The source of the plaintext row: a caller outside the mesh, without a certificate. */
export const PLAINTEXT: ReachSource = Object.freeze({ id: 'plaintext', kind: 'plaintext' });

/** Every workload as a source (gateways included), sorted by id, then the plaintext caller. */
export function meshSources(ctx: ReachContext): ReachSource[] {
  const out = ctx.registry.workloads()
    .map((w) => workloadSource(ctx, w.name, w.namespace))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return [...out, PLAINTEXT];
}

export function workloadSource(ctx: ReachContext, workload: string, namespace: string): ReachSource {
  const snap = ctx.snapshot(workload, namespace);
  return { id: `${workload}.${namespace}`, kind: snap.node.kind, workload, namespace, identity: snap.node.identity };
}

/** Every port of every service that has workloads of the registry behind it, sorted by id. */
export function meshDestinations(registry: Registry): ReachDestination[] {
  const out: ReachDestination[] = [];
  for (const s of registry.services()) for (const p of s.ports) {
    const d = destinationOf(registry, s, p.port);
    if (d) out.push(d);
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** One port of a service as a destination; undefined when no workload of the registry stands behind it. */
export function destinationOf(registry: Registry, s: Service, port: number): ReachDestination | undefined {
  const sp = s.ports.find((p) => p.port === port);
  if (!sp) return undefined;
  const workloads = [...new Set(registry.endpoints(s.hostname, port).filter((e) => registry.workload(e.workload, e.namespace)).map((e) => `${e.workload}.${e.namespace}`))].sort();
  if (workloads.length === 0) return undefined;
  const suffix = `.svc.${registry.domainSuffix}`;
  const short = s.hostname.endsWith(suffix) ? s.hostname.slice(0, -suffix.length) : s.hostname;
  return { id: `${short}:${port}`, service: s.hostname, port, protocol: sp.protocol, workloads };
}

/** The policies of each workload behind a destination, from their snapshots. */
export function policiesOf(ctx: ReachContext, d: ReachDestination): AuthzPolicy[] {
  const seen = new Set<string>();
  const out: AuthzPolicy[] = [];
  for (const w of d.workloads) {
    const [name, ns] = splitId(w);
    for (const p of ctx.snapshot(name, ns).authz?.policies ?? []) if (!seen.has(p.name)) { seen.add(p.name); out.push(p); }
  }
  return out;
}

function splitId(id: string): [string, string] {
  const i = id.indexOf('.');
  return [id.slice(0, i), id.slice(i + 1)];
}

/** What the probes of a destination are made of: its policies' methods and paths, and the callers' routes for it. */
export function conditionsOf(ctx: ReachContext, d: ReachDestination, sources: readonly ReachSource[]): ProbeConditions {
  const c = emptyConditions();
  addPolicyConditions(c, policiesOf(ctx, d));
  for (const s of sources) {
    if (!s.workload || !s.namespace) continue;
    for (const t of ctx.snapshot(s.workload, s.namespace).outbound.http) {
      for (const vh of t.virtualHosts) if (vh.domains.includes(d.service) || vh.domains.includes(`${d.service}:${d.port}`)) addRouteConditions(c, vh);
    }
  }
  return c;
}

/** The conditions of every destination of a mesh (for `mergeConditions` before a diff). */
export function meshConditions(config: ConfigSet, registry: Registry): Map<string, ProbeConditions> {
  const ctx = reachContext(config, registry);
  const sources = meshSources(ctx);
  return new Map(meshDestinations(registry).map((d) => [d.id, conditionsOf(ctx, d, sources)]));
}

/** The matrix of a configuration and its registry. */
export function reachMatrix(config: ConfigSet, registry: Registry, opts: MatrixOptions = {}): ReachMatrix {
  const ctx = opts.context ?? reachContext(config, registry);
  const sources = opts.sources ?? meshSources(ctx);
  const destinations = opts.destinations ?? meshDestinations(registry);
  const cells: ReachCell[] = [];
  const everySource = meshSources(ctx);
  for (const d of destinations) {
    const http = isHttpProtocol(d.protocol);
    const probes = opts.probes && http ? opts.probes : probesOf(opts.conditions?.get(d.id) ?? conditionsOf(ctx, d, everySource), http);
    const notes = notesOf(policiesOf(ctx, d));
    for (const s of sources) cells.push(cell(ctx, s, d, probes, notes, opts.onlyWorkloads?.get(d.id)));
  }
  const order = new Map(sources.map((s, i) => [s.id, i]));
  const dorder = new Map(destinations.map((d, i) => [d.id, i]));
  cells.sort((a, b) => order.get(a.from)! - order.get(b.from)! || dorder.get(a.to)! - dorder.get(b.to)!);
  return { schema: REACH_SCHEMA, sources, destinations, cells };
}

/** One cell: every probe decided, then summed up. */
export function cell(ctx: ReachContext, s: ReachSource, d: ReachDestination, probes: readonly ProbeSpec[], notes: readonly string[], only?: ReadonlySet<string>): ReachCell {
  const out: ReachProbe[] = probes.map((p) => {
    const o = decide(ctx, s, d, p, only);
    if ('none' in o) return { ...p, verdict: 'denied', decision: o.none };
    const first = o.targets[0]!;
    const allowed = o.targets.filter((t) => t.allowed).length;
    const verdict = allowed === o.targets.length ? 'allowed' : allowed === 0 ? 'denied' : 'mixed';
    const same = o.targets.every((t) => t.allowed === first.allowed && t.kind === first.kind && t.policy === first.policy && t.rule === first.rule);
    const decision: ReachDecision = { allowed: first.allowed, kind: first.kind, ...(first.policy ? { policy: first.policy } : {}), ...(first.rule !== undefined ? { rule: first.rule } : {}), reason: first.reason };
    return { ...p, verdict, decision, ...(same ? {} : { byWorkload: o.targets }) };
  });
  const { access, summary } = summarize(out, (p) => describeDecision((p as ReachProbe).decision));
  return { from: s.id, to: d.id, access, summary, decidedBy: decidedBy(out), probes: out, notes };
}

/** What some policy of the destination reads that the matrix does not vary. */
function notesOf(policies: readonly AuthzPolicy[]): string[] {
  const out: string[] = [];
  for (const p of policies) for (const r of p.rules) {
    const reads = new Set<string>();
    for (const f of r.from ?? []) {
      if (f.requestPrincipals || f.notRequestPrincipals) reads.add('JWT principals');
      if (f.ipBlocks || f.notIpBlocks || f.remoteIpBlocks || f.notRemoteIpBlocks) reads.add('source addresses');
    }
    for (const o of r.to ?? []) if (o.hosts || o.notHosts) reads.add('hosts');
    for (const c of r.when ?? []) {
      if (c.key.startsWith('request.headers[')) reads.add('request headers');
      else if (c.key.startsWith('request.auth.')) reads.add('JWT claims');
      else if (/ip$/.test(c.key)) reads.add('addresses');
      else if (c.key === 'connection.sni') reads.add('SNI');
    }
    if (reads.size) out.push(`${p.action} ${p.name} rule ${r.index} also reads ${[...reads].join(', ')}, which the matrix does not vary: requests that carry them may be decided otherwise`);
  }
  return out;
}
