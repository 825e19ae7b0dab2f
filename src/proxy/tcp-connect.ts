/**
 * Opens an opaque TCP connection for a TCP route (outbound): a destination
 * by the route's weights, an endpoint from its cluster's load balancer (the
 * host-set semantics HTTP uses: another endpoint per attempt while there is
 * one), a TCP connection to that endpoint — the peer's inbound listener —
 * and `CONNECT <service>:<port>` on it; once the peer answers 200, the
 * client's socket is spliced to it (tcp-tunnel.ts). For a TLS cluster
 * (ISTIO_MUTUAL: mTLS with secure naming) the connection to the peer is
 * opened by the endpoint's connector (tls/upstream-connector.ts) and the
 * CONNECT is sent once the handshake is done; a TLS failure is a connect
 * failure like any other.
 *
 * A connect failure (refused, reset or no answer before the deadline) tries
 * the next endpoint, once per remaining endpoint, all within the cluster's
 * connect timeout; then, or on a refusal by the peer (its status is
 * recorded), the client is closed.
 *
 * An endpoint outside the mesh (no identity: a MESH_EXTERNAL ServiceEntry's)
 * has no sidecar to answer CONNECT: the bytes go to it directly (through
 * the cluster's TLS origination when its DestinationRule asks for one).
 * Bytes the proxy read before choosing the route (a peeked ClientHello) go
 * upstream first. A destination without a cluster closes the client with
 * NC, a cluster without usable endpoints with UH.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pickWeighted } from '../policy/weighted.js';
import { PROXY_ERRORS } from './errors.js';
import type { Host } from './hosts.js';
import type { ForwardPlan } from './route-plan.js';
import type { UpstreamConnector } from './tls/upstream-connector.js';
import { splitAddress, type Tunnel } from './tcp-tunnel.js';
import { hostPort } from './upstream-pools.js';

/** The most a peer's answer to CONNECT may take before its blank line. */
const MAX_ANSWER_HEAD = 16 * 1024;
const EMPTY = Buffer.alloc(0);

interface Answer {
  readonly socket: Socket;
  readonly status: number;
  /** Bytes after the answer's head: the start of the stream. */
  readonly rest: Buffer;
}

/** Tunnels `t`'s client through the route of `plan`; `early`: bytes already read from the client. */
export function tunnelTcp(t: Tunnel, plan: ForwardPlan, early?: Buffer): void {
  t.route = plan.name;
  const ds = plan.destinations;
  const d = ds.length === 1 ? ds[0]! : pickWeighted(ds, Math.random());
  if (!d) { t.fail(PROXY_ERRORS.NO_CLUSTER); return; }
  t.cluster = d.cluster;
  const target = d.target;
  if (!target) { t.fail(PROXY_ERRORS.NO_CLUSTER); return; }
  if (target.hosts.length === 0) { t.fail(PROXY_ERRORS.NO_HEALTHY_UPSTREAM); return; }
  const c = target.cluster;
  const authority = hostPort(c.service, c.port);
  const deadline = performance.now() + c.connectionPool.connectTimeoutMs;
  const hashKey = target.hashKey?.({ headers: {}, path: '', remoteAddress: t.downstream.remoteAddress });
  const tried: Host[] = [];
  const attempt = (): void => {
    const h = target.pick(hashKey, tried);
    const left = deadline - performance.now();
    if (!h || tried.includes(h) || left <= 0 || t.downstream.destroyed) { t.fail(PROXY_ERRORS.CONNECT_FAILURE); return; }
    tried.push(h);
    openTunnel(h.address, h.upstream.connector, h.identity === '' ? undefined : authority, left, (a) => {
      if (!a) { attempt(); return; }
      t.upstream = h.address;
      t.destinationIdentity = h.identity;
      if (a.status !== 200) {
        // The peer refused (no such port, authorization, its app down): the client learns it by being closed.
        a.socket.destroy();
        t.closeClient(a.status, a.status >= 502 && a.status <= 504 ? 'UF' : undefined);
        return;
      }
      t.status = 200;
      h.upstream.active++; // LEAST_REQUEST counts open tunnels as it counts requests
      t.onEnd = () => { h.upstream.active--; };
      if (a.rest.length > 0) t.downstream.write(a.rest);
      if (early && early.length > 0) a.socket.write(early);
      t.splice(a.socket);
    });
  };
  attempt();
}

/**
 * Connects to a peer's inbound listener and asks for a tunnel to
 * `authority`; `done` gets the answer, or undefined for a connect failure
 * (refused, reset, timed out, or not an HTTP answer). Without an authority
 * (an endpoint outside the mesh) the connection itself is the answer.
 */
function openTunnel(address: string, connector: UpstreamConnector | undefined, authority: string | undefined, timeoutMs: number, done: (a: Answer | undefined) => void): void {
  if (connector?.refusal()) { done(undefined); return; }
  const { host, port } = splitAddress(address);
  const s = connector ? connector.open('http/1.1', { allowHalfOpen: true }) : connect({ host, port, allowHalfOpen: true, noDelay: true });
  let seen: Buffer | undefined;
  let settled = false;
  const settle = (a: Answer | undefined) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    s.off('data', onData);
    s.off('close', onClose);
    if (!a) s.destroy();
    done(a);
  };
  const timer = setTimeout(() => settle(undefined), timeoutMs);
  const onClose = () => settle(undefined);
  const onData = (chunk: Buffer) => {
    seen = seen ? Buffer.concat([seen, chunk]) : chunk;
    const end = seen.indexOf('\r\n\r\n');
    if (end < 0) { if (seen.length > MAX_ANSWER_HEAD) settle(undefined); return; }
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(seen.toString('latin1', 0, Math.min(end, 64)));
    if (!m) { settle(undefined); return; }
    s.pause();
    settle({ socket: s, status: Number(m[1]), rest: seen.subarray(end + 4) });
  };
  s.on('error', () => settle(undefined));
  s.on('close', onClose);
  s.on('data', onData);
  s.once(connector ? connector.readyEvent(s) : 'connect', () => {
    if (authority === undefined) { s.pause(); settle({ socket: s, status: 200, rest: EMPTY }); return; }
    s.write(`CONNECT ${authority} HTTP/1.1\r\nhost: ${authority}\r\n\r\n`);
  });
}

/**
 * PASSTHROUGH for a connection no route takes (outboundTrafficPolicy
 * ALLOW_ANY): straight to `address` (the host and port the client meant),
 * outside the mesh, with `early` first; a connect failure closes the client
 * (UF).
 */
export function passthroughTcp(t: Tunnel, address: string, early: Buffer, timeoutMs: number): void {
  t.cluster = 'PassthroughCluster';
  openTunnel(address, undefined, undefined, timeoutMs, (a) => {
    if (!a || t.downstream.destroyed) { a?.socket.destroy(); t.fail(PROXY_ERRORS.CONNECT_FAILURE); return; }
    t.upstream = address;
    t.status = 200;
    if (early.length > 0) a.socket.write(early);
    t.splice(a.socket);
  });
}
