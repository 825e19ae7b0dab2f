/**
 * Which PeerAuthentication, and which of its fields, decides the mTLS mode
 * of one workload port: the resource to point a message at. The precedence
 * is peer-authn.ts's (a port-level setting of the workload's policy, the
 * workload's policy, the namespace's, the mesh's; UNSET passes on; the first
 * loaded policy of a level wins). The mode itself is always asked of
 * `peerAuthnMode`; an origin whose mode disagrees with it is not returned.
 */
import type { ConfigSet, ResourceOf } from '../../api/config-set.js';
import { peerAuthnMode } from '../../compile/peer-authn.js';
import { labelsMatch } from '../../policy/route-match.js';

export type PeerAuthenticationResource = ResourceOf<'PeerAuthentication'>;

export interface PeerAuthnOrigin {
  readonly resource: PeerAuthenticationResource;
  /** `['spec', 'mtls', 'mode']` or `['spec', 'portLevelMtls', '8080', 'mode']`. */
  readonly field: readonly (string | number)[];
  readonly mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
}

/** The policy and field that set the mode of `targetPort`; undefined when none does (Trellis's default, PERMISSIVE). */
export function peerAuthnOrigin(
  config: ConfigSet, rootNamespace: string, namespace: string, labels: Readonly<Record<string, string>>, targetPort: number,
): PeerAuthnOrigin | undefined {
  let workload: PeerAuthenticationResource | undefined;
  let ns: PeerAuthenticationResource | undefined;
  let mesh: PeerAuthenticationResource | undefined;
  for (const r of config.ofKind('PeerAuthentication')) {
    const at = r.metadata.namespace;
    const sel = r.body.spec.selector?.matchLabels;
    if (sel && Object.keys(sel).length > 0) {
      if (at === namespace && !workload && labelsMatch(sel, labels)) workload = r;
    } else if (at === namespace) ns ??= r;
    else if (at === rootNamespace) mesh ??= r;
  }
  const port = String(targetPort);
  const steps: [PeerAuthenticationResource | undefined, readonly (string | number)[], (r: PeerAuthenticationResource) => string | undefined][] = [
    [workload, ['spec', 'portLevelMtls', port, 'mode'], (r) => r.body.spec.portLevelMtls?.[port]?.mode],
    [workload, ['spec', 'mtls', 'mode'], (r) => r.body.spec.mtls?.mode],
    [ns, ['spec', 'mtls', 'mode'], (r) => r.body.spec.mtls?.mode],
    [mesh, ['spec', 'mtls', 'mode'], (r) => r.body.spec.mtls?.mode],
  ];
  for (const [r, field, modeOf] of steps) {
    const m = r ? modeOf(r) : undefined;
    if (!r || m === undefined || m === 'UNSET') continue;
    const truth = peerAuthnMode(config, rootNamespace, namespace, labels, targetPort);
    return truth === m ? { resource: r, field, mode: truth } : undefined;
  }
  return undefined;
}
