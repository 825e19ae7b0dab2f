/**
 * `Expect: 100-continue`: the client waits for `100 Continue` before it
 * sends the body. Node's servers answer 100 at once unless they have a
 * 'checkContinue' listener; the listeners have one, which hands the request
 * to the same request handler as any other. The 100 is sent only when the
 * body is about to be read for forwarding (route-executor.ts): after
 * routing, the inbound or gateway chain (authorization will be a stage
 * there), the route's fault, the cluster and endpoint checks, and the body
 * checks of request-body.ts. A request refused before that gets its final
 * status without a 100, its body unread; Node then closes an HTTP/1.1
 * connection, whose framing it can no longer trust.
 *
 * Why the proxy answers 100 itself instead of relaying the upstream's: the
 * HTTP/1.1 upstream pools (h1-pool.ts, as undici's before them) refuse an
 * `expect` request header and skip an interim 100. So `expect` is
 * dropped upstream (headers.ts) and each proxy decides for its own hop: a
 * caller's sidecar answers once its routing let the call through, and the
 * callee's inbound listener, which then sees a request without `expect`,
 * applies its chain as the body arrives. A caller that sends `expect` to an
 * inbound listener or a gateway directly gets the 100 after their chains.
 */
import type { Server } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Exchange } from './exchange.js';

/** Node's own test of the Expect header (lib/_http_server.js). */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/** Hands `Expect: 100-continue` requests of a listener's servers to their request handler, the 100 held back. */
export function acceptExpectContinue(server: { readonly http1: Server; readonly http2: Http2Server }): void {
  const { http1, http2 } = server;
  http1.on('checkContinue', (req, res) => http1.emit('request', req, res));
  http2.on('checkContinue', (req, res) => http2.emit('request', req, res));
}

/** Sends the held `100 Continue` if the request asked for one; call it just before the body is read. */
export function continueIfExpected(ex: Exchange): void {
  const expect = ex.req.headers.expect;
  // HTTP/1.0 has no 100 Continue (Node answers those requests as plain ones).
  if (expect === undefined || ex.req.httpVersion === '1.0' || ex.res.headersSent || !CONTINUE.test(expect)) return;
  ex.res.writeContinue();
}
