/**
 * One proxy's stream, as the control plane sees it: the first message must
 * be `hello` (within `helloTimeoutMs`); a refused registration gets
 * `refused` and the stream ends; an accepted one gets its headers at once
 * (so the proxy knows it is connected even while pushes are held back) and
 * then ack / nack / health messages until it closes.
 */
import { Metadata, type ServerDuplexStream } from '@grpc/grpc-js';
import { diagnostic, type Diagnostic } from '../api/diagnostic.js';
import type { AckMessage, ControlMessage, HealthMessage, HelloMessage, LeavingMessage, NackMessage, ProxyMessage } from '../protocol/stream.js';
import type { SessionStream } from './proxy-sessions.js';

/** What the control plane does with a stream's messages. */
export interface StreamHub<S> {
  /** Registers the proxy, or says why not. */
  /** `peerIdentities`: the SPIFFE IDs of the TLS client certificate (empty without one); undefined on an insecure server. */
  hello(m: HelloMessage, stream: SessionStream, peer: string, peerIdentities?: readonly string[]): { ok: true; session: S } | { ok: false; refusal: Diagnostic };
  ack(session: S, m: AckMessage): void;
  nack(session: S, m: NackMessage): void;
  health(session: S, m: HealthMessage): void;
  /** The proxy is shutting down: out of rotation, `drained` once the callers ACKed. */
  leaving(session: S, m: LeavingMessage): void;
  /** The stream ended (either side, or the connection died). Called once. */
  closed(session: S): void;
  /** A registration was refused (for logs and metrics). */
  refused(refusal: Diagnostic, peer: string, instance: string | undefined): void;
}

export function handleStream<S>(
  call: ServerDuplexStream<ProxyMessage, ControlMessage>, hub: StreamHub<S>, helloTimeoutMs = 10_000,
  peerIdentities?: (call: ServerDuplexStream<ProxyMessage, ControlMessage>) => readonly string[],
): void {
  let session: S | undefined;
  let done = false;
  const peer = call.getPeer();
  const stream: SessionStream = {
    send: (m) => {
      if (!done && call.writable) call.write(m);
    },
    end: () => finish(true),
  };
  const refuse = (refusal: Diagnostic, instance: string | undefined) => {
    hub.refused(refusal, peer, instance);
    if (call.writable) call.write({ type: 'refused', code: refusal.code, reason: refusal.message });
    finish(true);
  };
  const helloTimer = setTimeout(() => refuse(diagnostic('InvalidHello', { detail: `no hello within ${helloTimeoutMs} ms` }), undefined), helloTimeoutMs);
  helloTimer.unref();

  function finish(endCall: boolean): void {
    if (done) return;
    done = true;
    clearTimeout(helloTimer);
    if (endCall) {
      try {
        call.end();
      } catch {
        /* the call is gone already */
      }
    }
    if (session !== undefined) hub.closed(session);
  }

  call.on('data', (m: ProxyMessage) => {
    if (done) return;
    if (session === undefined) {
      clearTimeout(helloTimer);
      const bad = invalidHello(m);
      if (bad) return refuse(diagnostic('InvalidHello', { detail: bad }), undefined);
      const hello = m as HelloMessage;
      const r = hub.hello(hello, stream, peer, peerIdentities?.(call));
      if (!r.ok) return refuse(r.refusal, hello.instance);
      session = r.session;
      call.sendMetadata(new Metadata());
      return;
    }
    switch (m?.type) {
      case 'ack':
        return hub.ack(session, m);
      case 'nack':
        return hub.nack(session, m);
      case 'health':
        return hub.health(session, m);
      case 'leaving':
        return hub.leaving(session, m);
      default:
        return; // unknown messages are ignored: a newer proxy may send more than we know
    }
  });
  call.on('end', () => finish(true));
  call.on('cancelled', () => finish(false));
  call.on('error', () => finish(false));
  call.on('close', () => finish(false));
}

function invalidHello(m: unknown): string | undefined {
  if (m === null || typeof m !== 'object') return 'the first message is not an object';
  const h = m as Partial<HelloMessage>;
  if (h.type !== 'hello') return `the first message is "${String(h.type)}"`;
  if (typeof h.instance !== 'string' || h.instance === '') return 'hello has no instance';
  if (h.listeners === null || typeof h.listeners !== 'object' || typeof h.listeners.inbound !== 'string') return 'hello has no listeners.inbound';
  return undefined;
}
