/**
 * For the limits tests (bad-input, timeouts): one app behind its sidecar,
 * a caller's sidecar and an ingress gateway in front of it, every proxy
 * started with the given limits, and a raw `node:net` client that sends
 * bytes as they are and reads the answer to its end.
 */
import { connect, type Socket } from 'node:net';
import { compile } from '../../src/compile/index.js';
import type { ProxyLimits } from '../../src/proxy/limits.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';
import { startApp, startProxy, withEndpoints, type App, type Handler } from '../helpers/proxy.js';

const YAML = [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'shop', 'web'),
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api-v1', 'shop', 'api'),
].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: shop }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 8080, name: http, protocol: HTTP }
    hosts: [edge.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: shop }
spec:
  hosts: [edge.example.com]
  gateways: [edge]
  http:
  - route: [{ destination: { host: api } }]
`;

/** The three kinds of traffic listener, each with the request line and Host header that reach the app through it. */
export interface Target {
  readonly name: 'outbound' | 'inbound' | 'gateway';
  readonly address: string;
  /** `GET <target> HTTP/1.1` … with this path. */
  requestTarget(path: string): string;
  readonly host: string;
}

export class LimitedMesh {
  constructor(readonly app: App, readonly callee: DataPlane, readonly caller: DataPlane, readonly gateway: DataPlane | undefined) {}

  static async start(limits: Partial<ProxyLimits>, handler: Handler, opts: { gateway?: boolean; calleeLimits?: Partial<ProxyLimits> } = {}): Promise<LimitedMesh> {
    const m = meshFromYaml(YAML, 'test/fixtures/ingress-gateway.yaml');
    const app = await startApp('api-v1.shop', handler);
    const callee = await startProxy({ mode: 'sidecar', appPort: app.port, limits: opts.calleeLimits ?? limits }, compile(m.config, m.registry, { workload: 'api-v1', namespace: 'shop' }));
    const [address, port] = callee.addresses.inbound!.split(':');
    const patch = { 'api-v1.shop': { address: address!, port: Number(port), health: 'HEALTHY' as const } };
    const caller = await startProxy({ mode: 'sidecar', limits }, withEndpoints(compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' }), patch));
    const gateway = opts.gateway
      ? await startProxy({ mode: 'gateway', gatewayPorts: { 8080: 0 }, limits }, withEndpoints(compile(m.config, m.registry, { workload: 'istio-ingressgateway', namespace: 'istio-system' }), patch))
      : undefined;
    return new LimitedMesh(app, callee, caller, gateway);
  }

  get outbound(): Target {
    return { name: 'outbound', address: this.caller.addresses.outbound!, requestTarget: (p) => `http://api${p}`, host: 'api' };
  }
  get inbound(): Target {
    return { name: 'inbound', address: this.callee.addresses.inbound!, requestTarget: (p) => p, host: 'api.shop.svc.cluster.local' };
  }
  get edge(): Target {
    return { name: 'gateway', address: this.gateway!.addresses.gateway![8080]!, requestTarget: (p) => p, host: 'edge.example.com' };
  }
  get targets(): Target[] {
    return [this.outbound, this.inbound, ...(this.gateway ? [this.edge] : [])];
  }

  async close(): Promise<void> {
    for (const p of [this.gateway, this.caller, this.callee]) await p?.close(100);
    await this.app.close();
  }
}

/** A raw HTTP/1.1 exchange: what came back, whether the proxy closed the connection, and when. */
export interface RawReply {
  readonly raw: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The proxy closed (or reset) the connection before `waitMs`. */
  readonly closed: boolean;
  /** Milliseconds from the first write to the close (or to the deadline). */
  readonly ms: number;
}

export function parseRaw(raw: string): Pick<RawReply, 'status' | 'headers' | 'body'> {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [line, ...fields] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const f of fields) {
    const i = f.indexOf(':');
    if (i > 0) headers[f.slice(0, i).trim().toLowerCase()] = f.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(line ?? '')?.[1] ?? 0), headers, body: end < 0 ? '' : raw.slice(end + 4) };
}

export function open(address: string): Promise<Socket> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), host, () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Sends `parts` (each written after `gapMs`, none once the proxy has closed)
 * and reads until the proxy closes the connection or `waitMs` passes.
 */
export async function rawExchange(address: string, parts: readonly (string | Buffer)[], opts: { gapMs?: number; waitMs?: number } = {}): Promise<RawReply> {
  const s = await open(address);
  const t0 = Date.now();
  let raw = '';
  let closed = false;
  s.on('data', (b: Buffer) => { raw += b.toString('latin1'); });
  s.on('error', () => undefined);
  const done = new Promise<void>((resolve) => {
    s.once('close', () => { closed = true; resolve(); });
    setTimeout(resolve, opts.waitMs ?? 3000);
  });
  for (const [i, p] of parts.entries()) {
    if (closed || s.destroyed) break;
    if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
    if (!s.destroyed) s.write(p);
  }
  await done;
  const ms = Date.now() - t0;
  s.destroy();
  return { raw, closed, ms, ...parseRaw(raw) };
}
