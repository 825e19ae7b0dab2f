/**
 * The control-plane stream: one long-lived bidirectional gRPC stream per
 * proxy (`/trellis.v1.Mesh/Stream`), messages as JSON. Both sides import this
 * file; fields are added, never renamed or repurposed, so an old proxy keeps
 * working with a newer control plane.
 *
 * The exchange (docs/running-mesh.md has the sequence):
 *   proxy → hello (which instance it serves, where it listens)
 *   cp    → snapshot (version, nonce) | refused (registration denied, stream ends)
 *   proxy → ack (version, nonce) | nack (version, nonce, reason)
 *   proxy → health (whenever the local app's health changes)
 *   cp    → snapshot … (only when the proxy's snapshot changed)
 *   proxy → leaving (shutting down: take me out of rotation)
 *   cp    → drained (every caller ACKed a snapshot without the instance, or the grace passed)
 */
import type { ChannelOptions, ServiceDefinition } from '@grpc/grpc-js';
import type { CertifyRequest, CertifyResponse } from './certify.js';
import type { Snapshot } from './snapshot.js';

export const STREAM_PROTOCOL = 'trellis.v1';

/** Where the proxy listens, as `host:port`. The control plane turns `inbound` into the instance's endpoint address. */
export interface ProxyListeners {
  readonly inbound: string;
  readonly outbound?: string;
  readonly admin?: string;
}

/**
 * The first message. It names the instance the proxy serves; everything the
 * instance *is* (service, labels, service account, locality) comes from the
 * configuration. `claims`, when present, must agree with the configuration
 * or the registration is refused: a proxy cannot join a label group by
 * saying so.
 */
export interface HelloMessage {
  readonly type: 'hello';
  /** `workload.namespace#replica` (`accounts-v1.bank#0`), or `workload.namespace` for a single instance. */
  readonly instance: string;
  readonly proxyVersion: string;
  readonly listeners: ProxyListeners;
  readonly claims?: { readonly labels?: Readonly<Record<string, string>>; readonly serviceAccount?: string; readonly identity?: string };
  /** The version of the snapshot the proxy already serves (after a reconnect), if any. */
  readonly servingVersion?: string;
  /**
   * The local app's health as the proxy's first check saw it, when the proxy
   * checks it. `false`: the instance does not enter rotation until a `health`
   * message says healthy. Absent (no check, or an older proxy): in rotation.
   */
  readonly healthy?: boolean;
  /** The proxy is already leaving (it reconnected while shutting down): keep it out of rotation. */
  readonly leaving?: boolean;
}

export interface AckMessage {
  readonly type: 'ack';
  readonly version: string;
  readonly nonce: string;
}

export interface NackMessage {
  readonly type: 'nack';
  readonly version: string;
  readonly nonce: string;
  /** Why the proxy could not apply the snapshot; shown by `trellis status` and the admin API. */
  readonly reason: string;
}

/** The local app's health, as the proxy's health check sees it. Unhealthy instances leave rotation. */
export interface HealthMessage {
  readonly type: 'health';
  readonly healthy: boolean;
  readonly detail?: string;
}

/**
 * The proxy is shutting down (SIGTERM): the control plane takes the instance
 * out of rotation, pushes, and answers `drained` once every connected proxy
 * has ACKed a snapshot without it (or after its leave grace). The proxy keeps
 * serving meanwhile, then drains its requests and exits.
 */
export interface LeavingMessage {
  readonly type: 'leaving';
  readonly detail?: string;
}

export type ProxyMessage = HelloMessage | AckMessage | NackMessage | HealthMessage | LeavingMessage;

export interface SnapshotMessage {
  readonly type: 'snapshot';
  readonly version: string;
  /** Unique per push; the ack or nack names it. */
  readonly nonce: string;
  readonly snapshot: Snapshot;
}

/** Registration denied (unknown instance, claims that disagree with the configuration). The control plane ends the stream after it. */
export interface RefusedMessage {
  readonly type: 'refused';
  /** A catalogue code, e.g. TRL1201. */
  readonly code: string;
  readonly reason: string;
}

/** The answer to `leaving`: no caller will pick the instance any more (`acked`), or the control plane stopped waiting (`timeout`). */
export interface DrainedMessage {
  readonly type: 'drained';
  readonly why: 'acked' | 'timeout';
  /** How long the control plane waited for the callers' ACKs. */
  readonly waitedMs: number;
  /** The proxies that had not ACKed when the grace passed (`timeout` only). */
  readonly pending?: readonly string[];
}

export type ControlMessage = SnapshotMessage | RefusedMessage | DrainedMessage;

const json = <T>() => ({
  serialize: (m: T): Buffer => Buffer.from(JSON.stringify(m)),
  deserialize: (b: Buffer): T => JSON.parse(b.toString('utf8')) as T,
});
const proxyCodec = json<ProxyMessage>();
const controlCodec = json<ControlMessage>();
const certifyRequestCodec = json<CertifyRequest>();
const certifyResponseCodec = json<CertifyResponse>();

/** The gRPC service definition, for `server.addService` and `makeGenericClientConstructor`. */
export const meshService = {
  stream: {
    path: '/trellis.v1.Mesh/Stream',
    requestStream: true,
    responseStream: true,
    requestSerialize: proxyCodec.serialize,
    requestDeserialize: proxyCodec.deserialize,
    responseSerialize: controlCodec.serialize,
    responseDeserialize: controlCodec.deserialize,
  },
  /** Certificate signing (src/protocol/certify.ts). */
  certify: {
    path: '/trellis.v1.Mesh/Certify',
    requestStream: false,
    responseStream: false,
    requestSerialize: certifyRequestCodec.serialize,
    requestDeserialize: certifyRequestCodec.deserialize,
    responseSerialize: certifyResponseCodec.serialize,
    responseDeserialize: certifyResponseCodec.deserialize,
  },
} satisfies ServiceDefinition;

/** Channel options both sides use: large snapshots, and keepalive pings that detect a frozen peer within seconds. */
export const STREAM_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': 256 * 1024 * 1024,
  'grpc.max_send_message_length': 256 * 1024 * 1024,
  'grpc.keepalive_time_ms': 2000,
  'grpc.keepalive_timeout_ms': 2000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_time_between_pings_ms': 1000,
  'grpc.http2.max_pings_without_data': 0,
  // The control plane is dialled by IP; TLS checks its SPIFFE ID, not a host name (and an IP is no SNI).
  'grpc.ssl_target_name_override': 'control-plane.trellis.invalid',
};
