/**
 * Where a security policy applies, shared by PeerAuthentication,
 * AuthorizationPolicy and RequestAuthentication: a workload `selector`, or a
 * `targetRef` / `targetRefs` naming a Service, ServiceEntry or Gateway, with
 * the rules Istio applies to them (no wildcards in selectors, no references
 * across namespaces, at most one way of choosing the workloads).
 */
import { atMostOne, z } from '../schema.js';
import { isDnsSubdomain, selectorIssues } from './names.js';

/** Istio's `WorkloadSelector` as the security kinds check it: no empty keys, no `*`, values of at most 63 characters. */
export const policySelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
}).superRefine((s, ctx) => {
  selectorIssues(s.matchLabels, ctx, ['matchLabels']);
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) {
    if (v.length > 63) ctx.addIssue({ code: 'custom', path: ['matchLabels', k], message: `selector label value for "${k}" is longer than 63 characters` });
  }
});

/** An API group: `''` (the core group) or a DNS subdomain. */
const isGroup = (g: string) => g === '' || isDnsSubdomain(g);
const KIND = /^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
/** The resources a policy may target, as `group/kind` (core group written as ''). */
const TARGETABLE = new Set(['/Service', 'networking.istio.io/ServiceEntry', 'gateway.networking.k8s.io/Gateway', 'gateway.networking.k8s.io/GatewayClass']);

/** Istio's `PolicyTargetReference`, checked: a Service, ServiceEntry, Gateway or GatewayClass in the policy's own namespace. */
export const policyTargetRef = z.strictObject({
  group: z.string().optional(),
  kind: z.string(),
  name: z.string(),
  namespace: z.string().optional(),
}).superRefine((r, ctx) => {
  const group = r.group ?? '';
  if (!isGroup(group)) {
    ctx.addIssue({ code: 'custom', path: ['group'], message: `"${group}" is not an API group; use "" for core resources or a DNS name such as networking.istio.io` });
  }
  if (r.kind.length > 63 || !KIND.test(r.kind)) {
    ctx.addIssue({ code: 'custom', path: ['kind'], message: `"${r.kind}" is not a kind name; kinds are letters and digits, such as Service` });
  } else if (isGroup(group) && !TARGETABLE.has(`${group === 'core' ? '' : group}/${r.kind}`)) {
    ctx.addIssue({ code: 'custom', path: ['kind'], message: `a policy can target a Service (group ""), a ServiceEntry (networking.istio.io) or a Gateway or GatewayClass (gateway.networking.k8s.io), not ${group || 'core'}/${r.kind}` });
  }
  if (r.name === '' || r.name.length > 253) ctx.addIssue({ code: 'custom', path: ['name'], message: 'targetRef.name must name the target, in at most 253 characters' });
  if (r.namespace !== undefined && r.namespace !== '') {
    ctx.addIssue({ code: 'custom', path: ['namespace'], message: 'cross-namespace references are not supported: leave out targetRef.namespace and put the policy in the namespace of its target' });
  }
});

/** `targetRefs`: at most 16 references. */
export const policyTargetRefs = z.array(policyTargetRef).max(16, { message: 'targetRefs may list at most 16 targets' });

/** Adds an issue when more than one of selector, targetRef and targetRefs is set. */
export function policyScopeIssues(spec: Readonly<Record<string, unknown>>, ctx: z.RefinementCtx): void {
  atMostOne(spec, ['selector', 'targetRef', 'targetRefs'], ctx, 'a policy');
}
