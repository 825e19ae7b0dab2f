/**
 * Traffic mirroring (VirtualService `mirror` / `mirrors`), as Envoy shadows
 * requests: for each shadow policy, in its percentage of requests, a copy of
 * the request as it goes upstream (method, rewritten path, edited headers,
 * body) is sent to one host of the mirror cluster, picked by that cluster's
 * load balancer over the same pooled connections ordinary traffic uses. The
 * copy's Host gets a `-shadow` suffix (before the port: `api-shadow:8080`),
 * so the shadow service can tell copies from real calls. Fire and forget:
 * the copy's response is read to its end and dropped, nothing waits for it,
 * and its failure or slowness never reaches the caller.
 *
 * Bodies: a request without a body, or whose body the proxy read into memory
 * (up to request-body.ts `REPLAY_LIMIT`, with a content-length), is copied;
 * a streamed body (chunked, larger, or behind `expect: 100-continue`) is not
 * read twice, so such a request is not mirrored. A copy is bounded by the
 * route's timeout, or MIRROR_TIMEOUT_MS when the route has none, so a shadow
 * that never answers cannot hold connections for ever.
 *
 * Compiled once per snapshot; a route without mirrors has no mirror function.
 */
import type { Dispatcher } from 'undici';
import type { MirrorPolicy } from '../protocol/snapshot.js';
import type { ClusterTarget, HashInput } from './cluster-target.js';
import type { Headers } from './headers.js';
import type { RequestBody } from './request-body.js';
import type { Upstream } from './upstream-pools.js';

/** The bound on a copy when its route sets no timeout. */
export const MIRROR_TIMEOUT_MS = 60_000;

/** What is copied: the request as the forwarder sends it upstream. */
export interface MirroredRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
}

/**
 * Sends the copies for one request; `source` gives a consistent-hash key
 * when a mirror cluster balances by one. A streamed `body` is not mirrored.
 */
export type Mirror = (source: HashInput, req: MirroredRequest, body: RequestBody) => void;

interface Shadow {
  readonly target: ClusterTarget;
  readonly percentage: number;
}

/** Envoy's shadow host: `-shadow` after the host name, before any port. */
export function shadowHost(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : 0;
  const colon = host.indexOf(':', end);
  return colon < 0 ? `${host}-shadow` : `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
}

/**
 * The mirror function of a route, or undefined when it mirrors nothing: no
 * policy, only 0 % policies, or only clusters the snapshot lacks (as Envoy
 * skips a shadow to an unknown cluster).
 */
export function compileMirror(policies: readonly MirrorPolicy[] | undefined, targets: ReadonlyMap<string, ClusterTarget>, routeTimeoutMs: number): Mirror | undefined {
  if (!policies?.length) return undefined;
  const shadows: Shadow[] = [];
  for (const p of policies) {
    const target = targets.get(p.cluster);
    if (target && p.percentage > 0) shadows.push({ target, percentage: p.percentage });
  }
  if (shadows.length === 0) return undefined;
  const timeoutMs = routeTimeoutMs > 0 ? routeTimeoutMs : MIRROR_TIMEOUT_MS;
  return (source, req, body) => {
    if (body !== null && !Buffer.isBuffer(body)) return;
    for (let i = 0; i < shadows.length; i++) {
      const s = shadows[i]!;
      if (s.percentage < 100 && Math.random() * 100 >= s.percentage) continue;
      const host = s.target.pick(s.target.hashKey?.(source), []);
      if (!host) continue;
      const headers: Headers = { ...req.headers };
      const h = headers.host;
      if (typeof h === 'string' && h.length > 0) headers.host = shadowHost(h);
      new ShadowRequest(host.upstream, timeoutMs).send(req.method, req.path, headers, body);
    }
  };
}

/** One copy in flight: counted on its upstream while it lasts, its response drained, every outcome ignored. */
class ShadowRequest implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #done = false;

  constructor(readonly upstream: Upstream, readonly timeoutMs: number) {}

  send(method: string, path: string, headers: Headers, body: Buffer | null): void {
    const up = this.upstream;
    up.active++;
    this.#timer = setTimeout(this.#onTimeout, this.timeoutMs);
    this.#timer.unref();
    try {
      up.dispatcher.dispatch({ origin: up.origin, method, path, headers, body, headersTimeout: 0, bodyTimeout: 0 }, this);
    } catch {
      this.#end();
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#done) controller.abort(new Error('mirror abandoned'));
  }

  onResponseStart(): void { /* the status does not matter */ }

  onResponseData(): void { /* dropped */ }

  onResponseEnd(): void {
    this.#end();
  }

  onResponseError(): void {
    this.#end();
  }

  #onTimeout = (): void => {
    this.#timer = undefined;
    if (this.#done) return;
    this.#end();
    this.#controller?.abort(new Error(`mirror timed out after ${this.timeoutMs} ms`));
  };

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = undefined; }
    this.upstream.active--;
  }
}
