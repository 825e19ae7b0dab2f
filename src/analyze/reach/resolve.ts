/**
 * `--from A` and `--to B` as sources and destinations. Both accept a
 * workload (`frontend`, `frontend.bank`), a service host (`accounts`,
 * `accounts.bank`, `accounts.bank.svc.cluster.local`, with `:port` for one
 * port), or an identity (`spiffe://td/ns/bank/sa/frontend`); A may also be
 * `plaintext` (a caller outside the mesh, without a certificate).
 *
 * As a source, a service stands for every workload behind it, and an
 * identity for the one workload that has it (or, when none or several do,
 * for a caller with that certificate and no proxy of its own). As a
 * destination, a workload or identity stands for the service ports in front
 * of it, narrowed to those workloads.
 */
import type { ReachContext } from './decide.js';
import { destinationOf, meshDestinations, PLAINTEXT, workloadSource } from './matrix.js';
import type { ReachDestination, ReachSource } from './model.js';

/** A name that resolves to nothing: the message says what exists. */
export class ReachArgError extends Error {}

function servicesNamed(ctx: ReachContext, host: string) {
  const suffix = `.svc.${ctx.registry.domainSuffix}`;
  return ctx.registry.services().filter((s) => {
    if (s.hostname === host) return true;
    if (!s.hostname.endsWith(suffix)) return false;
    const short = s.hostname.slice(0, -suffix.length);
    return short === host || short.split('.')[0] === host;
  });
}

function splitPort(arg: string): [string, number | undefined] {
  const m = /^(.*):(\d+)$/.exec(arg);
  return m && !arg.startsWith('spiffe://') ? [m[1]!, Number(m[2])] : [arg, undefined];
}

function workloadsNamed(ctx: ReachContext, arg: string) {
  const exact = ctx.registry.workloads().filter((w) => `${w.name}.${w.namespace}` === arg);
  return exact.length ? exact : ctx.registry.workloads().filter((w) => w.name === arg);
}

function known(ctx: ReachContext): string {
  const ws = ctx.registry.workloads().map((w) => `${w.name}.${w.namespace}`);
  const ss = meshDestinations(ctx.registry).map((d) => d.id);
  return `workloads: ${ws.join(', ') || '(none)'}; services: ${ss.join(', ') || '(none)'}`;
}

export function resolveSources(ctx: ReachContext, arg: string): ReachSource[] {
  if (arg === 'plaintext') return [PLAINTEXT];
  if (arg.startsWith('spiffe://')) {
    const ws = ctx.registry.workloads().filter((w) => w.identity === arg);
    if (ws.length === 1) return [workloadSource(ctx, ws[0]!.name, ws[0]!.namespace)];
    return [{ id: arg, kind: 'identity', identity: arg }];
  }
  const ws = workloadsNamed(ctx, arg);
  if (ws.length) return ws.map((w) => workloadSource(ctx, w.name, w.namespace));
  const [host] = splitPort(arg);
  const out = new Map<string, ReachSource>();
  for (const s of servicesNamed(ctx, host)) {
    for (const p of s.ports) for (const w of destinationOf(ctx.registry, s, p.port)?.workloads ?? []) {
      const i = w.indexOf('.');
      out.set(w, workloadSource(ctx, w.slice(0, i), w.slice(i + 1)));
    }
  }
  if (out.size) return [...out.values()];
  throw new ReachArgError(`--from ${arg}: no workload, service or identity of that name (${known(ctx)}; or plaintext, or spiffe://…)`);
}

/** Destinations, and for each the workloads it is narrowed to (when B named workloads rather than a service). */
export function resolveDestinations(ctx: ReachContext, arg: string): { destinations: ReachDestination[]; only: Map<string, Set<string>> } {
  const [host, port] = splitPort(arg);
  const only = new Map<string, Set<string>>();
  const services = servicesNamed(ctx, host);
  if (services.length) {
    const destinations = services.flatMap((s) => s.ports.filter((p) => port === undefined || p.port === port).map((p) => destinationOf(ctx.registry, s, p.port)))
      .filter((d): d is ReachDestination => d !== undefined);
    if (destinations.length) return { destinations, only };
    throw new ReachArgError(`--to ${arg}: the service has ${port === undefined ? 'no workloads' : `no port ${port} with workloads`} (its ports: ${services.flatMap((s) => s.ports.map((p) => p.port)).join(', ')})`);
  }
  const ws = arg.startsWith('spiffe://') ? ctx.registry.workloads().filter((w) => w.identity === arg) : workloadsNamed(ctx, host);
  const names = new Set(ws.map((w) => `${w.name}.${w.namespace}`));
  const destinations = meshDestinations(ctx.registry).filter((d) => (port === undefined || d.port === port) && d.workloads.some((w) => names.has(w)));
  for (const d of destinations) only.set(d.id, new Set(d.workloads.filter((w) => names.has(w))));
  if (destinations.length) return { destinations, only };
  throw new ReachArgError(`--to ${arg}: no service, or service in front of a workload or identity, of that name (${known(ctx)})`);
}
