/**
 * PeerAuthentication → the mTLS mode of each inbound port of a workload,
 * with Istio's precedence: a port-level setting of the workload's policy,
 * then the workload's policy (a selector that picks it), then the policy of
 * its namespace (no selector), then the mesh-wide policy (root namespace,
 * no selector), then PERMISSIVE. `UNSET` passes to the next level. Among
 * several policies of one level the first loaded wins (Istio: the oldest).
 * Port-level keys name the workload's (target) port, as in Istio.
 */
import type { ConfigSet, ResourceOf } from '../api/config-set.js';
import type { MutualTlsMode } from '../api/kinds/peer-authentication.js';
import type { InboundListener, PeerAuthnMode } from '../protocol/snapshot.js';
import { labelsMatch } from '../policy/route-match.js';
import type { Endpoint } from '../registry/types.js';

/** Istio's default when no policy says anything. */
export const DEFAULT_PEER_AUTHN: PeerAuthnMode = 'PERMISSIVE';

type PeerAuthenticationResource = ResourceOf<'PeerAuthentication'>;

/** The policies that apply to a workload, most specific first: [workload, namespace, mesh]. */
function levels(config: ConfigSet, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>): (PeerAuthenticationResource | undefined)[] {
  let workload: PeerAuthenticationResource | undefined;
  let ns: PeerAuthenticationResource | undefined;
  let mesh: PeerAuthenticationResource | undefined;
  for (const r of config.ofKind('PeerAuthentication')) {
    const at = r.metadata.namespace;
    const sel = r.body.spec.selector?.matchLabels;
    if (sel && Object.keys(sel).length > 0) {
      if (at === namespace && !workload && labelsMatch(sel, labels)) workload = r;
    } else if (at === namespace && at !== rootNamespace) ns ??= r;
    else if (at === rootNamespace) {
      if (namespace === rootNamespace) ns ??= r;
      else mesh ??= r;
    }
  }
  return [workload, ns, mesh];
}

/** Which PeerAuthentication, and which field of it, sets a workload port's mode: what a message points at. */
export interface PeerAuthnOrigin {
  readonly resource: PeerAuthenticationResource;
  /** `['spec', 'mtls', 'mode']` or `['spec', 'portLevelMtls', '8080', 'mode']`. */
  readonly field: readonly (string | number)[];
  readonly mode: PeerAuthnMode;
}

const set = (m: MutualTlsMode | undefined): PeerAuthnMode | undefined => (m === undefined || m === 'UNSET' ? undefined : m);

/**
 * The policy and field that decide the mode of one target port, with Istio's
 * precedence: the workload policy's port-level setting, the workload policy,
 * the namespace's, the mesh's (UNSET passes on; the first loaded policy of a
 * level wins). Undefined when none does (the default, PERMISSIVE).
 */
export function peerAuthnOrigin(
  config: ConfigSet, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>, targetPort: number,
): PeerAuthnOrigin | undefined {
  const [workload, ns, mesh] = levels(config, rootNamespace, namespace, labels);
  const port = String(targetPort);
  const steps: [PeerAuthenticationResource | undefined, readonly (string | number)[], (r: PeerAuthenticationResource) => MutualTlsMode | undefined][] = [
    [workload, ['spec', 'portLevelMtls', port, 'mode'], (r) => r.body.spec.portLevelMtls?.[port]?.mode],
    [workload, ['spec', 'mtls', 'mode'], (r) => r.body.spec.mtls?.mode],
    [ns, ['spec', 'mtls', 'mode'], (r) => r.body.spec.mtls?.mode],
    [mesh, ['spec', 'mtls', 'mode'], (r) => r.body.spec.mtls?.mode],
  ];
  for (const [r, field, modeOf] of steps) {
    const mode = r ? set(modeOf(r)) : undefined;
    if (r && mode) return { resource: r, field, mode };
  }
  return undefined;
}

/** The mode of one target port. */
export function peerAuthnMode(config: ConfigSet, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>, targetPort: number): PeerAuthnMode {
  return peerAuthnOrigin(config, rootNamespace, namespace, labels, targetPort)?.mode ?? DEFAULT_PEER_AUTHN;
}

/**
 * Whether every endpoint of a cluster takes plaintext only (PeerAuthentication
 * DISABLE on its target port): auto mTLS then sends plaintext (Istio infers
 * the same from the destination's policy). Endpoints without a mesh identity
 * do not count; no endpoints: false.
 */
export function allPeersPlaintext(config: ConfigSet, rootNamespace: string, endpoints: readonly Endpoint[]): boolean {
  return endpoints.length > 0 && endpoints.every((e) => e.identity !== '' && peerAuthnMode(config, rootNamespace, e.namespace, e.labels, e.port) === 'DISABLE');
}

/** The listeners with their `mtls` mode set (new frozen objects only where the mode differs from what they carry). */
export function withPeerAuthn(
  listeners: readonly InboundListener[], config: ConfigSet, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>,
): readonly InboundListener[] {
  if (listeners.length === 0) return listeners;
  return Object.freeze(listeners.map((l) => {
    const mtls = peerAuthnMode(config, rootNamespace, namespace, labels, l.targetPort);
    return l.mtls === mtls ? l : Object.freeze({ ...l, mtls });
  }));
}

const signatures = new WeakMap<ConfigSet, string>();

/** A text that changes whenever a PeerAuthentication does (part of the inbound and cluster memo keys); computed once per configuration set. */
export function peerAuthnSignature(config: ConfigSet): string {
  let sig = signatures.get(config);
  if (sig === undefined) signatures.set(config, (sig = config.ofKind('PeerAuthentication').map((r) => r.hash).join(',')));
  return sig;
}
