import type { ProxyRef } from '../compile/index.js';

/** `name` or `name.namespace` (a workload name has no dots of its own in Kubernetes). */
export function splitWorkload(arg: string): ProxyRef {
  const dot = arg.indexOf('.');
  if (dot < 0) return { workload: arg };
  return { workload: arg.slice(0, dot), namespace: arg.slice(dot + 1) };
}
