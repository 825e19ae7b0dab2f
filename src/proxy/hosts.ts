/**
 * The hosts requests go to, as the forwarder sees them: an upstream address
 * with its pool and the identity it should present, and a set that picks one
 * per attempt (a cluster's load balancer, the local app, a passthrough
 * origin).
 */
import type { UpstreamFailure } from './errors.js';
import type { Upstream } from './upstream-pools.js';

/**
 * What one attempt on a host came to, as outlier detection reads it: the
 * response status when headers arrived, or how it failed without one.
 */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'failure'; readonly failure: UpstreamFailure };

/** Where an attempt goes. */
export interface Host {
  readonly upstream: Upstream;
  /** `host:port`, for the record. */
  readonly address: string;
  /** The SPIFFE identity the host should present; '' when none. */
  readonly identity: string;
  /** Told how each attempt on this host ended (outlier detection); absent: nobody listens. */
  observe?(outcome: AttemptOutcome): void;
}

/** The hosts a request may go to (a cluster's balancer, the local app, a passthrough origin). */
export interface HostSet {
  /**
   * Another host than those in `tried` when there is one; undefined when there
   * is none at all. `remoteLocalities` (a retry's `retryRemoteLocalities`):
   * the retry may go to a locality no attempt used yet.
   */
  pick(hashKey: string | undefined, tried: readonly Host[], remoteLocalities?: boolean): Host | undefined;
}

/** A set of one host: the local app, a passthrough origin. Retries go to it again. */
export function singleHost(host: Host): HostSet {
  return { pick: () => host };
}
