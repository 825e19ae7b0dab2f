/**
 * Live instances: what the control plane learns from the proxies' streams
 * (where an instance's proxy listens, whether it is healthy) laid over the
 * endpoints the configuration declares. Configuration says what an instance
 * *is*; a registration only says where it is and whether it is up.
 */
import type { Endpoint } from './types.js';

/** One registered instance, keyed by `Endpoint.instance` (`accounts-v1.bank#0`). */
export interface LiveInstance {
  /** The proxy's inbound listener host; a wildcard (`0.0.0.0`, `::`) keeps the configured address. */
  readonly address: string;
  readonly port: number;
  /** In rotation: the stream is open and the last health report said healthy. */
  readonly healthy: boolean;
}

export type LiveInstances = ReadonlyMap<string, LiveInstance>;

const WILDCARD = new Set(['', '0.0.0.0', '::', '[::]']);

/**
 * The endpoint as the registration says: address and port of the proxy's
 * inbound listener, health HEALTHY or UNHEALTHY. Endpoints of instances that
 * did not register are returned unchanged (an App instance then has no
 * address and is not in rotation).
 */
export function overlayLive(e: Endpoint, live: LiveInstances | undefined): Endpoint {
  const l = live?.get(e.instance);
  if (!l) return e;
  const address = WILDCARD.has(l.address) ? e.address : l.address;
  return {
    ...e,
    ...(address !== undefined ? { address } : {}),
    port: l.port,
    health: l.healthy ? 'HEALTHY' : 'UNHEALTHY',
  };
}

/** `127.0.0.1:15006` or `[::1]:15006` → address and port; undefined when it is not `host:port`. */
export function parseHostPort(s: string | undefined): { address: string; port: number } | undefined {
  if (!s) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (!(port >= 1 && port <= 65535)) return undefined;
  return { address: m[1] ?? m[2] ?? '', port };
}
