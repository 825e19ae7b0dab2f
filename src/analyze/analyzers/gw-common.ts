/**
 * What the Gateway analyzers share: which workloads a Gateway configures
 * (its selector, across every namespace, as the compiler decides in
 * `isGateway`), how a selector is shown in a message, and whether two
 * servers' hosts can name the same request.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { hostsOverlap } from '../../registry/host.js';
import type { Workload } from '../../registry/types.js';
import type { AnalysisContext } from '../analyzer.js';
import { workloadsSelected } from '../lookup.js';

export type GatewayResource = ResourceOf<'Gateway'>;

/** The Gateway's selector when it has one with at least one label; Trellis applies a Gateway without one to no workload. */
export function gatewaySelector(gw: GatewayResource): Readonly<Record<string, string>> | undefined {
  const sel = gw.body.spec.selector;
  return sel && Object.keys(sel).length > 0 ? sel : undefined;
}

/** The workloads a Gateway configures: those its selector picks, in any namespace; none without a selector. */
export function gatewayWorkloads(ctx: AnalysisContext, gw: GatewayResource): Workload[] {
  const sel = gatewaySelector(gw);
  return sel ? workloadsSelected(ctx, sel) : [];
}

/** `app=x,istio=ingressgateway`: keys sorted, as Kubernetes prints a selector. */
export function selectorText(sel: Readonly<Record<string, string>> | undefined): string {
  return Object.keys(sel ?? {}).sort().map((k) => `${k}=${sel![k]}`).join(',');
}

/** `namespace/name` of a resource, as messages list other Gateways. */
export function nsName(r: { readonly metadata: { readonly namespace: string; readonly name: string } }): string {
  return `${r.metadata.namespace}/${r.metadata.name}`;
}

/** The host of a server host entry without its `namespace/` part. */
function hostPart(entry: string): string {
  const i = entry.indexOf('/');
  return i < 0 ? entry : entry.slice(i + 1);
}

/**
 * Whether two servers' host lists share a name. The `namespace/` part only
 * restricts which VirtualServices may bind; the listener sees both hosts, so
 * it is left out.
 */
export function serverHostsOverlap(a: readonly string[], b: readonly string[]): boolean {
  return a.some((x) => b.some((y) => hostsOverlap(hostPart(x), hostPart(y))));
}

/** Whether two workload lists have a workload in common. */
export function shareWorkload(a: readonly Workload[], b: readonly Workload[]): boolean {
  const keys = new Set(a.map((w) => `${w.namespace}/${w.kind}/${w.name}`));
  return b.some((w) => keys.has(`${w.namespace}/${w.kind}/${w.name}`));
}
