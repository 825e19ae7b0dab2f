/**
 * A small running mesh of real processes for integration tests: a
 * `trellis control-plane` and `trellis proxy` sidecars, with node:http apps
 * (in the test process) behind them, and a caller — the test — sending
 * requests through the `web` sidecar's outbound listener like an app with
 * HTTP_PROXY would. Traffic loops are bounded in count and time.
 */
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { Agent as HttpAgent, createServer, request, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintJoinTokens } from '../../src/cli/join-tokens.js';
import { loadMesh } from '../../src/cli/mesh-input.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { ConfigDir, waitFor } from '../controlplane/helpers.js';
import { getJson, Proc, Procs } from './processes.js';

export const MESH_APP = `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: shop }
spec:
  namespace: shop
  services:
  - name: web
    ports: [{ name: http, port: 8080 }]
    command: [node, web.js]
  - name: api
    ports: [{ name: http, port: 8080 }]
    health: { path: /healthz }
    workloads:
    - { name: api-v1, labels: { version: v1 }, replicas: 2, command: [node, api.js] }
    - { name: api-v2, labels: { version: v2 }, command: [node, api.js] }
  - name: debit-credit
    ports: [{ name: http, port: 8080 }]
    command: [node, d.js]
`;

export function routing(v1: number, v2: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - route:
    - { destination: { host: api, subset: v1 }, weight: ${v1} }
    - { destination: { host: api, subset: v2 }, weight: ${v2} }
`;
}

export const API_CLUSTER = 'outbound|8080||api.shop.svc.cluster.local';
export const API_INSTANCES = ['api-v1.shop#0', 'api-v1.shop#1', 'api-v2.shop'];

/** A free TCP port on 127.0.0.1 (bound to 0 and released), for a control plane that must come back on the same port. */
export async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface Sidecar {
  readonly instance: string;
  readonly proc: Proc;
  readonly inbound: string;
  readonly outbound: string;
  readonly admin: string;
}

export class RunningMesh {
  readonly procs = new Procs();
  readonly config: ConfigDir;
  readonly stateDir = mkdtempSync(join(tmpdir(), 'trellis-state-'));
  readonly apps = new Map<string, Server>();
  readonly sidecars = new Map<string, Sidecar>();
  grpcPort = 0;
  cp!: Proc;
  admin = '';
  readonly #agent = new HttpAgent({ keepAlive: true, maxSockets: 16 });

  constructor(files: Record<string, string>) {
    this.config = new ConfigDir(files);
  }

  /**
   * The control plane (with `controlPlaneArgs`), web's sidecar and the three api
   * instances with their apps, all SYNCED and web seeing the three endpoints.
   */
  static async webAndApi(files: Record<string, string>, controlPlaneArgs: string[] = []): Promise<RunningMesh> {
    const mesh = new RunningMesh(files);
    await mesh.startControlPlane(controlPlaneArgs);
    await Promise.all([
      mesh.startSidecar('web.shop'),
      ...API_INSTANCES.map(async (i) => mesh.startSidecar(i, await mesh.startApp(i))),
    ]);
    await mesh.synced(['web.shop', ...API_INSTANCES]);
    await waitFor('web sees the three api instances', async () => usableApiEndpoints(await mesh.configDump('web.shop')).length === 3 || undefined, 5000);
    return mesh;
  }

  /** Starts (or restarts, on the same gRPC port) the control plane; resolves once it listens. */
  async startControlPlane(extra: string[] = []): Promise<Proc> {
    this.grpcPort ||= await freePort();
    this.cp = this.procs.add(Proc.trellis('control-plane', [
      'control-plane', '--config', this.config.path, '--grpc-port', String(this.grpcPort), '--admin-port', '0', '--state-dir', this.stateDir, ...extra,
    ]));
    const m = await this.cp.line(/listening grpc=\S+ admin=(\S+)/, 8000);
    this.admin = m[1]!;
    return this.cp;
  }

  /** An app for `instance` answering its name (and /healthz), after `delayMs` (so that requests are in flight when it stops). */
  async startApp(instance: string, delayMs = 0): Promise<number> {
    const server = createServer((req, res) => {
      if (req.url === '/healthz') return void res.end('ok');
      req.resume();
      req.on('end', () => {
        const answer = () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(instance);
        };
        if (delayMs > 0) setTimeout(answer, delayMs);
        else answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.apps.set(instance, server);
    return (server.address() as AddressInfo).port;
  }

  /** `trellis proxy` for `instance`; resolves once it printed its addresses. */
  async startSidecar(instance: string, appPort?: number, extra: string[] = []): Promise<Sidecar> {
    const proc = this.procs.add(Proc.trellis(`proxy ${instance}`, [
      'proxy', '--control-plane', `127.0.0.1:${this.grpcPort}`, '--instance', instance, ...this.identityArgs(instance),
      ...(appPort ? ['--app-port', String(appPort), '--health-path', '/healthz', '--health-interval', '500ms'] : []), ...extra,
    ]));
    const m = await proc.line(/listening inbound=(\S+) outbound=(\S+) admin=(\S+)/, 8000);
    const s: Sidecar = { instance, proc, inbound: m[1]!, outbound: m[2]!, admin: m[3]! };
    this.sidecars.set(instance, s);
    return s;
  }

  /**
   * A fresh join token for `instance` (minted into the control plane's state
   * dir, as `trellis up` does) and an identity dir, so a restarted sidecar
   * renews with the certificate it kept.
   */
  identityArgs(instance: string): string[] {
    const [minted] = mintJoinTokens(this.stateDir, loadMesh([this.config.path]).registry, [instance]);
    return ['--join-token', minted!.token, '--identity-dir', join(this.stateDir, 'identity', instance.replace(/[^\w.-]/g, '_'))];
  }

  async proxies(): Promise<{ instance: string; connected: boolean; sync: string; lastAckedVersion: string | null }[]> {
    return (await getJson<{ instance: string; connected: boolean; sync: string; lastAckedVersion: string | null }[]>(this.admin, '/proxies')).body;
  }

  /** Waits until every listed proxy is connected and SYNCED on the current control plane. */
  async synced(instances: readonly string[], ms = 10_000): Promise<void> {
    await waitFor(`${instances.join(', ')} SYNCED`, async () => {
      const ps = await this.proxies();
      return instances.every((i) => ps.some((p) => p.instance === i && p.connected && p.sync === 'SYNCED')) || undefined;
    }, ms, 100);
  }

  async configDump(instance: string): Promise<Snapshot | null> {
    return (await getJson<{ version: string | null; snapshot: Snapshot | null }>(this.sidecars.get(instance)!.admin, '/config_dump')).body.snapshot;
  }

  /** One request from web's app through web's sidecar to `url`; resolves with status and body (status 0 on a transport error). */
  call(url: string, timeoutMs = 5000): Promise<{ status: number; body: string; at: number }> {
    const web = this.sidecars.get('web.shop')!;
    const [host, port] = web.outbound.split(':');
    const u = new URL(url);
    return new Promise((resolve) => {
      const req = request({ host, port: Number(port), path: url, method: 'GET', headers: { host: u.host }, agent: this.#agent, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, at: Date.now() }));
        res.on('error', (e) => resolve({ status: 0, body: String(e), at: Date.now() }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve({ status: 0, body: String(e), at: Date.now() }));
      req.end();
    });
  }

  /**
   * `count` requests to `url` by `workers` callers, paced to take about
   * `spreadMs` in all, stopping at `maxMs` whatever happens. `onProgress`
   * is called after each response with the number done.
   */
  async traffic(url: string, o: { count: number; workers?: number; spreadMs: number; maxMs: number; onProgress?: (done: number) => void }) {
    const results: { status: number; body: string; at: number }[] = [];
    const workers = o.workers ?? 4;
    const started = Date.now();
    const gap = o.spreadMs / o.count;
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= o.count || Date.now() - started > o.maxMs) return;
        const due = started + i * gap;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        results.push(await this.call(url));
        o.onProgress?.(results.length);
      }
    };
    await Promise.all(Array.from({ length: workers }, worker));
    return results;
  }

  /** Stops `instance`'s app: no new connections, the ones open are cut (as when the process exits). */
  async stopApp(instance: string): Promise<void> {
    const s = this.apps.get(instance);
    if (!s) return;
    this.apps.delete(instance);
    const closed = new Promise((r) => s.close(r));
    s.closeAllConnections();
    await closed;
  }

  async close(): Promise<void> {
    this.#agent.destroy();
    await this.procs.stopAll();
    for (const s of this.apps.values()) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    this.config.remove();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** Endpoints of the api cluster in a snapshot that can take traffic (an address, in rotation). */
export function usableApiEndpoints(s: Snapshot | null): string[] {
  const list = s?.endpoints.find((e) => e.cluster === API_CLUSTER)?.endpoints ?? [];
  return list.filter((e) => e.address && (e.health === 'HEALTHY' || e.health === 'UNKNOWN')).map((e) => e.instance);
}
