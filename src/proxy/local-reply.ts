/**
 * Answers the proxy gives itself: a status, the response flag that says why,
 * and a short plain-text body a person can read (`no route: …`). A gRPC
 * call gets the same answer as a gRPC status instead (grpc.ts).
 */
import type { ResponseFlag } from '../protocol/request-record.js';
import type { ErrorKind } from './errors.js';
import type { Exchange } from './exchange.js';
import { sendGrpcReply } from './grpc.js';

export interface LocalReply {
  readonly status: number;
  readonly flag?: ResponseFlag;
  /** Sent as it is (`text/plain`). */
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The reply for an error kind of the catalogue, with an optional detail after a colon. */
export function replyFor(kind: ErrorKind, detail?: string): LocalReply {
  const body = `${detail ? `${kind.message}: ${detail}` : kind.message}\n`;
  return { status: kind.status, ...(kind.flag ? { flag: kind.flag } : {}), body };
}

/** Sends a local reply, unless the downstream is gone or a response has started (then the connection is cut). */
export function sendLocalReply(ex: Exchange, reply: LocalReply, extraFlags?: readonly ResponseFlag[]): void {
  const { res, req } = ex;
  if (reply.flag) ex.flag(reply.flag);
  if (extraFlags) for (const f of extraFlags) ex.flag(f);
  if (ex.closed) return;
  if (res.headersSent) { ex.destroyDownstream(); return; }
  if (ex.grpc) { sendGrpcReply(ex, reply); return; }
  const text = reply.body;
  const length = Buffer.byteLength(text);
  const headers: Record<string, string | number> = { 'content-type': 'text/plain; charset=utf-8', 'content-length': length };
  if (reply.headers) Object.assign(headers, reply.headers);
  ex.beforeHead();
  res.writeHead(reply.status, headers);
  res.end(text);
  ex.bytesSent += req.method === 'HEAD' ? 0 : length;
  // A request body nobody read would stall the keep-alive connection: read it to the end.
  if (!req.complete && !req.destroyed) { req.unpipe(); req.resume(); }
}
