/**
 * Zero-trust test helpers on top of the mTLS mesh (mtls-mesh.ts): apply a
 * callee's snapshot compiled again with extra YAML (an AuthorizationPolicy),
 * restore its own, and push bytes through a TCP upstream local port to see
 * whether the tunnel carried them or was closed.
 */
import { connect } from 'node:net';
import { compile } from '../../src/compile/index.js';
import { meshFromYaml } from './mesh.js';
import type { MtlsMesh } from './mtls-mesh.js';

/** Applies to `instance`'s sidecar its snapshot compiled from the mesh's YAML plus `extra`; returns a function that restores its own. */
export function applyCalleeYaml(m: MtlsMesh, instance: string, extra: string): () => void {
  const c = m.callee(instance);
  const mesh = meshFromYaml(`${m.opts.yaml}---\n${extra}`);
  const s = compile(mesh.config, mesh.registry, { workload: c.snapshot.node.workload, namespace: c.snapshot.node.namespace });
  const r = c.proxy.apply(s);
  if (!r.ok) throw new Error(`snapshot rejected: ${r.reason}`);
  return () => {
    const back = c.proxy.apply(c.snapshot);
    if (!back.ok) throw new Error(`snapshot rejected: ${back.reason}`);
  };
}

/** What a TCP client of a local port saw: the bytes echoed, whether the far side closed first, or whether time ran out. */
export interface TcpProbe {
  readonly echoed: string;
  /** The far side ended or reset the connection before the line came back. */
  readonly closedByPeer: boolean;
  readonly timedOut: boolean;
}

/**
 * Connects to `127.0.0.1:<port>`, writes `line`, and waits until the line
 * comes back (then closes) or the far side closes the connection, at most `ms`.
 */
export function probeTcp(port: number, line: string, ms = 5_000): Promise<TcpProbe> {
  return new Promise((resolve) => {
    let echoed = '';
    let timedOut = false;
    let ours = false;
    const s = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { timedOut = true; s.destroy(); }, ms);
    s.on('data', (c: Buffer) => {
      echoed += c.toString();
      if (echoed.includes(line)) { ours = true; s.end(); }
    });
    s.on('error', () => undefined);
    s.once('close', () => {
      clearTimeout(timer);
      resolve({ echoed, closedByPeer: !ours && !timedOut, timedOut });
    });
    s.write(line);
  });
}
