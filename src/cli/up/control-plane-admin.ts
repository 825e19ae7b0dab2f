/** The parts of the control plane's admin API (docs/running-mesh.md) that `trellis up` and `trellis status` read. */
import { getJson } from './http-probe.js';

/** An entry of `GET /proxies`. */
export interface ProxyStatus {
  readonly instance: string;
  readonly workload: string;
  readonly namespace: string;
  readonly kind: string;
  readonly identity: string;
  readonly connected: boolean;
  readonly lastPushedVersion?: string | null;
  readonly lastAckedVersion?: string | null;
  readonly sync: 'SYNCED' | 'STALE' | 'NACKED';
  readonly nackReason?: string;
  readonly listeners?: { readonly inbound?: string; readonly outbound?: string; readonly admin?: string };
}

/** An entry of `GET /endpoints`. */
export interface EndpointStatus {
  readonly service: string;
  readonly port: number;
  readonly instance: string;
  readonly address?: string;
  readonly healthy: boolean;
}

export function fetchProxies(adminPort: number, timeoutMs = 2000): Promise<ProxyStatus[]> {
  return getJson<ProxyStatus[]>(`http://127.0.0.1:${adminPort}/proxies`, timeoutMs);
}

export function fetchEndpoints(adminPort: number, timeoutMs = 2000): Promise<EndpointStatus[]> {
  return getJson<EndpointStatus[]>(`http://127.0.0.1:${adminPort}/endpoints`, timeoutMs);
}

/**
 * Whether the mesh has settled: every expected proxy connected and SYNCED,
 * and every app instance's endpoints healthy. `true`, or what is missing.
 * With `versions`, also fills it with each proxy's acknowledged version, so
 * that a caller can check that two answers in a row saw the same snapshots
 * (an endpoint that just turned healthy is pushed after the control
 * plane's debounce: SYNCED on the old version until then).
 */
export async function meshSettled(adminPort: number, proxies: readonly string[], apps: readonly string[], versions?: Map<string, string>): Promise<true | string> {
  const [ps, es] = await Promise.all([fetchProxies(adminPort), fetchEndpoints(adminPort)]);
  if (versions) {
    versions.clear();
    for (const p of ps) versions.set(p.instance, String(p.lastAckedVersion ?? ''));
  }
  const byInstance = new Map(ps.map((p) => [p.instance, p]));
  const unsynced = proxies.filter((i) => { const p = byInstance.get(i); return !p || !p.connected || p.sync !== 'SYNCED'; });
  const healthy = new Set(es.filter((e) => e.healthy).map((e) => e.instance));
  const unhealthy = apps.filter((i) => !healthy.has(i));
  if (!unsynced.length && !unhealthy.length) return true;
  const list = (xs: string[]) => xs.slice(0, 4).join(', ') + (xs.length > 4 ? ` and ${xs.length - 4} more` : '');
  return [
    unsynced.length ? `not SYNCED: ${list(unsynced)}` : '',
    unhealthy.length ? `not in rotation: ${list(unhealthy)}` : '',
  ].filter(Boolean).join('; ');
}

/** `meshSettled`, twice in a row `gapMs` apart with the same acknowledged versions. */
export function steadilySettled(adminPort: number, proxies: readonly string[], apps: readonly string[], gapMs = 300): () => Promise<true | string> {
  let previous: { at: number; versions: string } | undefined;
  return async () => {
    const versions = new Map<string, string>();
    const r = await meshSettled(adminPort, proxies, apps, versions);
    if (r !== true) {
      previous = undefined;
      return r;
    }
    const now = { at: Date.now(), versions: JSON.stringify([...versions].sort()) };
    if (previous && previous.versions === now.versions && now.at - previous.at >= gapMs) return true;
    if (!previous || previous.versions !== now.versions) previous = now;
    return 'settling: waiting for the control plane\'s pushes to finish';
  };
}
