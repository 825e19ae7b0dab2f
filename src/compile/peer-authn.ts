/**
 * PeerAuthentication → the mTLS mode of each inbound port of a workload,
 * with Istio's precedence: a port-level setting of the workload's policy,
 * then the workload's policy (a selector that picks it), then the policy of
 * its namespace (no selector), then the mesh-wide policy (root namespace,
 * no selector), then PERMISSIVE. `UNSET` passes to the next level. Among
 * several policies of one level the first loaded wins (Istio: the oldest).
 * Port-level keys name the workload's (target) port, as in Istio.
 */
import type { ConfigSet } from '../api/config-set.js';
import type { MutualTlsMode, PeerAuthenticationSpec } from '../api/kinds/peer-authentication.js';
import type { InboundListener, PeerAuthnMode } from '../protocol/snapshot.js';
import { labelsMatch } from '../policy/route-match.js';
import type { Endpoint } from '../registry/types.js';

/** Istio's default when no policy says anything. */
export const DEFAULT_PEER_AUTHN: PeerAuthnMode = 'PERMISSIVE';

interface Scoped {
  readonly spec: PeerAuthenticationSpec;
  readonly source: string;
}

/** The policies that apply to a workload, most specific first: [workload, namespace, mesh]. */
function levels(config: ConfigSet, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>): (Scoped | undefined)[] {
  let workload: Scoped | undefined;
  let ns: Scoped | undefined;
  let mesh: Scoped | undefined;
  for (const r of config.ofKind('PeerAuthentication')) {
    const spec = r.body.spec as PeerAuthenticationSpec;
    const at = r.metadata.namespace;
    const sel = spec.selector?.matchLabels;
    const scoped = { spec, source: `PeerAuthentication ${at}/${r.metadata.name}` };
    if (sel && Object.keys(sel).length > 0) {
      if (at === namespace && !workload && labelsMatch(sel, labels)) workload = scoped;
    } else if (at === namespace && at !== rootNamespace) ns ??= scoped;
    else if (at === rootNamespace) {
      if (namespace === rootNamespace) ns ??= scoped;
      else mesh ??= scoped;
    }
  }
  return [workload, ns, mesh];
}

const set = (m: MutualTlsMode | undefined): PeerAuthnMode | undefined => (m === undefined || m === 'UNSET' ? undefined : m);

/** The mode of one target port. */
export function peerAuthnMode(config: ConfigSet, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>, targetPort: number): PeerAuthnMode {
  const [workload, ns, mesh] = levels(config, rootNamespace, namespace, labels);
  return set(workload?.spec.portLevelMtls?.[String(targetPort)]?.mode)
    ?? set(workload?.spec.mtls?.mode) ?? set(ns?.spec.mtls?.mode) ?? set(mesh?.spec.mtls?.mode) ?? DEFAULT_PEER_AUTHN;
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

/** A text that changes whenever a PeerAuthentication does (part of the inbound memo key). */
export function peerAuthnSignature(config: ConfigSet): string {
  return config.ofKind('PeerAuthentication').map((r) => r.hash).join(',');
}
