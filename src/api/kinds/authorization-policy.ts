/**
 * `security.istio.io` AuthorizationPolicy: which callers may perform which
 * operations on the selected workloads. One Trellis extension: `source.labels`
 * / `source.notLabels` name a caller group by workload labels; the compiler
 * resolves the group to identities.
 */
import { isPortText, z, type DeepReadonly } from '../schema.js';
import { defineKind, type ValueWarning } from '../kind.js';
import { isIpOrCidr, selectorIssues } from './names.js';
import { policyScopeIssues, policySelector, policyTargetRef, policyTargetRefs } from './policy-scope.js';

const value = z.string().refine((s) => s !== '', { message: 'must not be an empty string' });
const values = z.array(value).optional();

const ipBlocks = z.array(z.string().superRefine((s, ctx) => {
  if (!isIpOrCidr(s)) ctx.addIssue({ code: 'custom', message: `"${s}" is not an IP address or CIDR block (such as 203.0.113.4 or 203.0.113.0/24)` });
})).optional();

const portString = z.string().superRefine((s, ctx) => {
  if (!isPortText(s)) ctx.addIssue({ code: 'custom', message: `"${s}" is not a port number between 1 and 65535` });
});

const serviceAccounts = z.array(z.string().superRefine((s, ctx) => {
  if (s === '' || s.length > 320) ctx.addIssue({ code: 'custom', message: 'a service account must be a non-empty name of at most 320 characters' });
  else if (s.includes('*')) ctx.addIssue({ code: 'custom', message: `service account "${s}": wildcards are not supported` });
  else if (s.split('/').length > 2 || s.startsWith('/') || s.endsWith('/')) ctx.addIssue({ code: 'custom', message: `service account "${s}" must be "<namespace>/<account>" or "<account>" (this namespace)` });
})).max(16, { message: 'at most 16 service accounts' }).optional();

/** A caller group by workload labels (Trellis extension). */
const callerLabels = z.record(z.string(), z.string()).superRefine((m, ctx) => {
  if (Object.keys(m).length === 0) ctx.addIssue({ code: 'custom', message: 'a caller label group needs at least one label' });
  selectorIssues(m, ctx, []);
}).optional();

const IDENTITY_FIELDS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'] as const;

const source = z.strictObject({
  principals: values,
  notPrincipals: values,
  requestPrincipals: values,
  notRequestPrincipals: values,
  namespaces: values,
  notNamespaces: values,
  ipBlocks,
  notIpBlocks: ipBlocks,
  remoteIpBlocks: ipBlocks,
  notRemoteIpBlocks: ipBlocks,
  serviceAccounts,
  notServiceAccounts: serviceAccounts,
  trustDomains: values,
  notTrustDomains: values,
  labels: callerLabels,
  notLabels: callerLabels,
}).superRefine((s, ctx) => {
  const accounts = (['serviceAccounts', 'notServiceAccounts'] as const).find((k) => s[k] !== undefined);
  const identity = IDENTITY_FIELDS.find((k) => s[k] !== undefined);
  if (accounts && identity) {
    ctx.addIssue({ code: 'custom', path: [identity], message: `${accounts} cannot be combined with ${identity}: a service account already names its namespace; write "namespace/account" in ${accounts}, or use principals instead` });
  }
  if (Object.values(s).every((v) => v === undefined || (Array.isArray(v) && v.length === 0))) {
    ctx.addIssue({ code: 'custom', path: [], message: 'a source needs at least one field, such as principals, namespaces or ipBlocks; to match any caller, leave out "from"' });
  }
});

const operation = z.strictObject({
  hosts: values,
  notHosts: values,
  ports: z.array(portString).optional(),
  notPorts: z.array(portString).optional(),
  methods: values,
  notMethods: values,
  paths: z.array(z.string().superRefine(pathTemplateIssues)).optional(),
  notPaths: z.array(z.string().superRefine(pathTemplateIssues)).optional(),
}).superRefine((o, ctx) => {
  if (Object.values(o).every((v) => v === undefined || v.length === 0)) {
    ctx.addIssue({ code: 'custom', path: [], message: 'an operation needs at least one field, such as paths, methods or ports; to match any operation, leave out "to"' });
  }
});

/** Paths may use `{*}` (one segment) and `{**}` (the rest, once); other braces, or `*` beside a template, are errors. */
function pathTemplateIssues(path: string, ctx: z.RefinementCtx): void {
  if (path === '') { ctx.addIssue({ code: 'custom', message: 'must not be an empty string' }); return; }
  const template = path.includes('{*}') || path.includes('{**}');
  let sawAny = false;
  for (const seg of path.replace(/^\/+|\/+$/g, '').split('/')) {
    if (seg === '{*}' && !sawAny) continue;
    if (seg === '{**}' && !sawAny) { sawAny = true; continue; }
    if (/[{}]/.test(seg)) { ctx.addIssue({ code: 'custom', message: `path "${path}": "${seg}" is not a path template; use {*} for one segment or {**} (once) for the rest` }); return; }
    if (template && seg.includes('*')) { ctx.addIssue({ code: 'custom', message: `path "${path}" mixes a path template with "*"; use {*} or {**} throughout` }); return; }
  }
}

const EXACT_KEYS = new Set([
  'source.ip', 'remote.ip', 'source.namespace', 'source.principal', 'source.serviceAccount', 'source.trustDomain',
  'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter',
  'destination.ip', 'destination.port', 'connection.sni',
]);
const IP_KEYS = new Set(['source.ip', 'remote.ip', 'destination.ip']);

/** Condition keys that match Envoy filter metadata, which Trellis has none of. */
const ENVOY_FILTER_KEY = 'experimental.envoy.filters.';

/** Why `key` is not a condition attribute Istio knows, or undefined. */
function conditionKeyError(key: string): string | undefined {
  if (EXACT_KEYS.has(key) || key.startsWith(ENVOY_FILTER_KEY)) return undefined;
  if (key.startsWith('request.headers')) return /^request\.headers\[[^[\]]+\]$/.test(key) ? undefined : `"${key}" must name one header, as in request.headers[x-user]`;
  if (key.startsWith('request.auth.claims')) return /^request\.auth\.claims(\[[^[\]]+\])+$/.test(key) ? undefined : `"${key}" must name a claim, as in request.auth.claims[iss] or request.auth.claims[groups][0]`;
  return `unknown condition key "${key}"; see Istio's list of authorization conditions (source.ip, request.headers[...], request.auth.claims[...], destination.port, …)`;
}

const condition = z.strictObject({
  key: z.string(),
  values: z.array(z.string()).optional(),
  notValues: z.array(z.string()).optional(),
}).superRefine((c, ctx) => {
  if (c.key === '') { ctx.addIssue({ code: 'custom', path: ['key'], message: 'a condition key must not be empty' }); return; }
  const keyError = conditionKeyError(c.key);
  if (keyError) ctx.addIssue({ code: 'custom', path: ['key'], message: keyError });
  if (!c.values?.length && !c.notValues?.length) ctx.addIssue({ code: 'custom', path: [], message: `condition "${c.key}" needs values or notValues` });
  for (const field of ['values', 'notValues'] as const) {
    c[field]?.forEach((v, i) => {
      if (IP_KEYS.has(c.key) && !isIpOrCidr(v)) ctx.addIssue({ code: 'custom', path: [field, i], message: `"${v}" is not an IP address or CIDR block, as ${c.key} requires` });
      if (c.key === 'destination.port' && !isPortText(v)) ctx.addIssue({ code: 'custom', path: [field, i], message: `"${v}" is not a port number between 1 and 65535` });
    });
  }
});

const rule = z.strictObject({
  from: z.array(z.strictObject({ source })).optional(),
  to: z.array(z.strictObject({ operation })).optional(),
  when: z.array(condition).optional(),
}).superRefine((r, ctx) => {
  if (r.from?.length === 0) ctx.addIssue({ code: 'custom', path: ['from'], message: '"from" must not be empty; leave it out to match any source' });
  if (r.to?.length === 0) ctx.addIssue({ code: 'custom', path: ['to'], message: '"to" must not be empty; leave it out to match any operation' });
});

/** Source fields and condition keys an external (CUSTOM) authorizer cannot be given. */
const NOT_WITH_CUSTOM = ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'labels', 'notLabels'] as const;

export const authorizationPolicySpec = z.strictObject({
  selector: policySelector.optional(),
  targetRef: policyTargetRef.optional(),
  targetRefs: policyTargetRefs.optional(),
  action: z.enum(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']).optional(),
  provider: z.strictObject({ name: z.string() }).optional(),
  rules: z.array(rule).max(512, { message: 'at most 512 rules' }).optional(),
}).superRefine((s, ctx) => {
  policyScopeIssues(s, ctx);
  if (s.action === 'CUSTOM') {
    if (!s.rules) ctx.addIssue({ code: 'custom', path: ['action'], message: 'a CUSTOM policy without rules never applies; add "rules: [{}]" to send every request to the provider' });
    if (!s.provider?.name) ctx.addIssue({ code: 'custom', path: ['provider'], message: 'a CUSTOM policy needs provider.name, the name of an extension provider declared in MeshConfig' });
    s.rules?.forEach((r, i) => {
      r.from?.forEach((f, j) => {
        for (const k of NOT_WITH_CUSTOM) {
          if (f.source[k] !== undefined) ctx.addIssue({ code: 'custom', path: ['rules', i, 'from', j, 'source', k], message: `source.${k} cannot be used with the CUSTOM action; the external authorizer does not receive it` });
        }
      });
      r.when?.forEach((c, j) => {
        if (['source.namespace', 'source.serviceAccount', 'source.principal'].includes(c.key) || c.key.startsWith('request.auth.')) {
          ctx.addIssue({ code: 'custom', path: ['rules', i, 'when', j, 'key'], message: `condition "${c.key}" cannot be used with the CUSTOM action` });
        }
      });
    });
  } else if (s.provider !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['provider'], message: `provider is only for the CUSTOM action; this policy's action is ${s.action ?? 'ALLOW'}` });
  }
  if (s.action === 'DENY' && !s.rules) {
    ctx.addIssue({ code: 'custom', path: ['action'], message: 'a DENY policy without rules never applies; add "rules: [{}]" to deny every request' });
  }
});

/** The group of Gateway API targets (Gateway, GatewayClass), which select no workload: Trellis has no Gateway API gateways. */
const GATEWAY_API = 'gateway.networking.k8s.io';

/**
 * Values accepted but not acted on as Istio would: the AUDIT action, the
 * CUSTOM action (no external authorizer: what it matches is denied), a
 * targetRef to a Gateway API Gateway or GatewayClass (selects nothing), and
 * conditions on Envoy filter metadata.
 */
function policyWarnings(spec: z.infer<typeof authorizationPolicySpec>): ValueWarning[] {
  const out: ValueWarning[] = [];
  if (spec.action === 'AUDIT') {
    out.push({ path: ['spec', 'action'], message: 'an AUDIT policy only marks requests for audit logging, which Trellis does not do yet; as in Istio, it does not change which requests are allowed' });
  }
  if (spec.action === 'CUSTOM') {
    out.push({ path: ['spec', 'action'], message: `Trellis has no external authorizer and never calls provider "${spec.provider?.name ?? ''}": it fails closed and denies (403) every request this CUSTOM policy matches` });
  }
  const refs = spec.targetRefs ? spec.targetRefs.map((r, i) => [r, ['spec', 'targetRefs', i]] as const) : spec.targetRef ? [[spec.targetRef, ['spec', 'targetRef']] as const] : [];
  for (const [ref, path] of refs) {
    if (ref.group === GATEWAY_API) {
      out.push({ path: [...path, 'kind'], message: `Trellis has no Gateway API ${ref.kind === 'Gateway' ? 'gateways' : 'gateway classes'}, so this target selects no workload and the policy applies nowhere; select the gateway's workload with "selector" instead` });
    }
  }
  spec.rules?.forEach((r, i) => r.when?.forEach((c, j) => {
    if (c.key.startsWith(ENVOY_FILTER_KEY)) {
      out.push({ path: ['spec', 'rules', i, 'when', j, 'key'], message: 'Trellis has no Envoy filter metadata, so it cannot evaluate this condition and fails closed: the compiler denies the requests it would decide (an ALLOW rule with it never matches; a DENY rule with it always does)' });
    }
  }));
  return out;
}

export type AuthorizationPolicySpec = DeepReadonly<z.infer<typeof authorizationPolicySpec>>;
export type AuthorizationRule = NonNullable<AuthorizationPolicySpec['rules']>[number];
export type AuthorizationSource = NonNullable<AuthorizationRule['from']>[number]['source'];
export type AuthorizationOperation = NonNullable<AuthorizationRule['to']>[number]['operation'];
export type AuthorizationCondition = NonNullable<AuthorizationRule['when']>[number];

export const AuthorizationPolicy = defineKind({
  kind: 'AuthorizationPolicy',
  group: 'security.istio.io',
  versions: ['v1', 'v1beta1'],
  namespaced: true,
  body: z.strictObject({ spec: authorizationPolicySpec, status: z.unknown().optional() }),
  // Every field is enforced; values that are not (AUDIT, CUSTOM and its provider, Gateway API targets) are warned about by value.
  warnings: (body) => policyWarnings(body.spec),
  extensions: [
    'spec.rules[*].from[*].source.labels',
    'spec.rules[*].from[*].source.notLabels',
  ],
  docs: 'Access control for workloads: ALLOW, DENY, AUDIT or CUSTOM rules over callers (identities, namespaces, IPs, caller label groups), operations (hosts, ports, methods, paths) and conditions.',
});
