/**
 * The mesh scenario's processes, as a user runs them (docs/running-mesh.md):
 * `trellis control-plane` on a config dir holding one App manifest, and two
 * `trellis proxy` sidecars — `client.bench`, whose outbound listener the load
 * generator calls like an app would (routing by Host `upstream:8080`), and
 * `upstream.bench`, whose inbound listener forwards to the nginx upstream.
 * No health checks (a proxy without one registers healthy), so that the
 * sidecars do nothing but carry the load.
 *
 * Plaintext between the sidecars until mTLS lands; then `MeshOptions.mtls`
 * is where a `mesh-mtls` scenario turns it on (a PeerAuthentication STRICT
 * file in `configFiles`), and the nginx scenario gets the same certificates.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROXY_NODE_FLAGS } from '../../src/cli/proxy-process.js';
import type { Child, Children } from './children.js';
import { answers200 } from './probe.js';

export const TRELLIS_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The Host header the load generator sends to the caller's outbound listener. */
export const UPSTREAM_AUTHORITY = 'upstream:8080';

const APP = `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: bench }
spec:
  namespace: bench
  services:
  - name: client
    ports: [{ name: http, port: 8080 }]
    command: [the-load-generator]
  - name: upstream
    ports: [{ name: http, port: 8080 }]
    command: [nginx]
`;

export interface MeshOptions {
  /** Where the config dir and state dir go. */
  readonly dir: string;
  readonly upstreamPort: number;
  /** When set, the sidecars run under `node --cpu-prof` and write their profiles here on exit. */
  readonly profileDir?: string;
  /** Not yet: mTLS between the sidecars (the security issue). */
  readonly mtls?: false;
}

export interface Mesh {
  readonly controlPlane: Child;
  /** The caller's sidecar: its outbound listener takes the load. */
  readonly outbound: Child;
  /** The callee's sidecar: its inbound listener forwards to the upstream. */
  readonly inbound: Child;
  /** The outbound listener, 127.0.0.1:port. */
  readonly entryPort: number;
}

function configFiles(): Record<string, string> {
  return { 'app.yaml': APP };
}

export async function startMesh(children: Children, o: MeshOptions): Promise<Mesh> {
  const config = join(o.dir, 'config');
  mkdirSync(config, { recursive: true });
  for (const [name, text] of Object.entries(configFiles())) writeFileSync(join(config, name), text);
  const cp = children.start('trellis control-plane', process.execPath, [
    TRELLIS_MAIN, 'control-plane', '--config', config, '--grpc-port', '0', '--admin-port', '0',
    '--state-dir', join(o.dir, 'state'), '--registration-grace', '0s',
  ]);
  const grpc = (await cp.line(/listening grpc=(\S+) admin=\S+/, 15_000))[1]!;
  const sidecar = async (instance: string, extra: string[]) => {
    const node = o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${instance}.cpuprofile`] : [];
    const c = children.start(`trellis proxy ${instance}`, process.execPath, [
      ...node, ...PROXY_NODE_FLAGS, TRELLIS_MAIN, 'proxy', '--control-plane', grpc, '--instance', instance,
      '--leave-timeout', '2s', '--drain-timeout', '1s', ...extra,
    ]);
    const m = await c.line(/listening inbound=(\S+) outbound=(\S+) admin=\S+/, 15_000);
    return { c, outbound: m[2]! };
  };
  const [inbound, outbound] = await Promise.all([
    sidecar('upstream.bench', ['--app-port', String(o.upstreamPort)]),
    sidecar('client.bench', []),
  ]);
  const entryPort = Number(outbound.outbound.split(':')[1]);
  // Ready when a call goes all the way through: the caller's snapshot has the callee's endpoint.
  await answers200(entryPort, UPSTREAM_AUTHORITY, outbound.c, 20_000);
  return { controlPlane: cp, outbound: outbound.c, inbound: inbound.c, entryPort };
}
