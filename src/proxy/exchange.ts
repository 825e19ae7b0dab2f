/**
 * One request passing through a listener: the downstream request and
 * response, the snapshot it started on (kept to the end, so a swap never
 * changes a request mid-way), and the facts its record reports. When the
 * response closes, the exchange counts itself in the metrics, publishes its
 * record (only when someone subscribes) and lets go of its snapshot.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { RequestRecord, ResponseFlag } from '../protocol/request-record.js';
import type { AppliedSnapshot } from './applied-snapshot.js';
import type { StageContext } from './filter-chain.js';
import type { Headers } from './headers.js';
import type { ProxyMetrics } from './metrics.js';
import { publishRecord, recordsWanted } from './request-record.js';

export type Direction = RequestRecord['direction'];

/** What every exchange of one data plane shares. */
export interface ExchangeHost {
  readonly metrics: ProxyMetrics;
  /** Requests not yet ended, for close(grace). */
  inflight: number;
  /** While closing, responses say `connection: close`. */
  closing: boolean;
  /** Called when an exchange ends (close() waits on it). */
  onIdle?: (() => void) | undefined;
}

/** What the listeners read from their data plane: the state in force, the shared exchange host, the passthrough agent. */
export interface ListenerContext {
  /** The snapshot state in force now; a request keeps the one it started with. */
  current(): AppliedSnapshot | undefined;
  readonly host: ExchangeHost;
  /** The dispatcher for PASSTHROUGH traffic to hosts outside the mesh. */
  passthrough(): Dispatcher;
}

const EMPTY_HEADERS: Headers = Object.freeze({}) as Headers;

export class Exchange implements StageContext {
  readonly startTime = Date.now();
  readonly t0 = performance.now();
  readonly method: string;
  readonly remoteAddress: string | undefined;
  authority = '';
  path: string;
  requestId = '';
  /** Upstream request headers, once built. */
  headers: Headers = EMPTY_HEADERS;
  flags: ResponseFlag[] | undefined;
  virtualHost: string | undefined;
  route: string | undefined;
  cluster: string | undefined;
  upstream: string | undefined;
  upstreamMs: number | undefined;
  attempts: number | undefined;
  bytesReceived = 0;
  bytesSent = 0;
  sourceIdentity: string | undefined;
  destinationIdentity: string | undefined;
  /** Set by whatever waits on the upstream; called once if the downstream goes away first. */
  cancel: (() => void) | undefined;
  closed = false;
  #cutByUs = false;

  constructor(
    readonly direction: Direction,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly state: AppliedSnapshot | undefined,
    readonly host: ExchangeHost,
  ) {
    this.method = req.method ?? 'GET';
    this.path = req.url ?? '/';
    this.remoteAddress = req.socket.remoteAddress;
    host.inflight++;
    state?.enter();
    if (host.closing) res.shouldKeepAlive = false;
    res.once('close', this.#onClose);
  }

  flag(f: ResponseFlag): void {
    if (!this.flags) this.flags = [f];
    else if (!this.flags.includes(f)) this.flags.push(f);
  }

  /** Cuts the downstream connection (a response that cannot be completed); not counted as DC. */
  destroyDownstream(): void {
    this.#cutByUs = true;
    this.res.destroy();
  }

  get durationMs(): number {
    return performance.now() - this.t0;
  }

  #onClose = (): void => {
    this.closed = true;
    if (!this.res.writableFinished && !this.#cutByUs) {
      this.flag('DC');
      const c = this.cancel;
      this.cancel = undefined;
      c?.();
    }
    const status = this.res.headersSent ? this.res.statusCode : 0;
    this.host.metrics.requestEnded(this.direction, status, this.flags);
    if (recordsWanted()) publishRecord(this, status);
    this.state?.leave();
    this.host.inflight--;
    if (this.host.inflight === 0) this.host.onIdle?.();
  };
}
