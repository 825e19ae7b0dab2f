/**
 * ALLOW policies that allow (nearly) everything by accident. Once an ALLOW
 * policy applies to a workload, what it does not match is denied, so the
 * author meant to restrict; two shapes defeat that:
 *
 * - an empty rule (`{}`) next to other rules (TRL1442): it matches every
 *   request, and the other rules are dead. A policy whose only rule is `{}`
 *   is Istio's documented allow-all and is left alone, as are positive
 *   wildcards someone wrote on purpose (`principals: ["*"]`, `paths: ["*"]`);
 * - a rule that only excludes (TRL1443): each of its parts (`from`, `to`,
 *   `when`) is absent or has an alternative made only of `not…` fields, so
 *   it admits everything else, plaintext callers included. The rule is then
 *   compiled by the compiler and run by the proxy's authorizer on requests
 *   from an anonymous caller; only when it allows one is it reported (a rule
 *   like `notIpBlocks: [0.0.0.0/0, ::/0]` admits nobody and is not).
 */
import type { AuthorizationRule } from '../../api/kinds/authorization-policy.js';
import { buildAuthorizer, type AuthzRequest } from '../../policy/authorize.js';
import type { WorkloadAuthz } from '../../protocol/authz.js';
import type { Analyzer, AnalysisContext } from '../analyzer.js';
import { compileAlone, listText, type AuthorizationPolicyResource } from './sec-common.js';

type Path = (string | number)[];

/** Requests from a caller without an identity, token or known address, on unlikely ports and paths. */
const ANONYMOUS: readonly AuthzRequest[] = [
  { tcp: false, sourceIp: '198.51.100.7', destinationPort: 65000, method: 'GET', path: '/', host: 'trellis-analyze.invalid' },
  { tcp: false, sourceIp: '2001:db8::7', destinationPort: 65001, method: 'POST', path: '/trellis/analyze/probe', host: 'trellis-analyze.invalid:65001' },
  { tcp: true, sourceIp: '198.51.100.8', destinationPort: 65002 },
];

/** The `not…` fields set in `part`, when it sets nothing else; undefined when it sets a positive field. */
function exclusions(part: Readonly<Record<string, unknown>>): string[] | undefined {
  const set = Object.entries(part).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0));
  if (set.some(([k]) => !k.startsWith('not'))) return undefined;
  return set.map(([k]) => k);
}

/** The only-exclusion fields that leave the rule open, or undefined when some part names what it admits. */
function openFields(r: AuthorizationRule): Path[] | undefined {
  const out: Path[] = [];
  if (r.from) {
    const j = r.from.findIndex((f) => exclusions(f.source) !== undefined);
    if (j < 0) return undefined;
    for (const k of exclusions(r.from[j]!.source)!) out.push(['from', j, 'source', k]);
  }
  if (r.to) {
    const j = r.to.findIndex((t) => exclusions(t.operation) !== undefined);
    if (j < 0) return undefined;
    for (const k of exclusions(r.to[j]!.operation)!) out.push(['to', j, 'operation', k]);
  }
  for (const [j, c] of (r.when ?? []).entries()) {
    if (c.values?.length) return undefined;
    out.push(['when', j, 'notValues']);
  }
  return out;
}

/** Whether the compiled rule `index` lets an anonymous request through, as the proxy decides. */
function admitsAnonymous(compiled: WorkloadAuthz | undefined, index: number): boolean {
  const policy = compiled?.policies[0];
  const rule = policy?.rules.find((r) => r.index === index);
  if (!policy || !rule) return false;
  const authorize = buildAuthorizer({ policies: [{ ...policy, rules: [rule] }], notes: [] });
  return ANONYMOUS.some((req) => authorize(req).allowed);
}

const pathText = (p: Path) => p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');

function check(ctx: AnalysisContext, p: AuthorizationPolicyResource): void {
  const spec = p.body.spec;
  if ((spec.action ?? 'ALLOW') !== 'ALLOW' || !spec.rules?.length) return;
  const rules = spec.rules;
  const empty = rules.map((r, i) => (!r.from && !r.to && !r.when ? i : -1)).filter((i) => i >= 0);
  if (empty.length > 0 && rules.length > empty.length) {
    const others = rules.map((_, i) => i).filter((i) => !empty.includes(i));
    for (const i of empty) {
      ctx.report('AllowRuleEmptyAmongRules', { rule: i, others: `${others.length === 1 ? 'rule' : 'rules'} ${listText(others.map(String))}` }, {
        resource: p, field: ['spec', 'rules', i],
      });
    }
  }
  let compiled: WorkloadAuthz | undefined | null = null; // compiled once, when a rule needs it
  rules.forEach((r, i) => {
    if (empty.includes(i)) return;
    const open = openFields(r);
    if (!open || open.length === 0) return;
    if (compiled === null) compiled = compileAlone(ctx, p);
    if (!admitsAnonymous(compiled, i)) return;
    ctx.report('AllowRuleOnlyExclusions', { rule: i, fields: open.map(pathText).join(', ') }, {
      resource: p, field: ['spec', 'rules', i, ...open[0]!],
    });
  });
}

export const allowAllAnalyzer: Analyzer = {
  name: 'authorizationpolicy.allow-all',
  description: 'ALLOW AuthorizationPolicy rules that allow (nearly) every request by accident: an empty rule beside others, or a rule that only excludes.',
  reads: ['AuthorizationPolicy', 'MeshConfig', 'Pod', 'Deployment', 'WorkloadEntry', 'App', 'Service', 'ServiceEntry'],
  messages: ['AllowRuleEmptyAmongRules', 'AllowRuleOnlyExclusions'],
  run(ctx) {
    for (const p of ctx.ofKind('AuthorizationPolicy')) check(ctx, p);
  },
};
