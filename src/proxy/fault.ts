/**
 * The `fault` stage: a route's fault injection (Istio's HTTPFaultInjection).
 * A delay, in its percentage of requests, holds the request before it goes
 * on (flag DI); an abort, in its percentage, answers instead of the upstream
 * (flag FI): with its HTTP status, or for gRPC with HTTP 200 and the
 * `grpc-status`. The delay comes first, as in Envoy.
 */
import type { FaultPolicy } from '../protocol/snapshot.js';
import { SnapshotError } from './errors.js';
import type { Stage, Verdict } from './filter-chain.js';
import type { LocalReply } from './local-reply.js';

const GRPC_STATUS: Readonly<Record<string, number>> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

const hit = (percentage: number): boolean => percentage >= 100 || (percentage > 0 && Math.random() * 100 < percentage);

function abortReply(abort: NonNullable<FaultPolicy['abort']>, where: string): LocalReply {
  if (abort.grpcStatus !== undefined) {
    const code = /^\d+$/.test(abort.grpcStatus) ? Number(abort.grpcStatus) : GRPC_STATUS[abort.grpcStatus.toUpperCase()];
    if (code === undefined) throw new SnapshotError(`${where}: unknown gRPC status "${abort.grpcStatus}" in fault.abort`);
    return { status: 200, flag: 'FI', body: '', headers: { 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': 'fault filter abort' } };
  }
  const status = abort.httpStatus ?? 503;
  if (!Number.isInteger(status) || status < 200 || status > 599) throw new SnapshotError(`${where}: fault.abort.httpStatus ${status} is not an HTTP status from 200 to 599`);
  return { status, flag: 'FI', body: 'fault filter abort\n' };
}

/** The stage for a route's fault policy, or undefined when it injects nothing. */
export function faultStage(where: string, f: FaultPolicy | undefined): Stage | undefined {
  if (!f || (!f.delay && !f.abort)) return undefined;
  const delay = f.delay;
  const abort = f.abort;
  const reply = abort ? abortReply(abort, where) : undefined;
  const aborted = (): Verdict => (abort && reply && hit(abort.percentage) ? reply : undefined);
  return {
    phase: 'fault',
    name: `fault(${where})`,
    run(ctx) {
      if (delay && delay.fixedDelayMs > 0 && hit(delay.percentage)) {
        ctx.flag('DI');
        return new Promise<Verdict>((resolve) => setTimeout(() => resolve(ctx.closed ? undefined : aborted()), delay.fixedDelayMs));
      }
      return aborted();
    },
  };
}
