/**
 * Sends a request upstream and streams the response back: attempts through
 * pooled keep-alive connections (undici's dispatch API, so that bodies flow
 * chunk by chunk with backpressure both ways), retries per the route's
 * policy on another host when there is one, the route timeout over all
 * attempts and the per-try timeout over each.
 *
 * An attempt whose response is retriable is read to its end and dropped (so
 * its connection stays reusable); the last attempt's response goes to the
 * caller as it is, flagged URX when it was retriable and retries ran out.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { ABORT, PROXY_ERRORS, classifyUpstreamError, failureKind, type UpstreamFailure } from './errors.js';
import type { Exchange } from './exchange.js';
import { endGrpcResponse, GRPC_STATUS } from './grpc.js';
import { TRAILERS_ONLY } from './h2-upstream.js';
import { downstreamResponseHeaders, type HeaderEdit, type Headers } from './headers.js';
import { replyFor, sendLocalReply, type LocalReply } from './local-reply.js';
import type { Host, HostSet } from './hosts.js';
import type { RequestBody } from './request-body.js';
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
}

export function forward(ex: Exchange, spec: ForwardSpec): void {
  if (ex.closed) return;
  new Forwarding(ex, spec).next();
}

class Forwarding {
  readonly tried: Host[] = [];
  readonly replayable: boolean;
  retriesLeft: number;
  current: Attempt | undefined;
  done = false;
  #timer: NodeJS.Timeout | undefined;
  #backoff: NodeJS.Timeout | undefined;

  constructor(readonly ex: Exchange, readonly spec: ForwardSpec) {
    this.replayable = spec.body === null || Buffer.isBuffer(spec.body);
    this.retriesLeft = this.replayable ? spec.retry.maxRetries : 0;
    if (spec.timeoutMs > 0) this.#timer = setTimeout(() => this.#onTimeout(), spec.timeoutMs);
    ex.cancel = this.#cancel;
  }

  next(): void {
    this.#backoff = undefined;
    if (this.done) return;
    const host = this.spec.hosts.pick(this.spec.hashKey, this.tried);
    if (!host) { this.reply(replyFor(PROXY_ERRORS.NO_HEALTHY_UPSTREAM)); return; }
    this.tried.push(host);
    const ex = this.ex;
    ex.attempts = this.tried.length;
    ex.upstream = host.address;
    ex.destinationIdentity = host.identity || undefined;
    if (this.tried.length > 1) ex.host.metrics.retried();
    this.current = new Attempt(this, host);
    this.current.send();
  }

  canRetry(): boolean {
    return this.retriesLeft > 0 && !this.done && !this.ex.closed;
  }

  retry(): void {
    if (this.done) return;
    this.retriesLeft--;
    this.current = undefined;
    this.#backoff = setTimeout(() => this.next(), backoffMs(this.spec.retry, this.spec.retry.maxRetries - this.retriesLeft));
  }

  /** Response headers that go downstream. False when they could not be written (the attempt is dropped). */
  commit(status: number, upstreamHeaders: IncomingHttpHeaders): boolean {
    const ex = this.ex;
    if (ex.closed) return false;
    // A trailers-only upstream response leads with its content-type; its other fields follow as trailers.
    const lead = (upstreamHeaders as { [TRAILERS_ONLY]?: IncomingHttpHeaders })[TRAILERS_ONLY];
    const h = downstreamResponseHeaders(lead ?? upstreamHeaders);
    this.spec.responseEdit?.(h);
    if (this.spec.retry.maxRetries > 0 && this.replayable && retriableResponse(this.spec.retry, status, upstreamHeaders['grpc-status'])) ex.flag('URX');
    const gs = upstreamHeaders['grpc-status'];
    if (typeof gs === 'string') ex.grpcStatus = gs;
    ex.beforeHead();
    try {
      ex.res.writeHead(status, h);
    } catch (err) {
      this.reply(replyFor(PROXY_ERRORS.UPSTREAM_RESET, `the upstream response cannot be relayed (${(err as Error).message})`));
      return false;
    }
    return true;
  }

  /** An attempt got no response. */
  failed(f: UpstreamFailure, err: unknown): void {
    if (this.done) return;
    const retriable = retriableFailure(this.spec.retry, f);
    if (retriable && this.canRetry()) { this.retry(); return; }
    const exhausted = retriable && this.spec.retry.maxRetries > 0 && this.replayable;
    const detail = f === 'per-try-timeout' ? `no response within the per-try timeout of ${this.spec.retry.perTryTimeoutMs} ms`
      : `${f} (${(err as Error)?.message ?? String(err)})`;
    this.reply(replyFor(failureKind(f), `${detail}${this.tried.length > 1 ? ` after ${this.tried.length} attempts` : ''}`), exhausted ? ['URX'] : undefined);
  }

  /** The upstream went away after the response started: nothing to do but cut the downstream too. */
  brokeMidResponse(): void {
    this.finish();
    this.ex.flag('UC');
    this.ex.destroyDownstream();
  }

  reply(r: LocalReply, flags?: readonly ('URX')[]): void {
    this.finish();
    sendLocalReply(this.ex, r, flags);
  }

  finish(): void {
    this.done = true;
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (this.#backoff) { clearTimeout(this.#backoff); this.#backoff = undefined; }
    this.ex.cancel = undefined;
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

/** One try on one host; undici calls it back as the response arrives. */
class Attempt implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | undefined;
  abandoned: Error | undefined;
  committed = false;
  /** A retriable response being read to its end and dropped. */
  discard = false;
  #released = false;
  #perTry: NodeJS.Timeout | undefined;
  #sentAt = 0;

  constructor(readonly f: Forwarding, readonly host: Host) {}

  send(): void {
    const { spec } = this.f;
    const up = this.host.upstream;
    up.active++;
    if (spec.retry.perTryTimeoutMs > 0) this.#perTry = setTimeout(() => this.#onPerTry(), spec.retry.perTryTimeoutMs);
    this.#sentAt = performance.now();
    try {
      up.dispatcher.dispatch({
        origin: up.origin, method: spec.method, path: spec.path, headers: spec.headers, body: spec.body,
        headersTimeout: 0, bodyTimeout: 0,
      }, this);
    } catch (err) {
      this.onResponseError(undefined, err as Error);
    }
  }

  abandon(reason: Error): void {
    if (this.abandoned) return;
    this.abandoned = reason;
    this.#clearPerTry();
    this.controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abandoned) controller.abort(this.abandoned);
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (this.abandoned || status < 200) return;
    this.#clearPerTry();
    this.host.observe?.({ kind: 'response', status });
    const f = this.f;
    f.ex.upstreamMs = performance.now() - this.#sentAt;
    if (f.canRetry() && retriableResponse(f.spec.retry, status, headers['grpc-status'])) { this.discard = true; return; }
    this.committed = true;
    if (!f.commit(status, headers)) this.abandon(ABORT.dropped);
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
    this.#release();
    this.#clearPerTry();
    if (this.abandoned) return;
    this.abandoned = err;
    if (this.committed) { this.f.brokeMidResponse(); return; }
    const failure = classifyUpstreamError(err);
    this.host.observe?.({ kind: 'failure', failure });
    this.f.failed(failure, err);
  }

  #onPerTry(): void {
    this.#perTry = undefined;
    if (this.abandoned || this.committed) return;
    this.abandon(ABORT.perTryTimeout);
    this.host.observe?.({ kind: 'failure', failure: 'per-try-timeout' });
    this.f.failed('per-try-timeout', ABORT.perTryTimeout);
  }

  #clearPerTry(): void {
    if (this.#perTry) { clearTimeout(this.#perTry); this.#perTry = undefined; }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.host.upstream.active--;
  }
}
