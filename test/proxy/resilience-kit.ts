/**
 * What the circuit-breaking and retry tests share: upstream servers that can
 * be told to fail, hold their answers or reset (real node:http and h2c
 * servers that count connections, requests and bodies), and a caller's real
 * sidecar whose api endpoints are those servers directly, so that what the
 * caller's pools do (connections opened, requests sent, attempts) is seen
 * at the server. Configuration is compiled from YAML by the real compiler.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { constants as h2, createServer as createH2Server, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { compile } from '../../src/compile/index.js';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { k8sDeployment, k8sService, meshFromYaml } from '../helpers/mesh.js';
import { Client, eventually, startProxy, withEndpoints, type EndpointPatch } from '../helpers/proxy.js';

export const API_CLUSTER = 'outbound|80||api.shop.svc.cluster.local';
export const API_V1_CLUSTER = 'outbound|80|v1|api.shop.svc.cluster.local';

/** web calls api (v1 ×2 on the test's servers, v2 on a dead port) and h2api (HTTP/2, port name http2). */
export const SERVICES = '\n' + [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'shop', 'web', { labels: { version: 'v1' } }),
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api-v1', 'shop', 'api', { labels: { version: 'v1' }, replicas: 2 }),
  k8sDeployment('api-v2', 'shop', 'api', { labels: { version: 'v2' } }),
  k8sService('h2api', 'shop', { name: 'http2', port: 80, targetPort: 9001 }),
  k8sDeployment('h2api-v1', 'shop', 'h2api'),
].join('---\n');

/** A DestinationRule for api with subsets v1 and v2 and the given trafficPolicy (YAML, two spaces in), if any. */
export function apiRule(trafficPolicy = ''): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
${trafficPolicy ? `  trafficPolicy:\n${trafficPolicy.replace(/^\n/, '').replace(/^/gm, '    ')}\n` : ''}  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request as the upstream saw it. */
export interface Hit {
  readonly path: string;
  readonly bodyBytes: number;
  readonly connection: number;
}

/**
 * An HTTP/1.1 upstream. Paths: `…/status/<code>[?grpc=<n>]` answers that status
 * (and grpc-status header), `…/reset` destroys the connection without an
 * answer, anything else answers 200 `ok`. While `holding`, answers wait for
 * `release()` (requests that arrive after it are answered at once).
 */
export class Upstream {
  readonly server: Server;
  readonly hits: Hit[] = [];
  connections = 0;
  closedConnections = 0;
  inFlight = 0;
  maxInFlight = 0;
  holding = false;
  #held: (() => void)[] = [];
  #sockets = new Set<Socket>();
  port = 0;

  constructor(readonly name: string) {
    const ids = new WeakMap<Socket, number>();
    this.server = createServer((req, res) => this.#serve(req, res, ids.get(req.socket) ?? 0));
    this.server.on('connection', (s: Socket) => {
      ids.set(s, ++this.connections);
      this.#sockets.add(s);
      s.on('close', () => { this.closedConnections++; this.#sockets.delete(s); });
    });
  }

  static async start(name: string): Promise<Upstream> {
    const u = new Upstream(name);
    await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
    u.port = (u.server.address() as AddressInfo).port;
    return u;
  }

  #serve(req: IncomingMessage, res: ServerResponse, connection: number): void {
    const path = req.url ?? '/';
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => {
      this.hits.push({ path, bodyBytes: n, connection });
      if (path.endsWith('/reset')) { req.socket.destroy(); return; }
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const answer = () => {
        this.inFlight--;
        if (res.destroyed) return;
        const m = /\/status\/(\d{3})(?:\?grpc=(\d+))?/.exec(path);
        const headers: Record<string, string> = { 'x-served-by': this.name };
        if (m?.[2]) headers['grpc-status'] = m[2];
        res.writeHead(m ? Number(m[1]) : 200, headers);
        res.end(m ? `status ${m[1]} from ${this.name}` : 'ok');
      };
      if (this.holding) this.#held.push(answer);
      else answer();
    });
  }

  hitsOn(prefix: string): number {
    return this.hits.filter((h) => h.path.startsWith(prefix)).length;
  }

  /** Answers every held request, and stops holding. */
  release(): void {
    this.holding = false;
    const held = this.#held;
    this.#held = [];
    for (const a of held) a();
  }

  get held(): number {
    return this.#held.length;
  }

  reset(): void {
    this.hits.length = 0;
    this.maxInFlight = this.inFlight;
  }

  async close(): Promise<void> {
    this.release();
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** An h2c upstream that refuses every stream (RST_STREAM REFUSED_STREAM) while `refusing`, else answers 200. */
export class RefusingH2 {
  readonly server: Http2Server;
  streams = 0;
  refusing = true;
  port = 0;
  constructor() {
    this.server = createH2Server();
    this.server.on('stream', (s: ServerHttp2Stream) => {
      this.streams++;
      s.on('error', () => { /* the refusal itself */ });
      if (this.refusing) { s.close(h2.NGHTTP2_REFUSED_STREAM); return; }
      s.respond({ ':status': 200 });
      s.end('ok');
    });
  }
  static async start(): Promise<RefusingH2> {
    const u = new RefusingH2();
    await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
    u.port = (u.server.address() as AddressInfo).port;
    return u;
  }
  async close(): Promise<void> {
    await new Promise((r) => this.server.close(r));
  }
}

/** A port nothing listens on (bound and released). */
export async function deadPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

/**
 * web's sidecar (a real data plane), api-v1's two instances on `a` and `b`,
 * api-v2 on a dead port, h2api on `h2`; `configure(yaml)` compiles and
 * applies other routing and policy.
 */
export class CallerProxy {
  readonly records: RequestRecord[] = [];
  client!: Client;
  proxy!: DataPlane;
  #patch: Record<string, EndpointPatch> = {};
  #onRecord = (r: unknown) => { if ((r as RequestRecord).proxy === 'web-v1.shop' && (r as RequestRecord).direction === 'outbound') this.records.push(r as RequestRecord); };

  static async start(yaml: string, a: Upstream, b: Upstream, h2?: RefusingH2): Promise<CallerProxy> {
    const c = new CallerProxy();
    subscribe(REQUEST_CHANNEL, c.#onRecord);
    const up = (port: number): EndpointPatch => ({ address: '127.0.0.1', port, health: 'HEALTHY' });
    c.#patch = {
      'api-v1.shop#0': up(a.port), 'api-v1.shop#1': up(b.port), 'api-v2.shop': up(await deadPort()),
      ...(h2 ? { 'h2api-v1.shop': up(h2.port) } : {}),
    };
    c.proxy = await startProxy({ mode: 'sidecar' }, c.snapshot(yaml));
    c.client = new Client(c.proxy.addresses.outbound!);
    return c;
  }

  snapshot(yaml: string): Snapshot {
    const mesh = meshFromYaml(SERVICES + yaml);
    return withEndpoints(compile(mesh.config, mesh.registry, { workload: 'web-v1', namespace: 'shop' }), this.#patch);
  }

  configure(yaml: string): void {
    const r = this.proxy.apply(this.snapshot(yaml));
    if (!r.ok) throw new Error(`snapshot rejected: ${r.reason}`);
  }

  call(url: string, init?: Parameters<Client['call']>[1]) {
    return this.client.call(url, init);
  }

  /** The record of the request whose path is `path` (the last one), once published. */
  recordOf(path: string): Promise<RequestRecord> {
    return eventually(() => [...this.records].reverse().find((r) => r.path === path), 3000, () => `no record for ${path}`);
  }

  /** The value of a sample on the admin port's /metrics (0 when absent). */
  async metric(name: string, labels: Record<string, string>): Promise<number> {
    const text = await (await fetch(`http://${this.proxy.addresses.admin}/metrics`)).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return 0;
  }

  async close(): Promise<void> {
    unsubscribe(REQUEST_CHANNEL, this.#onRecord);
    await this.client?.close();
    await this.proxy?.close(100);
  }
}

/** A VirtualService for api with `http` rules (YAML list items, two spaces in). */
export function apiRoutes(http: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
${http.replace(/^\n/, '')}`;
}
