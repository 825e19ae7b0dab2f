/** PLACEHOLDER: kinds Trellis rejects by name. */
import type { UnsupportedKindDef } from '../kind.js';

export const unsupportedKinds: readonly UnsupportedKindDef[] = [
  { kind: 'EnvoyFilter', group: 'networking.istio.io', instead: 'Trellis has no Envoy; express the behaviour with VirtualService, DestinationRule or a Trellis filter' },
];
