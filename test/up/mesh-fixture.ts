/** A small app directory for `trellis up` tests, run with the fake control plane and proxies. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ConfigSet } from '../../src/api/config-set.js';
import { loadMesh } from '../../src/cli/mesh-input.js';
import { planMesh, portsNeeded, type MeshPlan } from '../../src/cli/up/plan.js';
import { allocatePorts, PortPool } from '../../src/cli/up/ports.js';
import { FAKE_APP, tempDir } from './helpers.js';

export function appDir(): string {
  const dir = tempDir('trellis-app-');
  writeFileSync(join(dir, 'app.yaml'), `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: shop }
spec:
  namespace: shop
  services:
  - name: web
    ports: [{ name: http, port: 8080 }]
    health: { path: /healthz }
    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FAKE_APP)}]
    env: { GREETING: hello }
    replicas: 2
    placement: [{ region: r, zone: r-a }, { region: r, zone: r-b }]
  - name: api
    ports: [{ name: http, port: 9090 }]
    health: { path: /healthz }
    workloads:
    - name: api-v1
      labels: { version: v1 }
      command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FAKE_APP)}]
  - name: worker
    ports: [{ name: tcp, port: 7000 }]
    command: exec ${JSON.stringify(process.execPath)} ${JSON.stringify(FAKE_APP)}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: edge, namespace: shop }
spec: { address: 127.0.0.1, labels: { istio: ingressgateway } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: shop }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
`);
  return dir;
}

export async function planFor(dir: string): Promise<{ plan: MeshPlan; config: ConfigSet }> {
  const { config, registry, diagnostics } = loadMesh([dir]);
  const errors = diagnostics.filter((d) => d.level === 'error');
  if (errors.length) throw new Error(`fixture config has errors: ${errors.map((e) => e.message).join('; ')}`);
  const pool = new PortPool(await allocatePorts(portsNeeded(config, registry)));
  return { plan: planMesh(config, registry, () => pool.next()), config };
}

/** A writable that keeps what was written. */
export function capture(): Writable & { text(): string } {
  let buf = '';
  const w = new Writable({ write(chunk, _enc, cb) { buf += String(chunk); cb(); } }) as Writable & { text(): string };
  w.text = () => buf;
  return w;
}
