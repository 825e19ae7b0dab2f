/**
 * AuthorizationPolicies → the compiled authorization of one workload
 * (`WorkloadAuthz`, carried in its snapshot). Pure: the same policies,
 * workload, mesh settings and registry give an equal, deeply frozen result.
 *
 * Which policies apply, as in Istio: those of the root namespace apply
 * mesh-wide, the others to their own namespace; a `selector` narrows to the
 * workloads whose labels it matches (in any namespace, for a root-namespace
 * policy); `targetRefs` narrow to the workloads of the Services (or
 * ServiceEntries) they name. Kubernetes Gateway targets select nothing
 * (Trellis has no Gateway API workloads).
 *
 * What is resolved here so the proxy needs nothing else: `serviceAccounts`
 * written without a namespace get the policy's; principals (and
 * `source.principal` conditions) in the trust domain `cluster.local` or one of
 * the mesh's aliases are expanded to every trust domain of the mesh, as
 * Istio does; caller groups (`source.labels`, a Trellis extension) become the
 * identities of the workloads carrying the labels, failing closed when an
 * identity is shared with workloads outside the group (see `CallerGroup`).
 */
import type { ResourceOf } from '../api/config-set.js';
import { diagnostic } from '../api/diagnostic.js';
import type { AuthorizationCondition, AuthorizationOperation, AuthorizationRule, AuthorizationSource } from '../api/kinds/authorization-policy.js';
import { labelsMatch } from '../policy/route-match.js';
import type {
  AuthzAction, AuthzCondition, AuthzNote, AuthzNoteKind, AuthzOperation, AuthzPolicy, AuthzRule, AuthzSource, CallerGroup, WorkloadAuthz,
} from '../protocol/authz.js';
import type { Registry } from '../registry/types.js';
import { deepFreeze } from '../api/validate.js';

export type AuthorizationPolicyResource = ResourceOf<'AuthorizationPolicy'>;

/** What `compileAuthz` reads. */
export interface AuthzInput {
  /** Every AuthorizationPolicy of the configuration (`config.ofKind('AuthorizationPolicy')`). */
  readonly policies: readonly AuthorizationPolicyResource[];
  /** The workload the proxy serves. */
  readonly workload: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> };
  readonly mesh: { readonly rootNamespace: string; readonly trustDomain: string; readonly trustDomainAliases?: readonly string[] };
  /** For caller groups (workloads, their labels and identities) and Service targetRefs. */
  readonly registry: Registry;
}

const ACTION_ORDER: Readonly<Record<AuthzAction, number>> = { CUSTOM: 0, DENY: 1, ALLOW: 2, AUDIT: 3 };
const SPIFFE = 'spiffe://';
/** The trust domain that stands for "this mesh's trust domain and its aliases" in policies. */
const LOCAL_TRUST_DOMAIN = 'cluster.local';

/** The workload's compiled authorization, or undefined when no policy selects it (everything is allowed). */
export function compileAuthz(input: AuthzInput): WorkloadAuthz | undefined {
  const selected = input.policies.filter((p) => selects(p, input));
  if (selected.length === 0) return undefined;
  const ctx = new Context(input);
  const policies = selected.map((p) => ctx.policy(p));
  policies.sort((a, b) => ACTION_ORDER[a.action] - ACTION_ORDER[b.action] || cmp(a.name, b.name));
  const notes = [...ctx.notes].sort((a, b) => cmp(a.resource, b.resource) || cmp(a.field, b.field) || cmp(a.kind, b.kind));
  return deepFreeze({ policies, notes });
}

/** Whether a policy applies to the input's workload. */
export function selects(p: AuthorizationPolicyResource, input: AuthzInput): boolean {
  const { workload: w, mesh, registry } = input;
  const ns = p.metadata.namespace;
  if (ns !== mesh.rootNamespace && ns !== w.namespace) return false;
  const spec = p.body.spec;
  const sel = spec.selector?.matchLabels;
  if (sel && Object.keys(sel).length > 0) return labelsMatch(sel, w.labels);
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : undefined);
  if (refs && refs.length > 0) {
    return refs.some((ref) => {
      const group = ref.group ?? '';
      let services;
      if ((group === '' || group === 'core') && ref.kind === 'Service') {
        const s = registry.service(`${ref.name}.${ns}.svc.${registry.domainSuffix}`);
        services = s ? [s] : [];
      } else if (group === 'networking.istio.io' && ref.kind === 'ServiceEntry') {
        services = registry.services().filter((s) => s.source === `ServiceEntry ${ns}/${ref.name}`);
      } else {
        return false;
      }
      return services.some((s) => s.namespace === w.namespace && s.selector !== undefined && labelsMatch(s.selector, w.labels));
    });
  }
  return true;
}

/** Per-compile state: the trust domains of the mesh, caller groups resolved once, and the notes. */
class Context {
  readonly notes: AuthzNote[] = [];
  readonly #trustDomains: readonly string[];
  readonly #groups = new Map<string, { members: string[]; shared: Map<string, string[]> }>();
  readonly #input: AuthzInput;

  constructor(input: AuthzInput) {
    this.#input = input;
    this.#trustDomains = unique([input.mesh.trustDomain, ...(input.mesh.trustDomainAliases ?? [])]);
  }

  policy(p: AuthorizationPolicyResource): AuthzPolicy {
    const spec = p.body.spec;
    const action: AuthzAction = spec.action ?? 'ALLOW';
    const name = `${p.metadata.namespace}/${p.metadata.name}`;
    if (action === 'CUSTOM') {
      this.notes.push(note('custom-not-supported', 'CustomActionNotSupported', { provider: spec.provider?.name ?? '' }, p, 'spec.action'));
    }
    const rules = (spec.rules ?? []).map((r, i) => this.#rule(r, i, action, p));
    return { name, action, rules };
  }

  #rule(r: AuthorizationRule, index: number, action: AuthzAction, p: AuthorizationPolicyResource): AuthzRule {
    const out: { index: number; from?: AuthzSource[]; to?: AuthzOperation[]; when?: AuthzCondition[] } = { index };
    if (r.from?.length) out.from = r.from.map((f, j) => this.#source(f.source, action, p, `spec.rules[${index}].from[${j}].source`));
    if (r.to?.length) out.to = r.to.map((t) => operation(t.operation));
    if (r.when?.length) out.when = r.when.map((c) => this.#condition(c, p.metadata.namespace));
    return out;
  }

  #source(s: AuthorizationSource, action: AuthzAction, p: AuthorizationPolicyResource, field: string): AuthzSource {
    const ns = p.metadata.namespace;
    const out: Record<string, unknown> = {};
    const put = (k: string, v: readonly string[] | undefined) => { if (v && v.length) out[k] = [...v]; };
    put('principals', s.principals && this.#principals(s.principals));
    put('notPrincipals', s.notPrincipals && this.#principals(s.notPrincipals));
    put('requestPrincipals', s.requestPrincipals);
    put('notRequestPrincipals', s.notRequestPrincipals);
    put('namespaces', s.namespaces);
    put('notNamespaces', s.notNamespaces);
    put('serviceAccounts', s.serviceAccounts?.map((a) => qualify(a, ns)));
    put('notServiceAccounts', s.notServiceAccounts?.map((a) => qualify(a, ns)));
    put('trustDomains', s.trustDomains && this.#domains(s.trustDomains));
    put('notTrustDomains', s.notTrustDomains && this.#domains(s.notTrustDomains));
    put('ipBlocks', s.ipBlocks);
    put('notIpBlocks', s.notIpBlocks);
    put('remoteIpBlocks', s.remoteIpBlocks);
    put('notRemoteIpBlocks', s.notRemoteIpBlocks);
    // Fail closed: where the group grants, shared identities are out; where it restricts, they are in.
    const restricts = action !== 'ALLOW';
    if (s.labels) out.callers = this.#group(s.labels, restricts, p, `${field}.labels`, action);
    if (s.notLabels) out.notCallers = this.#group(s.notLabels, !restricts, p, `${field}.notLabels`, action);
    return out as AuthzSource;
  }

  #condition(c: AuthorizationCondition, ns: string): AuthzCondition {
    const fix = (vs: readonly string[] | undefined): string[] | undefined => {
      if (!vs || vs.length === 0) return undefined;
      if (c.key === 'source.principal') return this.#principals(vs);
      if (c.key === 'source.serviceAccount') return vs.map((v) => qualify(v, ns));
      if (c.key === 'source.trustDomain') return this.#domains(vs);
      return [...vs];
    };
    const values = fix(c.values);
    const notValues = fix(c.notValues);
    return { key: c.key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) };
  }

  /** Istio's trust-domain aliasing: a principal in `cluster.local` or one of the mesh's domains stands for all of them. */
  #principals(values: readonly string[]): string[] {
    const out: string[] = [];
    for (const v of values) {
      const cut = v.indexOf('/ns/');
      const td = cut > 0 && !v.startsWith('*') ? v.slice(0, cut) : undefined;
      if (td !== undefined && (td === LOCAL_TRUST_DOMAIN || this.#trustDomains.includes(td))) {
        for (const d of this.#trustDomains) out.push(d + v.slice(cut));
      } else {
        out.push(v);
      }
    }
    return unique(out);
  }

  #domains(values: readonly string[]): string[] {
    return unique(values.flatMap((d) => (d === LOCAL_TRUST_DOMAIN || this.#trustDomains.includes(d) ? this.#trustDomains : [d])));
  }

  /**
   * The identities of a caller group: every identity of a workload with the
   * labels when `inclusive`, else only those no workload outside the group uses.
   */
  #group(labels: Readonly<Record<string, string>>, inclusive: boolean, p: AuthorizationPolicyResource, field: string, action: AuthzAction): CallerGroup {
    const g = this.#resolve(labels);
    const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    if (g.members.length === 0) this.notes.push(note('caller-group-empty', 'CallerGroupEmpty', { labels: text }, p, field));
    const shared = [...g.shared.keys()].sort();
    if (shared.length > 0) {
      const who = shared.map((id) => `${id} (also ${g.shared.get(id)!.join(', ')})`).join('; ');
      const them = shared.length === 1 ? 'it' : 'them';
      const effect = inclusive
        ? `this ${action} policy treats callers with ${them} as members of the group`
        : `the group does not grant ${them} (fail closed)`;
      this.notes.push({ ...note('caller-identity-shared', 'CallerIdentityShared', { labels: text, shared: who, effect }, p, field), identities: shared });
    }
    const ids = inclusive ? g.members : g.members.filter((id) => !g.shared.has(id));
    return { labels: { ...labels }, principals: ids.map((id) => id.slice(SPIFFE.length)) };
  }

  #resolve(labels: Readonly<Record<string, string>>): { members: string[]; shared: Map<string, string[]> } {
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => cmp(a, b)));
    let g = this.#groups.get(key);
    if (g) return g;
    const inside = new Set<string>();
    const outside = new Map<string, string[]>();
    for (const w of this.#input.registry.workloads()) {
      if (!w.identity.startsWith(SPIFFE)) continue;
      if (labelsMatch(labels, w.labels)) inside.add(w.identity);
      else {
        const list = outside.get(w.identity);
        if (list) list.push(`${w.name}.${w.namespace}`);
        else outside.set(w.identity, [`${w.name}.${w.namespace}`]);
      }
    }
    const members = [...inside].sort();
    const shared = new Map<string, string[]>();
    for (const id of members) { const o = outside.get(id); if (o) shared.set(id, o.sort()); }
    this.#groups.set(key, (g = { members, shared }));
    return g;
  }
}

/** A note with its catalogue code and message (src/api/messages.ts). */
function note(kind: AuthzNoteKind, name: 'CallerIdentityShared' | 'CallerGroupEmpty' | 'CustomActionNotSupported',
  args: Readonly<Record<string, string>>, p: AuthorizationPolicyResource, field: string): AuthzNote {
  const d = diagnostic(name, args);
  return { kind, code: d.code, resource: p.ref, field, message: d.message, args };
}

function operation(o: AuthorizationOperation): AuthzOperation {
  const out: Record<string, unknown> = {};
  const put = (k: string, v: readonly (string | number)[] | undefined) => { if (v && v.length) out[k] = [...v]; };
  put('hosts', o.hosts);
  put('notHosts', o.notHosts);
  put('ports', o.ports?.map(Number));
  put('notPorts', o.notPorts?.map(Number));
  put('methods', o.methods);
  put('notMethods', o.notMethods);
  put('paths', o.paths);
  put('notPaths', o.notPaths);
  return out as AuthzOperation;
}

/** `account` → `namespace/account`. */
function qualify(account: string, ns: string): string {
  return account.includes('/') ? account : `${ns}/${account}`;
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
