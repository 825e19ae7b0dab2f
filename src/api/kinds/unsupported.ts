/**
 * Kinds Trellis rejects by name (TRL1003) rather than ignore, each with what
 * to use instead. Matched on group and kind, in every version.
 */
import type { UnsupportedKindDef } from '../kind.js';

const GATEWAY_API = 'gateway.networking.k8s.io';
const gatewayApi = (kind: string, instead: string): UnsupportedKindDef => ({
  kind,
  group: GATEWAY_API,
  instead: `the Kubernetes Gateway API is out of scope; ${instead}`,
});

export const unsupportedKinds: readonly UnsupportedKindDef[] = [
  {
    kind: 'EnvoyFilter', group: 'networking.istio.io',
    instead: 'Trellis has no Envoy to patch; express the behaviour with VirtualService or DestinationRule, or write a Trellis filter in TypeScript',
  },
  {
    kind: 'WasmPlugin', group: 'extensions.istio.io',
    instead: 'Trellis runs no Wasm modules; write the extension as a Trellis filter in TypeScript',
  },
  {
    kind: 'ExtensionFilter', group: 'extensions.istio.io',
    instead: 'Trellis runs no Wasm or Lua filters; write the extension as a Trellis filter in TypeScript',
  },
  {
    kind: 'ProxyConfig', group: 'networking.istio.io',
    instead: 'set proxy settings mesh-wide in MeshConfig.defaultConfig (concurrency, drainDuration, terminationDrainDuration, …)',
  },
  {
    kind: 'WorkloadGroup', group: 'networking.istio.io',
    instead: 'declare each instance as a WorkloadEntry, or list the service and its replicas in the App manifest',
  },
  gatewayApi('Gateway', 'use a networking.istio.io/v1 Gateway'),
  gatewayApi('GatewayClass', 'use a networking.istio.io/v1 Gateway with a selector'),
  gatewayApi('HTTPRoute', 'use a networking.istio.io/v1 VirtualService with http routes'),
  gatewayApi('GRPCRoute', 'use a networking.istio.io/v1 VirtualService with http routes'),
  gatewayApi('TCPRoute', 'use a networking.istio.io/v1 VirtualService with tcp routes'),
  gatewayApi('TLSRoute', 'use a networking.istio.io/v1 VirtualService with tls routes'),
  gatewayApi('UDPRoute', 'Trellis does not route UDP'),
  gatewayApi('ReferenceGrant', 'Istio kinds refer across namespaces with exportTo'),
  gatewayApi('BackendTLSPolicy', 'use a networking.istio.io/v1 DestinationRule with trafficPolicy.tls'),
];
