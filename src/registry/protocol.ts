/**
 * Application protocol of a port, by Istio's rules (`pkg/config/kube`
 * `ConvertProtocol`, `pkg/config/protocol` `Parse`):
 *
 * 1. a UDP transport protocol is UDP;
 * 2. `appProtocol`, when set, is used instead of the port name — and the name
 *    is then not consulted at all. Kubernetes' standard values map first:
 *    `kubernetes.io/h2c` → HTTP2, `kubernetes.io/ws` → HTTP,
 *    `kubernetes.io/wss` → HTTPS;
 * 3. otherwise the port name, `<protocol>[-<suffix>]`, case-insensitive:
 *    `http`, `http-web`, `HTTP2`, `grpc-api`, `grpc-web` (checked before the
 *    `-` split), `tls`, `tcp`, `udp`, `mongo`, `mysql`, `redis`, `https`;
 * 4. an unknown or missing name is UNSPECIFIED (Istio sniffs it), except on
 *    the well-known ports 25, 53, 3306 and 27017, which are TCP.
 *
 * Trellis adds one rule: `h2c` (name prefix or appProtocol) is HTTP2.
 */
import type { Protocol } from './types.js';

const NAMES: Readonly<Record<string, Protocol>> = {
  http: 'HTTP',
  http2: 'HTTP2',
  h2c: 'HTTP2',
  https: 'HTTPS',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  tls: 'TLS',
  tcp: 'TCP',
  udp: 'UDP',
  mongo: 'Mongo',
  mysql: 'MySQL',
  redis: 'Redis',
};

/** Kubernetes-defined `appProtocol` values (exact, case-sensitive as Kubernetes defines them). */
const KUBERNETES_APP_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  'kubernetes.io/h2c': 'HTTP2',
  'kubernetes.io/ws': 'HTTP',
  'kubernetes.io/wss': 'HTTPS',
};

/** Ports Istio never sniffs: SMTP, DNS, MySQL, MongoDB. */
const WELL_KNOWN_TCP_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/**
 * An exact protocol name, case-insensitive, as a ServiceEntry or Gateway port
 * `protocol` field spells it (`HTTP`, `grpc-web`, `Mongo`); undefined when
 * unknown. `HTTP_PROXY` (Sidecar egress only) reads as HTTP.
 */
export function parseProtocol(name: string): Protocol | undefined {
  const n = name.toLowerCase();
  if (n === 'http_proxy') return 'HTTP';
  return NAMES[n];
}

/** Options of `protocolOf`. */
export interface ProtocolOptions {
  /** The port number, for the well-known-port rule. */
  readonly port?: number;
  /** The transport protocol (Kubernetes `ports[].protocol`); `TCP` by default. */
  readonly transport?: 'TCP' | 'UDP' | 'SCTP';
}

/**
 * The protocol of a port from its name and optional `appProtocol`.
 *
 * @example protocolOf('http-web') // 'HTTP'
 * @example protocolOf('web', 'kubernetes.io/h2c') // 'HTTP2'
 * @example protocolOf('', undefined, { port: 3306 }) // 'TCP'
 */
export function protocolOf(portName: string | undefined, appProtocol?: string, opts: ProtocolOptions = {}): Protocol {
  if (opts.transport === 'UDP') return 'UDP';
  let name = portName ?? '';
  if (appProtocol !== undefined && appProtocol !== '') {
    const k8s = KUBERNETES_APP_PROTOCOLS[appProtocol];
    if (k8s) return k8s;
    name = appProtocol;
  }
  const lower = name.toLowerCase();
  let p: Protocol | undefined;
  if (lower.startsWith('grpc-web')) p = 'GRPC-Web';
  else {
    const dash = lower.indexOf('-');
    p = NAMES[dash < 0 ? lower : lower.slice(0, dash)];
  }
  if (p) return p;
  return opts.port !== undefined && WELL_KNOWN_TCP_PORTS.has(opts.port) ? 'TCP' : 'UNSPECIFIED';
}

/** Protocols carried over HTTP (1.1 or 2): routes, retries and HTTP authorization apply. */
export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

/** Protocols that need HTTP/2 to the upstream. */
export function isHttp2Protocol(p: Protocol): boolean {
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-Web';
}

/** Protocols carried over TLS end to end (the proxy sees SNI, not requests). */
export function isTlsProtocol(p: Protocol): boolean {
  return p === 'HTTPS' || p === 'TLS';
}
