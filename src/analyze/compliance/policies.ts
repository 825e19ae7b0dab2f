/**
 * compliance.policies: CompliancePolicies that do not do what they seem to:
 * services, selectors or tenant namespaces that match nothing; a second
 * policy at the same level that states a check the first already decides;
 * partitioning outside the mesh-wide policy, where it is not read.
 */
import { COMPLIANCE_CHECKS } from '../../api/kinds/compliance-policy.js';
import type { Analyzer } from '../analyzer.js';
import { namespaceExists } from '../lookup.js';
import { covers, type CompliancePolicyResource } from './policy.js';

export const compliancePolicies: Analyzer = {
  name: 'compliance.policies',
  description: 'CompliancePolicy services, selectors and tenant namespaces that match nothing, policies shadowed by an earlier one of the same scope, and partitioning outside the mesh-wide policy.',
  reads: ['CompliancePolicy', 'Service', 'ServiceEntry', 'App', 'Namespace'],
  messages: ['CompliancePolicyMatchesNothing', 'CompliancePolicyShadowed', 'CompliancePolicyMisplaced'],
  run(ctx) {
    const root = ctx.mesh.rootNamespace;
    const policies = ctx.ofKind('CompliancePolicy');
    const services = ctx.registry.services();
    for (const p of policies) {
      const spec = p.body.spec;
      const ns = p.metadata.namespace;
      spec.services?.forEach((name, i) => {
        if (!services.some((s) => s.namespace === ns && s.name === name)) {
          ctx.report('CompliancePolicyMatchesNothing', { what: `service "${name}" (in namespace ${ns})`, kind: 'service' }, { resource: p, field: ['spec', 'services', i] });
        }
      });
      if (spec.selector && !services.some((s) => covers(p, s, root))) {
        ctx.report('CompliancePolicyMatchesNothing', { what: `selector ${JSON.stringify(spec.selector.matchLabels)}`, kind: 'service' }, { resource: p, field: ['spec', 'selector', 'matchLabels'] });
      }
      if (spec.partitioning) {
        if (ns !== root) ctx.report('CompliancePolicyMisplaced', { root }, { resource: p, field: ['spec', 'partitioning'] });
        else {
          spec.partitioning.tenants.forEach((t, i) => t.namespaces.forEach((n, j) => {
            if (!namespaceExists(ctx, n)) ctx.report('CompliancePolicyMatchesNothing', { what: `namespace ${n} of tenant ${t.name}`, kind: 'namespace' }, { resource: p, field: ['spec', 'partitioning', 'tenants', i, 'namespaces', j] });
          }));
        }
      }
      const earlier = policies.slice(0, policies.indexOf(p)).find((q) => sameScope(p, q) && sharedSections(p, q).length > 0);
      if (earlier) {
        const sections = sharedSections(p, earlier).join(', ');
        ctx.report('CompliancePolicyShadowed', { other: earlier.ref, sections }, { resource: p, field: ['spec', sharedSections(p, earlier)[0]!] });
      }
    }
  },
};

/** Two policies of one namespace at the same level for some service: both namespace-wide, or naming a service in common. */
function sameScope(a: CompliancePolicyResource, b: CompliancePolicyResource): boolean {
  if (a.metadata.namespace !== b.metadata.namespace) return false;
  const x = a.body.spec;
  const y = b.body.spec;
  if (!x.selector && !x.services && !y.selector && !y.services) return true;
  return !!x.services && !!y.services && x.services.some((s) => y.services!.includes(s));
}

function sharedSections(a: CompliancePolicyResource, b: CompliancePolicyResource): string[] {
  return COMPLIANCE_CHECKS.filter((c) => a.body.spec[c] !== undefined && b.body.spec[c] !== undefined);
}
