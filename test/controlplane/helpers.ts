/**
 * Helpers for control-plane tests: configuration directories in a temp dir,
 * a control plane on ports 0, a raw gRPC client that speaks the stream
 * (src/protocol/stream.ts) the way a proxy does, JSON from the admin API, and
 * polling with a deadline.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client, credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { createControlPlane, type ControlPlane, type ControlPlaneOptions } from '../../src/controlplane/control-plane.js';
import type { ControlPlaneEvent } from '../../src/controlplane/events.js';
import type { ControlMessage, HelloMessage, ProxyMessage, SnapshotMessage } from '../../src/protocol/stream.js';
import { meshService, STREAM_CHANNEL_OPTIONS } from '../../src/protocol/stream.js';
import { IdentityClient, type WorkloadCertificate } from '../../src/proxy/identity-client.js';

/** The test control planes by gRPC address, so a StreamClient can get its instance a certificate the way a proxy does. */
const planes = new Map<string, TokenSource>();

/** What a StreamClient needs of a control plane: join tokens and the roots to trust. */
export interface TokenSource {
  mintJoinToken(instance: string): string;
  readonly identity: { trustBundle(): string[] };
}

/** For a StreamClient in another process: the control plane at `target` as seen from there (a token minted by the parent, the roots). */
export function registerPlane(target: string, source: TokenSource): void {
  planes.set(target, source);
}

/**
 * A certificate for `instance` from the control plane at `target`, obtained
 * as a proxy does (a join token minted by the control plane, the root pinned
 * by its hash, a CSR); undefined when the configuration does not declare the
 * instance.
 */
export async function certificateFor(target: string, instance: string): Promise<WorkloadCertificate | undefined> {
  const cp = planes.get(target);
  if (!cp) throw new Error(`no test control plane at ${target}`);
  let joinToken: string;
  try {
    joinToken = cp.mintJoinToken(instance);
  } catch {
    return undefined;
  }
  const id = new IdentityClient({ controlPlane: target, instance, joinToken, onCertificate: () => {} });
  try {
    return await id.start();
  } finally {
    id.close();
  }
}

/** Polls `probe` until it returns a value other than undefined/false, or fails after `ms` with what it last saw. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000, every = 25): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last saw: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A directory of YAML files under the OS temp dir; `write` edits, `remove` deletes it all. */
export class ConfigDir {
  readonly path = mkdtempSync(join(tmpdir(), 'trellis-cp-'));

  constructor(files: Record<string, string> = {}) {
    for (const [name, text] of Object.entries(files)) this.write(name, text);
  }

  write(name: string, text: string): void {
    const p = join(this.path, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }

  rm(name: string): void {
    rmSync(join(this.path, name), { force: true });
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface TestControlPlane {
  readonly cp: ControlPlane;
  readonly grpc: string;
  readonly admin: string;
  readonly events: ControlPlaneEvent[];
  get<T = unknown>(path: string): Promise<{ status: number; body: T; text: string }>;
}

export async function startControlPlane(config: string, opts: Partial<ControlPlaneOptions> = {}): Promise<TestControlPlane> {
  const events: ControlPlaneEvent[] = [];
  const cp = createControlPlane({ config, grpcPort: 0, adminPort: 0, registrationGraceMs: 0, pollMs: 50, cwd: config, ...opts, log: (e) => events.push(e) });
  const { grpc, admin } = await cp.start();
  planes.set(grpc, cp);
  return {
    cp, grpc, admin, events,
    async get<T>(path: string) {
      const res = await fetch(`http://${admin}${path}`);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* Prometheus text */
      }
      return { status: res.status, body: body as T, text };
    },
  };
}

/** A proxy's side of the stream without a data plane: sends what a test says, records what the control plane sends. */
export class StreamClient {
  readonly received: ControlMessage[] = [];
  headers = false;
  ended = false;
  #client: Client | undefined;
  #call: ClientDuplexStream<ProxyMessage, ControlMessage> | undefined;
  /** Messages sent before the stream is open (it opens once the first message says which instance, and so which certificate). */
  #pending: (ProxyMessage | Record<string, unknown>)[] | undefined = [];
  #closed = false;
  #cert: WorkloadCertificate | undefined;

  constructor(readonly target: string) {}

  /** Opens the stream: mTLS with the certificate of the hello's instance (none for a first message that is not a hello, or an undeclared instance). */
  async #open(first: ProxyMessage | Record<string, unknown>): Promise<void> {
    const cp = planes.get(this.target);
    if (!cp) throw new Error(`no test control plane at ${this.target}`);
    const instance = (first as { type?: string; instance?: unknown }).type === 'hello' ? (first as { instance?: unknown }).instance : undefined;
    const cert = this.#cert ?? (typeof instance === 'string' && instance ? await certificateFor(this.target, instance) : undefined);
    const roots = Buffer.from(cp.identity.trustBundle().join('\n'));
    const creds = credentials.createSsl(roots, cert ? Buffer.from(cert.keyPem) : null, cert ? Buffer.from(cert.certChainPem) : null, { checkServerIdentity: () => undefined });
    if (this.#closed) return;
    this.#client = new Client(this.target, creds, STREAM_CHANNEL_OPTIONS);
    const call = (this.#call = this.#client.makeBidiStreamRequest(meshService.stream.path, meshService.stream.requestSerialize, meshService.stream.responseDeserialize, new Metadata()));
    call.on('metadata', () => (this.headers = true));
    call.on('data', (m: ControlMessage) => this.received.push(m));
    call.on('end', () => (this.ended = true));
    call.on('error', () => (this.ended = true));
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    for (const m of pending) call.write(m as ProxyMessage);
  }

  /** Opens a stream with the given certificate (whoever it names) and says hello for `instance`. */
  static withCertificate(target: string, cert: WorkloadCertificate, instance: string, inbound: string): StreamClient {
    const c = new StreamClient(target);
    c.#cert = cert;
    c.send({ type: 'hello', instance, proxyVersion: 'test', listeners: { inbound } });
    return c;
  }

  /** Opens a stream and says hello for `instance`, listening on `inbound`. */
  static hello(target: string, instance: string, inbound: string, extra: Partial<HelloMessage> = {}): StreamClient {
    const c = new StreamClient(target);
    c.send({ type: 'hello', instance, proxyVersion: 'test', listeners: { inbound }, ...extra });
    return c;
  }

  send(m: ProxyMessage | Record<string, unknown>): void {
    if (this.#call) { this.#call.write(m as ProxyMessage); return; }
    const first = this.#pending!.length === 0;
    this.#pending!.push(m);
    if (first) void this.#open(m).catch((e: Error) => { this.ended = true; this.received.push({ type: 'refused', code: 'TEST', reason: e.message }); });
  }

  snapshots(): SnapshotMessage[] {
    return this.received.filter((m): m is SnapshotMessage => m.type === 'snapshot');
  }

  /** The next snapshot after the first `after` ones. */
  async snapshot(after = 0, ms = 3000): Promise<SnapshotMessage> {
    return waitFor(`snapshot #${after + 1}`, () => this.snapshots()[after], ms);
  }

  ack(m: SnapshotMessage): void {
    this.send({ type: 'ack', version: m.version, nonce: m.nonce });
  }

  close(): void {
    this.#closed = true;
    this.#call?.end();
    this.#call?.cancel();
    this.#client?.close();
  }
}

export const SHOP = `
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
    workloads:
    - { name: api-v1, labels: { version: v1 }, replicas: 2, command: [node, api.js] }
    - { name: api-v2, labels: { version: v2 }, command: [node, api.js] }
  - name: funds-transfer
    ports: [{ name: http, port: 8080 }]
    workloads:
    - { name: funds-transfer, labels: { group: fundsTransfer }, command: [node, f.js] }
  - name: debit-credit
    ports: [{ name: http, port: 8080 }]
    command: [node, d.js]
  - name: tool
    namespace: ops
    ports: [{ name: http, port: 9000 }]
    command: [node, t.js]
`;

/** A VirtualService for api in shop, visible to shop only, with a v1/v2 split. */
export function apiSplit(v1: number, v2: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  exportTo: ["."]
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  exportTo: ["."]
  http:
  - route:
    - { destination: { host: api, subset: v1 }, weight: ${v1} }
    - { destination: { host: api, subset: v2 }, weight: ${v2} }
`;
}

/** The identity of an in-process proxy for `instance` (join token minted by the test control plane), feeding `dp` its certificates. */
export function identityFor(t: { grpc: string; cp: ControlPlane }, instance: string, dp: { setCertificate(c: { keyPem: string; certChainPem: string }): void; setTrustBundle(b: readonly string[]): void }): IdentityClient {
  return new IdentityClient({
    controlPlane: t.grpc, instance, joinToken: t.cp.mintJoinToken(instance),
    onCertificate: (c) => { dp.setCertificate({ keyPem: c.keyPem, certChainPem: c.certChainPem }); dp.setTrustBundle(c.trustBundle); },
  });
}
