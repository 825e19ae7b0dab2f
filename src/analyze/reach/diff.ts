/**
 * What a configuration change does to reachability: both matrices, computed
 * on the same requests (the probe conditions of both configurations
 * merged), compared cell by cell and request by request. Only the cells
 * whose answers change are kept, each with the resources that caused it
 * where they can be named: the AuthorizationPolicies that changed and
 * select the destination before or after, and, for answers that depend on
 * them, changed PeerAuthentications, routing resources and workloads.
 */
import type { ConfigSet } from '../../api/config-set.js';
import type { Resource } from '../../api/resource.js';
import type { Registry } from '../../registry/types.js';
import { describeDecision, type ReachCell, type ReachDestination, type ReachProbe } from './model.js';
import { meshConditions, policiesOf, reachContext, reachMatrix } from './matrix.js';
import { emptyConditions, mergeConditions } from './probes.js';
import type { ReachContext } from './decide.js';

export const REACH_DIFF_SCHEMA = 'trellis.dev/reach-diff/v1';

export interface MeshSide {
  readonly config: ConfigSet;
  readonly registry: Registry;
}

/** A resource that differs between the two configurations. */
export interface ChangedResource {
  /** `Kind namespace/name`. */
  readonly resource: string;
  readonly kind: string;
  readonly change: 'added' | 'removed' | 'modified';
  /** `file:line` in the configuration that has it (the new one, unless removed). */
  readonly at: string;
}

export interface ProbeChange {
  readonly request: string;
  /** What the request stands for (`POST /transfer`, `other methods other paths`). */
  readonly standsFor: string;
  readonly before: string;
  readonly after: string;
}

export interface CellChange {
  readonly from: string;
  readonly to: string;
  /** `allowed → denied`: something was allowed, nothing is; `denied → allowed`: the reverse; `narrowed` / `widened` / `changed`: what is allowed changed; `added` / `removed`: the source or destination is new or gone. */
  readonly change: 'allowed → denied' | 'denied → allowed' | 'narrowed' | 'widened' | 'changed' | 'added' | 'removed';
  readonly before?: { readonly access: ReachCell['access']; readonly summary: string };
  readonly after?: { readonly access: ReachCell['access']; readonly summary: string };
  readonly requests: readonly ProbeChange[];
  /** The resources that caused it, when they can be named (`AuthorizationPolicy bank/x (modified, security.yaml:40)`). */
  readonly causes: readonly string[];
}

export interface ReachDiff {
  readonly schema: typeof REACH_DIFF_SCHEMA;
  /** Cells compared (the union of both matrices). */
  readonly cells: number;
  readonly changes: readonly CellChange[];
  readonly changedResources: readonly ChangedResource[];
}

export function changedResources(a: ConfigSet, b: ConfigSet): ChangedResource[] {
  const at = (r: Resource) => `${r.position.file}:${r.position.line}`;
  const before = new Map(a.resources.map((r) => [r.key, r]));
  const after = new Map(b.resources.map((r) => [r.key, r]));
  const out: ChangedResource[] = [];
  for (const [k, r] of after) {
    const o = before.get(k);
    if (!o) out.push({ resource: r.ref, kind: r.kind, change: 'added', at: at(r) });
    else if (o.hash !== r.hash) out.push({ resource: r.ref, kind: r.kind, change: 'modified', at: at(r) });
  }
  for (const [k, r] of before) if (!after.has(k)) out.push({ resource: r.ref, kind: r.kind, change: 'removed', at: at(r) });
  return out.sort((x, y) => (x.resource < y.resource ? -1 : x.resource > y.resource ? 1 : 0));
}

const ROUTING = new Set(['VirtualService', 'DestinationRule', 'ServiceEntry', 'Sidecar', 'Gateway']);
const REGISTRY = new Set(['App', 'WorkloadEntry', 'WorkloadGroup', 'Service', 'Deployment', 'Pod', 'StatefulSet', 'DaemonSet', 'ServiceAccount', 'Namespace', 'MeshConfig']);

const key = (p: ReachProbe) => `${p.tcp}|${p.method}|${p.path}`;
const verdictText = (p: ReachProbe | undefined) => (p ? `${p.verdict}: ${describeDecision(p.decision)}` : '(not probed)');

export function diffReach(oldSide: MeshSide, newSide: MeshSide): ReachDiff {
  const oc = meshConditions(oldSide.config, oldSide.registry);
  const nc = meshConditions(newSide.config, newSide.registry);
  const conditions = new Map([...new Set([...oc.keys(), ...nc.keys()])].map((id) => [id, mergeConditions(oc.get(id) ?? emptyConditions(), nc.get(id) ?? emptyConditions())]));
  const octx = reachContext(oldSide.config, oldSide.registry);
  const nctx = reachContext(newSide.config, newSide.registry);
  const om = reachMatrix(oldSide.config, oldSide.registry, { conditions, context: octx });
  const nm = reachMatrix(newSide.config, newSide.registry, { conditions, context: nctx });
  const resources = changedResources(oldSide.config, newSide.config);
  const olds = new Map(om.cells.map((c) => [`${c.from}\u0000${c.to}`, c]));
  const news = new Map(nm.cells.map((c) => [`${c.from}\u0000${c.to}`, c]));
  const dests = (m: typeof om) => new Map(m.destinations.map((d) => [d.id, d]));
  const od = dests(om);
  const nd = dests(nm);
  const changes: CellChange[] = [];
  const keys = [...new Set([...olds.keys(), ...news.keys()])];
  for (const k of keys) {
    const o = olds.get(k);
    const n = news.get(k);
    const cellCauses = () => causes(resources, o, n, octx, nctx, od.get((o ?? n)!.to), nd.get((o ?? n)!.to));
    if (o && n) {
      const np = new Map(n.probes.map((p) => [key(p), p]));
      const requests: ProbeChange[] = [];
      let lost = 0;
      let gained = 0;
      for (const p of o.probes) {
        const q = np.get(key(p));
        if (q && q.verdict === p.verdict) continue;
        if (p.verdict === 'allowed' || (q && q.verdict === 'denied')) lost++;
        if (q?.verdict === 'allowed' || p.verdict === 'denied') gained++;
        requests.push(probeChange(p, q));
      }
      if (requests.length === 0) continue;
      const change = o.access !== 'none' && n.access === 'none' ? 'allowed → denied'
        : o.access === 'none' && n.access !== 'none' ? 'denied → allowed'
          : lost && !gained ? 'narrowed' : gained && !lost ? 'widened' : 'changed';
      changes.push({ from: o.from, to: o.to, change, before: side(o), after: side(n), requests, causes: cellCauses() });
    } else if (o && o.access !== 'none') {
      changes.push({ from: o.from, to: o.to, change: 'removed', before: side(o), requests: [], causes: cellCauses() });
    } else if (n && n.access !== 'none') {
      changes.push({ from: n.from, to: n.to, change: 'added', after: side(n), requests: [], causes: cellCauses() });
    }
  }
  return { schema: REACH_DIFF_SCHEMA, cells: keys.length, changes, changedResources: resources };
}

function side(c: ReachCell) {
  return { access: c.access, summary: c.summary };
}

function probeChange(p: ReachProbe, q: ReachProbe | undefined): ProbeChange {
  const request = p.tcp ? 'TCP connection' : `${p.method} ${p.path}`;
  return { request, standsFor: p.tcp ? 'TCP' : `${p.methodLabel} ${p.pathLabel}`, before: verdictText(p), after: verdictText(q) };
}

/** The changed resources that bear on a cell. */
function causes(rs: readonly ChangedResource[], o: ReachCell | undefined, n: ReachCell | undefined, octx: ReachContext, nctx: ReachContext, od: ReachDestination | undefined, nd: ReachDestination | undefined): string[] {
  const policies = new Set([...(od ? policiesOf(octx, od) : []), ...(nd ? policiesOf(nctx, nd) : [])].map((p) => p.name));
  for (const c of [o, n]) for (const p of c?.probes ?? []) if (p.decision.policy) policies.add(p.decision.policy);
  const kinds = new Set([...(o?.probes ?? []), ...(n?.probes ?? [])].map((p) => p.decision.kind));
  const routing = kinds.has('routed-elsewhere') || kinds.has('not-forwarded') || kinds.has('no-endpoint') || kinds.has('mtls-refused');
  const nsOf = (ref: string) => ref.slice(ref.indexOf(' ') + 1);
  const out = rs.filter((r) => {
    if (r.kind === 'AuthorizationPolicy') return policies.has(nsOf(r.resource));
    if (r.kind === 'PeerAuthentication') return kinds.has('mtls-refused');
    if (ROUTING.has(r.kind)) return routing;
    return REGISTRY.has(r.kind);
  });
  return out.map((r) => `${r.resource} (${r.change}, ${r.at})`);
}
