/** `security.istio.io` PeerAuthentication: whether workloads accept plain text, mutual TLS, or both. */
import { inPortRange, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { policySelector } from './policy-scope.js';

/** `UNSET` inherits from the parent scope (namespace, then mesh). */
const mtls = z.strictObject({ mode: z.enum(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']).optional() });

export const peerAuthenticationSpec = z.strictObject({
  selector: policySelector.optional(),
  mtls: mtls.optional(),
  /** Per-port overrides, keyed by port number as a string ("8080"). */
  portLevelMtls: z.record(z.string(), mtls).optional(),
}).superRefine((s, ctx) => {
  if (s.portLevelMtls === undefined) return;
  const ports = Object.keys(s.portLevelMtls);
  if (ports.length === 0) ctx.addIssue({ code: 'custom', path: ['portLevelMtls'], message: 'portLevelMtls, when set, needs at least one port' });
  for (const key of ports) {
    if (!/^\d+$/.test(key)) ctx.addIssue({ code: 'custom', path: ['portLevelMtls', key], message: `"${key}" is not a port number; portLevelMtls keys are ports such as "8080"` });
    else if (!inPortRange(Number(key))) ctx.addIssue({ code: 'custom', path: ['portLevelMtls', key], message: `port ${key} must be between 1 and 65535` });
  }
  if (Object.keys(s.selector?.matchLabels ?? {}).length === 0) {
    ctx.addIssue({ code: 'custom', path: ['portLevelMtls'], message: 'portLevelMtls needs a selector with matchLabels: mesh-wide and namespace-wide policies cannot set port-level mTLS' });
  }
});

export type PeerAuthenticationSpec = DeepReadonly<z.infer<typeof peerAuthenticationSpec>>;
export type MutualTlsMode = NonNullable<NonNullable<PeerAuthenticationSpec['mtls']>['mode']>;

export const PeerAuthentication = defineKind({
  kind: 'PeerAuthentication',
  group: 'security.istio.io',
  versions: ['v1', 'v1beta1'],
  namespaced: true,
  body: z.strictObject({ spec: peerAuthenticationSpec, status: z.unknown().optional() }),
  docs: 'Mutual TLS mode (STRICT, PERMISSIVE, DISABLE) for the workloads of a mesh, a namespace or a selector, with per-port overrides.',
});
