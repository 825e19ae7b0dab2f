/**
 * The `sanitize` stage of traffic that enters the mesh (inbound from peers,
 * and the gateway from outside): headers that carry an identity are removed,
 * because only a proxy may set them (DESIGN.md §5). Later, the authn stage
 * sets x-forwarded-client-cert from the verified peer certificate.
 */
import type { Stage } from './filter-chain.js';
import { stripIdentityHeaders } from './headers.js';

export const SANITIZE_IDENTITY: Stage = {
  phase: 'sanitize',
  name: 'strip-identity-headers',
  run(ctx) {
    stripIdentityHeaders(ctx.headers);
    return undefined;
  },
};
