/**
 * Two real data planes for the telemetry tests: web-v1's sidecar (the
 * caller) and api-v2's sidecar in front of a real app, with telemetry
 * options of the test's choosing. The app answers 503 on /fail, gRPC
 * NOT_FOUND (trailers-only) on /pkg.Svc/Get, and echoes everything else.
 */
import { compile } from '../../src/compile/index.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import type { DataPlane } from '../../src/proxy/types.js';
import type { TelemetryOptions } from '../../src/telemetry/proxy-telemetry.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';
import { Client, echo, startApp, withEndpoints, type App } from '../helpers/proxy.js';

export interface TwoProxies {
  readonly app: App;
  readonly caller: DataPlane;
  readonly callee: DataPlane;
  readonly client: Client;
  close(): Promise<void>;
}

/** A MeshConfig document for `extraYaml`, with `spec` lines as given (indented by two spaces). */
export const meshConfigYaml = (spec: string): string => `---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
${spec}`;

/** A Telemetry document named `name` in `namespace`, with `spec` lines as given (indented by two spaces). */
export const telemetryYaml = (name: string, namespace: string, spec: string): string => `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${spec}`;

/** `extraYaml`: more resources for the mesh (a MeshConfig, say). */
export async function startTwoProxies(caller: TelemetryOptions, callee: TelemetryOptions, extraYaml = ''): Promise<TwoProxies> {
  const mesh = meshFromYaml(TWO_SERVICES + extraYaml);
  const app = await startApp('api-v2.shop', (req, res, a) => {
    if (req.url === '/fail') { req.resume(); res.writeHead(503, { 'content-type': 'text/plain' }); res.end('down\n'); return; }
    // A trailers-only gRPC answer: NOT_FOUND in the headers.
    if (req.url === '/pkg.Svc/Get') { req.resume(); res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': '5' }); res.end(); return; }
    echo(req, res, a);
  });
  const calleeDp = createDataPlane({ mode: 'sidecar', appPort: app.port, telemetry: callee, mtlsWithoutCertificate: 'plaintext' });
  await calleeDp.start();
  const own = calleeDp.apply(compile(mesh.config, mesh.registry, { workload: 'api-v2', namespace: 'shop' }));
  if (!own.ok) throw new Error(own.reason);
  const [address, port] = calleeDp.addresses.inbound!.split(':');
  const callerDp = createDataPlane({ mode: 'sidecar', telemetry: caller, mtlsWithoutCertificate: 'plaintext' });
  await callerDp.start();
  const snap = withEndpoints(compile(mesh.config, mesh.registry, { workload: 'web-v1', namespace: 'shop' }), {
    'api-v2.shop': { address: address!, port: Number(port), health: 'HEALTHY' },
  });
  const r = callerDp.apply(snap);
  if (!r.ok) throw new Error(r.reason);
  const client = new Client(callerDp.addresses.outbound!);
  return {
    app, caller: callerDp, callee: calleeDp, client,
    async close() {
      await client.close();
      await callerDp.close(100);
      await calleeDp.close(100);
      await app.close();
    },
  };
}

export async function scrape(dp: DataPlane, accept?: string): Promise<{ type: string | null; text: string }> {
  const r = await fetch(`http://${dp.addresses.admin}/metrics`, accept ? { headers: { accept } } : {});
  return { type: r.headers.get('content-type'), text: await r.text() };
}
