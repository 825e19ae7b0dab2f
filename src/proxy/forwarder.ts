/**
 * Sends a request upstream and streams the response back: attempts through
 * pooled keep-alive connections (undici's dispatch-handler API, which the
 * proxy's own pools offer too, so that bodies flow chunk by chunk with
 * backpressure both ways), retries per the route's
 * policy on another host when there is one, the route timeout over all
 * attempts and the per-try timeout over each.
 *
 * An attempt whose response is retriable is read to its end and dropped (so
 * its connection stays reusable); the last attempt's response goes to the
 * caller as it is, flagged URX when it was retriable and retries ran out.
 *
 * The cluster's circuit breaker (circuit-breaker.ts), when it has a finite
 * threshold: an attempt over `maxRequests` or `maxPendingRequests` is
 * answered 503 UO at once (never retried); a retry over `maxRetries` or
 * the retry budget is not made, and the response or failure at hand goes
 * out flagged UO. Each attempt counts as pending from dispatch until it has
 * a connection (undici's onRequestStart), then as a request until it ends;
 * a retry holds its slot from the decision until the next decision or the
 * end. With no finite threshold none of this runs.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import type { ResponseFlag } from '../protocol/request-record.js';
import type { CircuitBreaker, OverflowLimit } from './circuit-breaker.js';
import { ABORT, PROXY_ERRORS, classifyUpstreamError, failureKind, type UpstreamFailure } from './errors.js';
import type { Exchange } from './exchange.js';
import { endGrpcResponse, GRPC_STATUS } from './grpc.js';
import { TRAILERS_ONLY } from './h2-upstream.js';
import { downstreamResponseHeaders, type HeaderEdit, type Headers } from './headers.js';
import { isParsedFields } from './h1-response-parser.js';
import { replyFor, sendLocalReply, type LocalReply } from './local-reply.js';
import type { Host, HostSet } from './hosts.js';
import { mayReplay, replayOf, type RequestBody } from './request-body.js';
import { backoffMs, retriableFailure, retriableResponse, type CompiledRetry } from './retry-policy.js';

type IncomingHttpHeaders = Record<string, string | string[] | undefined>;

export interface ForwardSpec {
  readonly hosts: HostSet;
  readonly hashKey: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body: RequestBody;
  readonly retry: CompiledRetry;
  /** Over all attempts, until the response ends; 0: none. */
  readonly timeoutMs: number;
  readonly responseEdit: HeaderEdit | undefined;
  /** The cluster's circuit breaker; absent (or not tracking): no limits (the local app, passthrough). */
  readonly breaker?: CircuitBreaker | undefined;
}

/** Why a retriable outcome was not retried: retries ran out (URX), a breaker refused (UO), or no retry applies. */
type RetryDecision = 'retry' | 'exhausted' | 'overflow' | 'no';

const UO: ResponseFlag = PROXY_ERRORS.OVERFLOW.flag;
const URX: readonly ResponseFlag[] = ['URX'];
const UO_ONLY: readonly ResponseFlag[] = [UO];

export function forward(ex: Exchange, spec: ForwardSpec): void {
  if (ex.closed) return;
  new Forwarding(ex, spec).next();
}

class Forwarding {
  readonly tried: Host[] = [];
  /** Whether the route retries at all and the body may be sent again. */
  readonly retries: boolean;
  /** The cluster's breaker when it counts; undefined keeps the fast path. */
  readonly breaker: CircuitBreaker | undefined;
  retriesLeft: number;
  current: Attempt | undefined;
  done = false;
  /** The body of the next attempt (a retry sends a streamed body's copy). */
  body: RequestBody;
  #timer: NodeJS.Timeout | undefined;
  #backoff: NodeJS.Timeout | undefined;
  /** A retry slot of the breaker is held. */
  #slot = false;

  constructor(readonly ex: Exchange, readonly spec: ForwardSpec) {
    this.body = spec.body;
    this.retries = spec.retry.maxRetries > 0 && mayReplay(spec.body);
    this.retriesLeft = this.retries ? spec.retry.maxRetries : 0;
    this.breaker = spec.breaker?.tracking ? spec.breaker : undefined;
    if (spec.timeoutMs > 0) this.#timer = setTimeout(() => this.#onTimeout(), spec.timeoutMs);
    ex.cancel = this.#cancel;
  }

  next(): void {
    this.#backoff = undefined;
    if (this.done) return;
    const host = this.spec.hosts.pick(this.spec.hashKey, this.tried, this.spec.retry.remoteLocalities);
    if (!host) { this.reply(replyFor(PROXY_ERRORS.NO_HEALTHY_UPSTREAM)); return; }
    this.tried.push(host);
    const ex = this.ex;
    ex.attempts = this.tried.length;
    ex.upstream = host.address;
    ex.destinationIdentity = host.identity || undefined;
    if (this.tried.length > 1) ex.host.metrics.retried();
    this.current = new Attempt(this, host, this.body);
    this.current.send();
  }

  /**
   * After an outcome the policy retries: takes a retry (and a breaker slot)
   * when one is left and the body can be sent again, else says why not.
   */
  decide(): RetryDecision {
    if (this.done || this.ex.closed || !this.retries) return 'no';
    this.#releaseSlot();
    if (this.retriesLeft <= 0) return 'exhausted';
    const body = replayOf(this.spec.body);
    if (body === undefined) return 'no';
    const b = this.breaker;
    if (b) {
      if (!b.takeRetry()) { this.ex.host.metrics.overflowed(b.cluster, 'retries'); return 'overflow'; }
      this.#slot = true;
    }
    this.body = body;
    return 'retry';
  }

  retry(): void {
    if (this.done) return;
    this.retriesLeft--;
    this.current = undefined;
    this.#backoff = setTimeout(() => this.next(), backoffMs(this.spec.retry, this.spec.retry.maxRetries - this.retriesLeft));
  }

  /** A breaker refused the attempt (it never left the proxy): 503 UO, never retried. */
  overflow(limit: OverflowLimit): void {
    const b = this.breaker!;
    this.ex.host.metrics.overflowed(b.cluster, limit);
    this.reply(replyFor(PROXY_ERRORS.OVERFLOW, b.describe(limit)));
  }

  /** Response headers that go downstream, with the flag of a retry not made. False when they could not be written (the attempt is dropped). */
  commit(status: number, upstreamHeaders: IncomingHttpHeaders, decision: RetryDecision): boolean {
    const ex = this.ex;
    if (ex.closed) return false;
    // A trailers-only upstream response leads with its content-type; its other fields follow as trailers.
    const lead = (upstreamHeaders as { [TRAILERS_ONLY]?: IncomingHttpHeaders })[TRAILERS_ONLY];
    // The proxy's own HTTP/1.1 parser hands over fields of its own, hop-by-hop ones left out already: no copy needed.
    const h = lead === undefined && isParsedFields(upstreamHeaders) ? upstreamHeaders as Headers : downstreamResponseHeaders(lead ?? upstreamHeaders);
    this.spec.responseEdit?.(h);
    if (decision === 'exhausted') ex.flag('URX');
    else if (decision === 'overflow') ex.flag(UO);
    const gs = upstreamHeaders['grpc-status'];
    if (typeof gs === 'string') ex.grpcStatus = gs;
    ex.responseFields = h;
    ex.beforeHead();
    try {
      ex.res.writeHead(status, h);
    } catch (err) {
      this.reply(replyFor(PROXY_ERRORS.UPSTREAM_RESET, `the upstream response cannot be relayed (${(err as Error).message})`));
      return false;
    }
    return true;
  }

  /** An attempt got no response; `beforeRequest`: none of the request was written. */
  failed(f: UpstreamFailure, err: unknown, beforeRequest: boolean): void {
    if (this.done) return;
    const d = retriableFailure(this.spec.retry, f, beforeRequest) ? this.decide() : 'no';
    if (d === 'retry') { this.retry(); return; }
    const detail = f === 'per-try-timeout' ? `no response within the per-try timeout of ${this.spec.retry.perTryTimeoutMs} ms`
      : `${f} (${(err as Error)?.message ?? String(err)})`;
    this.reply(replyFor(failureKind(f), `${detail}${this.tried.length > 1 ? ` after ${this.tried.length} attempts` : ''}`), d === 'exhausted' ? URX : d === 'overflow' ? UO_ONLY : undefined);
  }

  /** The upstream went away after the response started: nothing to do but cut the downstream too. */
  brokeMidResponse(): void {
    this.finish();
    this.ex.flag('UC');
    this.ex.destroyDownstream();
  }

  reply(r: LocalReply, flags?: readonly ResponseFlag[]): void {
    this.finish();
    sendLocalReply(this.ex, r, flags);
  }

  finish(): void {
    this.done = true;
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (this.#backoff) { clearTimeout(this.#backoff); this.#backoff = undefined; }
    this.#releaseSlot();
    this.ex.cancel = undefined;
  }

  #releaseSlot(): void {
    if (this.#slot) { this.#slot = false; this.breaker!.releaseRetry(); }
  }

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.done) return;
    const a = this.current;
    a?.abandon(ABORT.routeTimeout);
    if (a?.committed && this.ex.grpc) {
      // A gRPC response under way ends with DEADLINE_EXCEEDED in its trailers, as a gRPC server would end it.
      this.finish();
      this.ex.flag('UT');
      endGrpcResponse(this.ex, GRPC_STATUS.DEADLINE_EXCEEDED, `the deadline of ${this.spec.timeoutMs} ms passed`);
      return;
    }
    if (a?.committed) {
      this.finish();
      this.ex.flag('UT');
      this.ex.destroyDownstream();
      return;
    }
    this.reply(replyFor(PROXY_ERRORS.UPSTREAM_TIMEOUT, `no response within the route timeout of ${this.spec.timeoutMs} ms`));
  }

  #cancel = (): void => {
    this.finish();
    this.current?.abandon(ABORT.downstreamGone);
  };
}

/** Where an attempt is in the counts: not yet sent, waiting for a busy host's connection, in flight, done. */
const enum Stage { Idle, Pending, InFlight, Released }

/** One try on one host; its dispatcher (h1-pool.ts, h2-upstream.ts, undici for passthrough) calls it back as the response arrives. */
class Attempt implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | undefined;
  abandoned: Error | undefined;
  committed = false;
  /** A retriable response being read to its end and dropped. */
  discard = false;
  #stage = Stage.Idle;
  /** The dispatcher gave the attempt a connection (onRequestStart): its request is being written. */
  #onConnection = false;
  #perTry: NodeJS.Timeout | undefined;
  #sentAt = 0;

  constructor(readonly f: Forwarding, readonly host: Host, readonly body: RequestBody) {}

  send(): void {
    const { spec, breaker } = this.f;
    const up = this.host.upstream;
    if (breaker) {
      // Every connection the host may have is busy (HTTP/1.1, one request each): the attempt waits, pending.
      if (!up.http2 && up.active >= up.connectionLimit) {
        if (breaker.pending >= breaker.maxPending) { this.#stage = Stage.Released; this.f.overflow('pending'); return; }
        breaker.pending++;
        this.#stage = Stage.Pending;
      } else {
        if (breaker.requests >= breaker.maxRequests) { this.#stage = Stage.Released; this.f.overflow('requests'); return; }
        breaker.requests++;
        this.#stage = Stage.InFlight;
      }
    } else {
      this.#stage = Stage.InFlight;
    }
    up.active++;
    if (spec.retry.perTryTimeoutMs > 0) this.#perTry = setTimeout(() => this.#onPerTry(), spec.retry.perTryTimeoutMs);
    this.#sentAt = performance.now();
    try {
      up.dispatcher.dispatch({
        origin: up.origin, method: spec.method, path: spec.path, headers: spec.headers, body: this.body,
        headersTimeout: 0, bodyTimeout: 0, reset: up.closeEach,
      }, this);
    } catch (err) {
      this.onResponseError(undefined, err as Error);
    }
  }

  abandon(reason: Error): void {
    if (this.abandoned) return;
    this.abandoned = reason;
    this.#clearPerTry();
    const c = this.controller;
    // Still queued in the pool: it is aborted when it gets a connection; the counts let go now.
    if (!c) this.#release();
    else c.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.#onConnection = true;
    if (this.abandoned) { controller.abort(this.abandoned); return; }
    const b = this.f.breaker;
    if (!b || this.#stage !== Stage.Pending) return;
    b.pending--;
    if (b.requests >= b.maxRequests) {
      // It waited for a connection; meanwhile the cluster's in-flight limit filled up.
      this.#stage = Stage.Idle;
      this.#release();
      this.f.overflow('requests');
      this.abandon(ABORT.overflow);
      return;
    }
    b.requests++;
    this.#stage = Stage.InFlight;
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (this.abandoned || status < 200) return;
    this.#clearPerTry();
    this.host.observe?.({ kind: 'response', status });
    const f = this.f;
    f.ex.upstreamMs = performance.now() - this.#sentAt;
    const d = retriableResponse(f.spec.retry, status, headers['grpc-status']) ? f.decide() : 'no';
    if (d === 'retry') { this.discard = true; return; }
    this.committed = true;
    if (!f.commit(status, headers, d)) this.abandon(ABORT.dropped);
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.abandoned || this.discard) return;
    const ex = this.f.ex;
    ex.bytesSent += chunk.length;
    if (!ex.res.write(chunk)) {
      c.pause();
      ex.res.once('drain', () => c.resume());
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.#release();
    if (this.abandoned) return;
    if (this.discard) { this.f.retry(); return; }
    const f = this.f;
    f.finish();
    const res = f.ex.res;
    const gs = trailers['grpc-status'];
    if (typeof gs === 'string') f.ex.grpcStatus = gs;
    for (const _ in trailers) {
      try { res.addTrailers(trailers as Record<string, string>); } catch { /* trailers need chunked encoding downstream */ }
      break;
    }
    res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    const beforeRequest = !this.#onConnection;
    this.#release();
    this.#clearPerTry();
    if (this.abandoned) return;
    this.abandoned = err;
    if (this.committed) { this.f.brokeMidResponse(); return; }
    const failure = classifyUpstreamError(err);
    this.host.observe?.({ kind: 'failure', failure });
    this.f.failed(failure, err, beforeRequest);
  }

  #onPerTry(): void {
    this.#perTry = undefined;
    if (this.abandoned || this.committed) return;
    this.abandon(ABORT.perTryTimeout);
    this.host.observe?.({ kind: 'failure', failure: 'per-try-timeout' });
    this.f.failed('per-try-timeout', ABORT.perTryTimeout, false);
  }

  #clearPerTry(): void {
    if (this.#perTry) { clearTimeout(this.#perTry); this.#perTry = undefined; }
  }

  /** Lets go of the host's and the breaker's counts (once). */
  #release(): void {
    const stage = this.#stage;
    if (stage === Stage.Released) return;
    this.#stage = Stage.Released;
    this.host.upstream.active--;
    const b = this.f.breaker;
    if (b) {
      if (stage === Stage.Pending) b.pending--;
      else if (stage === Stage.InFlight) b.requests--;
    }
  }
}
