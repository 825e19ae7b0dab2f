/**
 * A small running mesh for mTLS tests: a caller's sidecar (with optional
 * upstream local ports) and, per callee instance, a sidecar in front of its
 * app, all compiled from YAML by the real compiler (so clusters carry the
 * compiler's auto-mTLS settings: ISTIO_MUTUAL, the service's identities as
 * subjectAltNames), every proxy given a workload certificate for its own
 * SPIFFE ID from one mesh CA (the project's, mtls-pki.ts). Callees' inbound PeerAuthentication modes are
 * patched into their snapshots, so a test says exactly what each port runs.
 *
 * Also: taps on the request-record and TLS channels, and a /metrics reader.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { compile, type ProxyRef } from '../../src/compile/index.js';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import type { PeerAuthnMode, Snapshot, SnapshotEndpoint } from '../../src/protocol/snapshot.js';
import { TLS_CHANNEL, type TlsHandshakeEvent } from '../../src/proxy/tls/tls-events.js';
import type { DataPlane, DataPlaneOptions } from '../../src/proxy/types.js';
import { k8sDeployment, k8sService, meshFromYaml } from './mesh.js';
import { Client, startApp, startProxy, withEndpoints, type App, type EndpointPatch } from './proxy.js';
import { MeshPki } from './mtls-pki.js';
import type { TestLeaf } from './test-pki.js';

/** api (two HTTP ports), h2web (HTTP2), db (TCP), each one instance, and the caller `client`, all in shop. */
export const MTLS_YAML = [
  `apiVersion: v1
kind: Service
metadata: { name: api, namespace: shop }
spec:
  selector: { app: api }
  ports: [{ name: http, port: 80, targetPort: 9000 }, { name: http-alt, port: 81, targetPort: 9000 }]
`,
  k8sDeployment('api-v1', 'shop', 'api'),
  k8sService('h2web', 'shop', { name: 'http2', port: 8080, targetPort: 8080 }),
  k8sDeployment('h2web-v1', 'shop', 'h2web'),
  k8sService('db', 'shop', { name: 'tcp-db', port: 5432, targetPort: 5432 }),
  k8sDeployment('db-v1', 'shop', 'db'),
  k8sDeployment('client', 'shop', 'client'),
].join('---\n');

export interface MtlsCallee {
  readonly instance: string;
  readonly identity: string;
  readonly app: App;
  readonly proxy: DataPlane;
  /** `host:port` of its inbound listener. */
  readonly inbound: string;
  /** Its own snapshot as compiled (modes not patched). */
  readonly snapshot: Snapshot;
  leaf: TestLeaf | undefined;
}

export interface MtlsMeshOptions {
  readonly yaml: string;
  readonly caller: ProxyRef;
  /** Extra options of the caller's data plane (upstream local ports, …). */
  readonly callerOptions?: Partial<DataPlaneOptions>;
  /** Instances whose app this function starts (an h2c or WebSocket server); others get the echo app. */
  readonly apps?: Readonly<Record<string, (instance: string) => Promise<App>>>;
  /** The inbound mode of every callee port (absent: the compiler's). */
  readonly calleeMode?: PeerAuthnMode;
  /** Give every proxy a certificate at start (default true). */
  readonly certify?: boolean;
}

/** A copy of a snapshot whose inbound ports run `mode` (a function: per port), with a new version. */
export function withInboundMode(s: Snapshot, mode: PeerAuthnMode | ((port: number) => PeerAuthnMode | undefined)): Snapshot {
  const pick = typeof mode === 'function' ? mode : () => mode;
  const inbound = s.inbound.map((l) => {
    const m = pick(l.port);
    return m ? { ...l, mtls: m } : l;
  });
  return { ...s, version: `${s.version}-${inbound.map((l) => l.mtls ?? '_').join('.')}`, inbound };
}

export class MtlsMesh {
  readonly callees = new Map<string, MtlsCallee>();
  caller!: DataPlane;
  callerIdentity = '';
  callerLeaf: TestLeaf | undefined;
  client!: Client;
  snapshot!: Snapshot;

  constructor(readonly pki: MeshPki, readonly opts: MtlsMeshOptions) {}

  static async start(opts: MtlsMeshOptions): Promise<MtlsMesh> {
    const m = new MtlsMesh(await MeshPki.create(), opts);
    const mesh = meshFromYaml(opts.yaml);
    const raw = compile(mesh.config, mesh.registry, opts.caller);
    const found = new Map<string, SnapshotEndpoint>();
    for (const ce of raw.endpoints) for (const e of ce.endpoints) found.set(e.instance, e);
    for (const [instance, e] of found) {
      const app = await (opts.apps?.[instance]?.(instance) ?? startApp(instance));
      const own = compile(mesh.config, mesh.registry, { workload: e.workload, namespace: e.namespace });
      const proxy = await startProxy({ mode: 'sidecar', appPort: app.port }, opts.calleeMode ? withInboundMode(own, opts.calleeMode) : own);
      const c: MtlsCallee = { instance, identity: e.identity, app, proxy, inbound: proxy.addresses.inbound!, snapshot: own, leaf: undefined };
      m.callees.set(instance, c);
      if (opts.certify !== false) c.leaf = await m.certify(proxy, e.identity);
    }
    const byInstance: Record<string, EndpointPatch> = {};
    for (const c of m.callees.values()) {
      const [address, port] = c.inbound.split(':');
      byInstance[c.instance] = { address: address!, port: Number(port), health: 'HEALTHY' };
    }
    m.snapshot = withEndpoints(raw, byInstance);
    m.callerIdentity = raw.node.identity;
    m.caller = await startProxy({ mode: 'sidecar', ...opts.callerOptions }, m.snapshot);
    if (opts.certify !== false) m.callerLeaf = await m.certify(m.caller, m.callerIdentity);
    m.client = new Client(m.caller.addresses.outbound!);
    return m;
  }

  /** Issues a fresh certificate for `identity` from the mesh CA and sets it (and the bundle) on `dp`. */
  async certify(dp: DataPlane, identity: string): Promise<TestLeaf> {
    const leaf = await this.pki.issue(identity);
    dp.setCertificate(leaf);
    dp.setTrustBundle([this.pki.rootPem]);
    return leaf;
  }

  callee(instance: string): MtlsCallee {
    const c = this.callees.get(instance);
    if (!c) throw new Error(`no callee ${instance}; known: ${[...this.callees.keys()].join(', ')}`);
    return c;
  }

  /** Applies the callee's own snapshot with its ports in `mode`. */
  setMode(instance: string, mode: PeerAuthnMode | ((port: number) => PeerAuthnMode | undefined)): void {
    const c = this.callee(instance);
    const r = c.proxy.apply(withInboundMode(c.snapshot, mode));
    if (!r.ok) throw new Error(`snapshot rejected: ${r.reason}`);
  }

  /** Applies a changed copy of the caller's snapshot. */
  applyCaller(edit: (s: Snapshot) => Snapshot): void {
    const s = edit(this.snapshot);
    const r = this.caller.apply({ ...s, version: `${s.version}-edited-${Math.random().toString(16).slice(2, 8)}` });
    if (!r.ok) throw new Error(`snapshot rejected: ${r.reason}`);
  }

  async close(): Promise<void> {
    await this.client?.close();
    await this.caller?.close(100);
    for (const c of this.callees.values()) {
      await c.proxy.close(100);
      await c.app.close();
    }
    this.pki.close();
  }
}

/** Collects what is published on a diagnostics channel until `stop()`. */
export class Tap<T> {
  readonly items: T[] = [];
  readonly #fn = (m: unknown) => { this.items.push(m as T); };
  constructor(readonly name: string) { subscribe(name, this.#fn); }
  stop(): void { unsubscribe(this.name, this.#fn); }
  clear(): void { this.items.length = 0; }
}

export const recordTap = (): Tap<RequestRecord> => new Tap<RequestRecord>(REQUEST_CHANNEL);
export const tlsTap = (): Tap<TlsHandshakeEvent> => new Tap<TlsHandshakeEvent>(TLS_CHANNEL);

/** The value of one sample of the proxy's /metrics (0 when absent); `labels` must all match. */
export async function metricValue(dp: DataPlane, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const text = await (await fetch(`http://${dp.addresses.admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
