/**
 * The per-request record: when a request ends, the proxy publishes one on the
 * `node:diagnostics_channel` channel below (only when someone subscribes).
 * Metrics, access logs and traces are subscribers; nothing is computed for a
 * subscriber that is not there.
 */
export const REQUEST_CHANNEL = 'trellis:request';

/** Envoy-style response flags: NR no route, UH no healthy upstream, UF upstream connect failure, UC upstream connection terminated, DC downstream connection terminated, UT upstream timeout, URX retries exhausted, NC no cluster. */
export type ResponseFlag = 'NR' | 'UH' | 'UF' | 'UC' | 'DC' | 'UT' | 'URX' | 'NC' | 'UAEX' | 'RL' | 'FI' | 'DI';

export interface RequestRecord {
  readonly direction: 'inbound' | 'outbound' | 'gateway';
  /** Node id of the reporting proxy (`workload.namespace`). */
  readonly proxy: string;
  readonly requestId: string;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly protocol: string;
  readonly status: number;
  /** Empty when the request went well. */
  readonly responseFlags: readonly ResponseFlag[];
  readonly virtualHost?: string;
  readonly route?: string;
  readonly cluster?: string;
  /** `address:port` of the endpoint the request went to. */
  readonly upstream?: string;
  /** Epoch milliseconds when the request arrived. */
  readonly startTime: number;
  readonly durationMs: number;
  /** Time from sending upstream to the first response byte, when there was an upstream. */
  readonly upstreamMs?: number;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly sourceIdentity?: string;
  readonly destinationIdentity?: string;
  readonly attempts?: number;
  /** True when the request was gRPC (`content-type: application/grpc…`). */
  readonly grpc?: boolean;
  /** The `grpc-status` the response carried in its headers (trailers-only responses), when it did. */
  readonly grpcStatus?: string;
}
