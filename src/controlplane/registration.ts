/**
 * Registration: which configured instance a proxy's `hello` names. What the
 * instance is (workload, labels, service account, identity) comes from the
 * registry, never from the proxy; claims that disagree are refused.
 */
import { diagnostic, type Diagnostic } from '../api/diagnostic.js';
import type { HelloMessage } from '../protocol/stream.js';
import { instanceName } from '../registry/endpoints.js';
import type { Registry, Workload } from '../registry/types.js';

export type Registration =
  | { readonly ok: true; readonly instance: string; readonly workload: Workload; readonly replica: number }
  | { readonly ok: false; readonly refusal: Diagnostic };

/** Every instance name the registry declares, in workload order. */
export function declaredInstances(registry: Registry, filter: (w: Workload) => boolean = () => true): string[] {
  const out: string[] = [];
  for (const w of registry.workloads()) if (filter(w)) for (let i = 0; i < w.replicas; i++) out.push(instanceName(w, i));
  return out;
}

/** The instance a name denotes: its workload and replica index, if the registry declares it. */
export function findInstance(registry: Registry, instance: string): { workload: Workload; replica: number } | undefined {
  const m = /^(.+?)(?:#(\d+))?$/.exec(instance);
  if (!m) return undefined;
  const workload = registry.workload(m[1]!);
  if (!workload || !m[1]!.includes('.')) return undefined;
  for (let i = 0; i < workload.replicas; i++) if (instanceName(workload, i) === instance) return { workload, replica: i };
  return undefined;
}

/** Checks a hello against the registry. */
export function register(hello: HelloMessage, registry: Registry): Registration {
  const found = findInstance(registry, hello.instance);
  if (!found) {
    return { ok: false, refusal: diagnostic('UnknownInstance', { instance: hello.instance, hint: hintFor(hello.instance, declaredInstances(registry)) }) };
  }
  const { workload: w } = found;
  const claims = hello.claims ?? {};
  const mismatch = (claim: string, claimed: string, configured: string | undefined): Registration => ({
    ok: false,
    refusal: diagnostic('ClaimMismatch', { instance: hello.instance, claim, claimed, configured: configured ?? '(not set)' }, { resource: w.source }),
  });
  for (const [k, v] of Object.entries(claims.labels ?? {})) {
    if (w.labels[k] !== v) return mismatch(`label ${k}`, String(v), w.labels[k]);
  }
  if (claims.serviceAccount !== undefined && claims.serviceAccount !== w.serviceAccount) return mismatch('service account', claims.serviceAccount, w.serviceAccount);
  if (claims.identity !== undefined && claims.identity !== w.identity) return mismatch('identity', claims.identity, w.identity);
  return { ok: true, instance: hello.instance, workload: w, replica: found.replica };
}

/** `; did you mean "a"? known instances: a, b, …` for an unknown instance name. */
export function hintFor(name: string, known: readonly string[]): string {
  if (known.length === 0) return '; the configuration declares no instances';
  const scored = known.map((k) => ({ k, d: distance(name, k) })).sort((a, b) => a.d - b.d || (a.k < b.k ? -1 : 1));
  const limit = Math.max(2, Math.floor(name.length / 3));
  const near = scored.filter((s) => s.d <= limit).slice(0, 3).map((s) => `"${s.k}"`);
  const list = known.slice(0, 12).join(', ') + (known.length > 12 ? `, … (${known.length} in all)` : '');
  return `${near.length ? `; did you mean ${near.join(' or ')}?` : ''}; known instances: ${list}`;
}

/** Levenshtein distance, for near names. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
