/**
 * Helpers for data-plane tests: real app servers on 127.0.0.1, snapshots
 * from the real compiler with endpoint addresses filled in (as the control
 * plane does from registrations), and a small running mesh — a caller's
 * sidecar, and for each callee instance its sidecar in front of its app — so
 * that a test call passes two proxies like a real call between services.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { compile, type ProxyRef } from '../../src/compile/index.js';
import type { Snapshot, SnapshotEndpoint } from '../../src/protocol/snapshot.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import type { DataPlane, DataPlaneOptions } from '../../src/proxy/types.js';
import { meshFromYaml } from './mesh.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, app: App) => void;

export interface App {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  /** Requests served so far. */
  hits: number;
  close(): Promise<void>;
}

/** What the default handler answers: who served, and what arrived. */
export interface Echo {
  readonly app: string;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly bodyBytes: number;
}

export const echo: Handler = (req, res, app) => {
  let n = 0;
  req.on('data', (c: Buffer) => { n += c.length; });
  req.on('end', () => {
    const body = JSON.stringify({ app: app.name, method: req.method, url: req.url, headers: req.headers, bodyBytes: n } satisfies Echo);
    res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': app.name });
    res.end(body);
  });
};

export async function startApp(name: string, handler: Handler = echo): Promise<App> {
  const app: App = {
    name, port: 0, hits: 0, server: undefined as unknown as Server,
    close: () => new Promise((r) => { app.server.closeAllConnections(); app.server.close(() => r()); }),
  };
  const server = createServer((req, res) => { app.hits++; handler(req, res, app); });
  (app as { server: Server }).server = server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (app as { port: number }).port = (server.address() as AddressInfo).port;
  return app;
}

export interface EndpointPatch {
  readonly address?: string;
  readonly port?: number;
  readonly health?: SnapshotEndpoint['health'];
}

/**
 * A copy of a snapshot with its endpoints patched by instance name (every
 * cluster the instance is in), and a new version. Endpoints of instances not
 * named keep what they had (no address: not routable).
 */
export function withEndpoints(s: Snapshot, byInstance: Readonly<Record<string, EndpointPatch>>): Snapshot {
  const endpoints = s.endpoints.map((ce) => ({
    cluster: ce.cluster,
    endpoints: ce.endpoints.map((e) => (byInstance[e.instance] ? { ...e, ...byInstance[e.instance] } : e)),
  }));
  const version = createHash('sha256').update(s.version).update(JSON.stringify(byInstance)).digest('hex').slice(0, 16);
  return { ...s, version, endpoints };
}

/** A copy with other mesh settings (e.g. outboundTrafficPolicy) and a new version. */
export function withMesh(s: Snapshot, mesh: Partial<Snapshot['mesh']>): Snapshot {
  return { ...s, version: `${s.version.slice(0, 12)}${Math.floor(Math.random() * 0xffff).toString(16).padStart(4, '0')}`, mesh: { ...s.mesh, ...mesh } };
}

export async function startProxy(opts: DataPlaneOptions, snapshot?: Snapshot): Promise<DataPlane> {
  // These data planes get no workload certificate: ISTIO_MUTUAL clusters stay plaintext between them (tests of mTLS give certificates).
  const dp = createDataPlane({ mtlsWithoutCertificate: 'plaintext', ...opts });
  await dp.start();
  if (snapshot) {
    const r = dp.apply(snapshot);
    if (!r.ok) throw new Error(`snapshot rejected: ${r.reason}`);
  }
  return dp;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = Echo>(): T;
}

export interface CallInit {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** A keep-alive HTTP client for one proxy address; `call` sends absolute-form (forward proxy) or origin-form requests. */
export class Client {
  readonly pool: Pool;
  constructor(address: string) {
    this.pool = new Pool(`http://${address}`, { connections: 64 });
  }
  /** `url` absolute (`http://api/x`: forward-proxy form, Host from the URL) or a path (then give a host header). */
  async call(url: string, init: CallInit = {}): Promise<Reply> {
    const absolute = /^[a-z]+:\/\//i.test(url);
    const headers: Record<string, string> = { ...(absolute ? { host: new URL(url).host } : {}), ...init.headers };
    const r = await this.pool.request({ path: url, method: (init.method ?? 'GET') as 'GET', headers, body: init.body ?? null });
    const text = await r.body.text();
    return { status: r.statusCode, headers: r.headers, text, json: <T>() => JSON.parse(text) as T };
  }
  close(): Promise<void> {
    return this.pool.close();
  }
}

export interface Callee {
  readonly instance: string;
  readonly app: App;
  readonly proxy: DataPlane;
  /** `host:port` of its inbound listener. */
  readonly inbound: string;
}

export interface MeshOptions {
  readonly yaml: string;
  /** YAML files loaded with the text (relative to the repository root or absolute). */
  readonly files?: readonly string[];
  readonly caller: ProxyRef;
  /** Run the caller as a gateway with these server ports (the client then calls the first one). */
  readonly gatewayPorts?: readonly number[];
  /** Which instances of the caller's clusters to run (all by default). */
  readonly instances?: readonly string[];
  readonly handlers?: Readonly<Record<string, Handler>>;
  /** Instances whose app is started by this function instead (an h2c or gRPC server); it gives the app's port. */
  readonly apps?: Readonly<Record<string, (instance: string) => Promise<App>>>;
}

/** A caller's sidecar and, per callee instance, a sidecar in front of an app: every call passes two proxies. */
export class RunningMesh {
  readonly callees = new Map<string, Callee>();
  caller!: DataPlane;
  client!: Client;
  snapshot!: Snapshot;
  constructor(readonly opts: MeshOptions) {}

  static async start(opts: MeshOptions): Promise<RunningMesh> {
    const m = new RunningMesh(opts);
    const mesh = meshFromYaml(opts.yaml, ...(opts.files ?? []));
    const raw = compile(mesh.config, mesh.registry, opts.caller);
    const found = new Map<string, SnapshotEndpoint>();
    for (const ce of raw.endpoints) for (const e of ce.endpoints) found.set(e.instance, e);
    for (const instance of opts.instances ?? [...found.keys()]) {
      const e = found.get(instance);
      if (!e) throw new Error(`no endpoint for instance ${instance}; known: ${[...found.keys()].join(', ')}`);
      const app = await (opts.apps?.[instance]?.(instance) ?? startApp(instance, opts.handlers?.[instance]));
      const own = compile(mesh.config, mesh.registry, { workload: e.workload, namespace: e.namespace });
      const proxy = await startProxy({ mode: 'sidecar', appPort: app.port }, own);
      m.callees.set(instance, { instance, app, proxy, inbound: proxy.addresses.inbound! });
    }
    m.snapshot = m.patch(raw);
    if (opts.gatewayPorts) {
      m.caller = await startProxy({ mode: 'gateway', gatewayPorts: Object.fromEntries(opts.gatewayPorts.map((p) => [p, 0])) }, m.snapshot);
      m.client = new Client(m.caller.addresses.gateway![opts.gatewayPorts[0]!]!);
    } else {
      m.caller = await startProxy({ mode: 'sidecar' }, m.snapshot);
      m.client = new Client(m.caller.addresses.outbound!);
    }
    return m;
  }

  /** Fills in the addresses of the running callees (as the control plane does from registrations). */
  patch(s: Snapshot): Snapshot {
    const byInstance: Record<string, EndpointPatch> = {};
    for (const c of this.callees.values()) {
      const [address, port] = c.inbound.split(':');
      byInstance[c.instance] = { address: address!, port: Number(port), health: 'HEALTHY' };
    }
    return withEndpoints(s, byInstance);
  }

  /** The caller's snapshot for other YAML, addresses filled in. */
  compile(yaml: string): Snapshot {
    const mesh = meshFromYaml(yaml, ...(this.opts.files ?? []));
    return this.patch(compile(mesh.config, mesh.registry, this.opts.caller));
  }

  /** Compiles the caller again from other YAML and applies it. */
  reconfigure(yaml: string): Snapshot {
    const s = this.compile(yaml);
    const r = this.caller.apply(s);
    if (!r.ok) throw new Error(`snapshot rejected: ${r.reason}`);
    this.snapshot = s;
    return s;
  }

  call(url: string, init?: CallInit): Promise<Reply> {
    return this.client.call(url, init);
  }

  async close(): Promise<void> {
    await this.client?.close();
    await this.caller?.close(100);
    for (const c of this.callees.values()) {
      await c.proxy.close(100);
      await c.app.close();
    }
  }
}

/** Counts how often each value occurs. */
export function tally(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

/** Polls until `check` returns a value, or fails with what `describe` says after `ms`. */
export async function eventually<T>(check: () => T | undefined, ms: number, describe: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
