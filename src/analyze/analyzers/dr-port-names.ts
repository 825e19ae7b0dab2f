/**
 * Service port names (Istio's `service.PortNameAnalyzer`). A port's protocol
 * comes from `appProtocol`, else the name's `<protocol>[-suffix]`
 * (registry/protocol.ts, the rule the registry itself applies):
 *
 * - TRL0118: a port whose protocol neither says: Istio sniffs it, Trellis
 *   carries it as HTTP/1.1 (compile/slices.ts puts such ports on HTTP
 *   virtual hosts), so a raw TCP client on it fails;
 * - TRL0150: on an ExternalName service, such a port or a plain TCP one.
 *
 * As Istio does, the Kubernetes system namespaces and the Services of an
 * Istio installation (an `istio` label, or `release: istio`) are skipped.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { protocolOf } from '../../registry/protocol.js';
import type { Protocol } from '../../registry/types.js';
import type { Analyzer } from '../analyzer.js';

/** Namespaces Istio never injects and never checks. */
export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);

/** Istio protocol names Trellis does not carry but that follow the convention (ambient's tunnel port). */
const OTHER_ISTIO_PROTOCOLS: ReadonlySet<string> = new Set(['hbone']);

/** What Trellis makes of a port without a protocol, for the message. */
const ASSUMED = 'HTTP/1.1 (HTTP/2 with prior knowledge is detected), so a client that speaks raw TCP or TLS on it fails; Istio would sniff the protocol';

function isControlPlane(r: ResourceOf<'Service'>): boolean {
  const l = r.metadata.labels;
  return 'istio' in l || l.release === 'istio';
}

type Port = NonNullable<NonNullable<ResourceOf<'Service'>['body']['spec']>['ports']>[number];

/** The port's protocol as the registry reads it; `OTHER` for an Istio protocol Trellis does not carry. */
function protocolOfPort(p: Port): Protocol | 'OTHER' {
  const proto = protocolOf(p.name, p.appProtocol, { port: p.port, ...(p.protocol?.toUpperCase() === 'UDP' ? { transport: 'UDP' as const } : {}) });
  const prefix = (p.appProtocol || p.name || '').toLowerCase().split('-')[0]!;
  return proto === 'UNSPECIFIED' && OTHER_ISTIO_PROTOCOLS.has(prefix) ? 'OTHER' : proto;
}

/** How the port fails to say its protocol, for TRL0118. */
function naming(p: Port): string {
  if (p.appProtocol) return `has appProtocol "${p.appProtocol}", which names no protocol Trellis knows`;
  if (p.name) return `is named "${p.name}", which is not <protocol>[-suffix], and has no appProtocol`;
  return 'has no name and no appProtocol';
}

export const portNameAnalyzer: Analyzer = {
  name: 'service.port-names',
  description: 'Service ports whose name does not give the protocol (<protocol>[-suffix]) and that have no appProtocol; TCP or unnamed ports of ExternalName services.',
  reads: ['Service'],
  messages: ['PortNameIsNotUnderNamingConvention', 'ExternalNameServiceTypeInvalidPortName'],
  istio: ['service.PortNameAnalyzer'],
  run(ctx) {
    for (const r of ctx.ofKind('Service')) {
      if (SYSTEM_NAMESPACES.has(r.metadata.namespace) || isControlPlane(r)) continue;
      const spec = r.body.spec ?? {};
      const service = `${r.metadata.name}.${r.metadata.namespace}`;
      const external = spec.type === 'ExternalName';
      (spec.ports ?? []).forEach((p, i) => {
        const proto = protocolOfPort(p);
        const field = p.appProtocol ? ['spec', 'ports', i, 'appProtocol'] : p.name ? ['spec', 'ports', i, 'name'] : ['spec', 'ports', i];
        if (external && (proto === 'UNSPECIFIED' || proto === 'TCP')) {
          const effect = proto === 'TCP'
            ? `it is opaque TCP to ${spec.externalName ?? 'the external name'}: Trellis reaches it by name only, and a proxy that captures by address (Istio) forwards every connection to port ${p.port} there`
            : `without a protocol Trellis carries it as HTTP/1.1 (TLS and raw TCP clients fail), while Istio treats it as TCP and forwards every connection to port ${p.port} to the external name`;
          ctx.report('ExternalNameServiceTypeInvalidPortName', { port: p.port, service, naming: p.name ? `is named "${p.name}"` : 'has no name', effect }, { resource: r, field });
          return;
        }
        if (proto === 'UNSPECIFIED') {
          ctx.report('PortNameIsNotUnderNamingConvention', { port: p.port, service, naming: naming(p), assumed: ASSUMED }, { resource: r, field });
        }
      });
    }
  },
};
