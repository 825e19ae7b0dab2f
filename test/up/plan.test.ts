/** What `trellis up` plans for a configuration: instances, gateways, ports, environment. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appEnv, meshProcessEnv, planMesh, portsNeeded } from '../../src/cli/up/plan.js';
import { controlPlaneArgs, gatewayArgs, sidecarArgs } from '../../src/cli/up/launch.js';
import { meshFromFiles, meshFromYaml } from '../helpers/mesh.js';

const counter = () => { let n = 20000; return () => ++n; };

test('examples/bank: 11 instances over two zones, the accounts canary, one ingress gateway', () => {
  const { config, registry, diagnostics } = meshFromFiles('examples/bank');
  assert.deepEqual(diagnostics.filter((d) => d.level === 'error'), []);
  const plan = planMesh(config, registry, counter());
  assert.deepEqual(plan.warnings, []);
  assert.deepEqual(plan.instances.map((i) => [i.instance, i.service, i.version, i.zone]), [
    ['frontend.bank#0', 'frontend', '', 'eu-west-a'],
    ['frontend.bank#1', 'frontend', '', 'eu-west-b'],
    ['funds-transfer.bank#0', 'funds-transfer', '', 'eu-west-a'],
    ['funds-transfer.bank#1', 'funds-transfer', '', 'eu-west-b'],
    ['debit-credit.bank#0', 'debit-credit', '', 'eu-west-a'],
    ['debit-credit.bank#1', 'debit-credit', '', 'eu-west-b'],
    ['accounts-v1.bank#0', 'accounts', 'v1', 'eu-west-a'],
    ['accounts-v1.bank#1', 'accounts', 'v1', 'eu-west-b'],
    ['accounts-v2.bank', 'accounts', 'v2', 'eu-west-b'],
    ['notifications.bank#0', 'notifications', '', 'eu-west-a'],
    ['notifications.bank#1', 'notifications', '', 'eu-west-b'],
  ]);
  assert.ok(plan.instances.every((i) => i.healthPath === '/healthz'));
  assert.deepEqual(plan.gateways.map((g) => [g.instance, g.gateways, Object.keys(g.listen), g.httpPorts]), [['ingressgateway.istio-system', ['bank/bank-gateway'], ['80'], [80]]]);
  const all = [plan.controlPlane.grpcPort, plan.controlPlane.adminPort, ...plan.gateways.flatMap((g) => [g.adminPort, ...Object.values(g.listen)]),
    ...plan.instances.flatMap((i) => [i.appPort, i.inboundPort, i.outboundPort, i.adminPort])];
  assert.equal(new Set(all).size, all.length, 'every process gets its own ports');
  assert.equal(portsNeeded(config, registry), all.length);
});

test('the command lines follow docs/running-mesh.md', () => {
  const { config, registry } = meshFromFiles('examples/bank');
  const plan = planMesh(config, registry, counter());
  const i = plan.instances.find((x) => x.instance === 'accounts-v2.bank')!;
  const cp = `127.0.0.1:${plan.controlPlane.grpcPort}`;
  assert.deepEqual(controlPlaneArgs(plan, '/app', '/state'), ['control-plane', '--config', '/app', '--grpc-port', String(plan.controlPlane.grpcPort), '--admin-port', String(plan.controlPlane.adminPort), '--state-dir', '/state']);
  assert.deepEqual(sidecarArgs(plan, i, '/state'), ['proxy', '--instance', 'accounts-v2.bank', '--identity-dir', '/state/identity/accounts-v2.bank', '--control-plane', cp, '--inbound-port', String(i.inboundPort), '--outbound-port', String(i.outboundPort), '--admin-port', String(i.adminPort), '--app-port', String(i.appPort), '--health-path', '/healthz', '--health-interval', '500ms']);
  const g = plan.gateways[0]!;
  assert.deepEqual(gatewayArgs(plan, g, '/state'), ['proxy', '--gateway', '--instance', 'ingressgateway.istio-system', '--identity-dir', '/state/identity/ingressgateway.istio-system', '--control-plane', cp, '--admin-port', String(g.adminPort), '--listen', `80=${g.listen[80]}`]);
});

test("the app's environment: the mesh's variables, the manifest's env, the version label", () => {
  const { config, registry } = meshFromFiles('examples/bank');
  const plan = planMesh(config, registry, counter());
  const i = plan.instances.find((x) => x.instance === 'accounts-v1.bank#1')!;
  const env = appEnv(i, { PATH: '/bin', PORT: 'from-parent' });
  assert.deepEqual(env, {
    PATH: '/bin', HTTP_PROXY: `http://127.0.0.1:${i.outboundPort}`, http_proxy: `http://127.0.0.1:${i.outboundPort}`, TRELLIS_OUTBOUND: `http://127.0.0.1:${i.outboundPort}`, PORT: String(i.appPort),
    SERVICE: 'accounts', WORKLOAD: 'accounts-v1', NAMESPACE: 'bank', INSTANCE: 'accounts-v1.bank#1', VERSION: 'v1',
  });
});

const APP = `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: t }
spec:
  namespace: shop
  services:
  - name: web
    ports: [{ name: http, port: 80 }]
    command: node web.js
    env: { PORT: "1", VERSION: mine }
`;

test('the control plane and proxies run without the shell\'s proxy variables', () => {
  assert.deepEqual(meshProcessEnv({ PATH: '/bin', HTTP_PROXY: 'x', http_proxy: 'x', HTTPS_PROXY: 'x', grpc_proxy: 'x', NO_PROXY: 'y' }), { PATH: '/bin', NO_PROXY: 'y' });
});

test('a manifest env the mesh overrides is warned about; VERSION stays when there is no version label', () => {
  const { config, registry } = meshFromYaml(APP);
  const plan = planMesh(config, registry, counter());
  assert.deepEqual(plan.warnings, ['web.shop: env PORT is set by trellis up; the manifest\'s value is ignored']);
  const i = plan.instances[0]!;
  assert.deepEqual([i.instance, i.command, i.healthPath], ['web.shop', 'node web.js', undefined]);
  assert.deepEqual(sidecarArgs(plan, i, '/state').slice(-3), ['--health-tcp', '--health-interval', '500ms'], 'without a health path the sidecar checks the app with a TCP connect');
  const env = appEnv(i, {});
  assert.deepEqual([env.PORT, env.VERSION], [String(i.appPort), 'mine']);
});

test('a Gateway that selects nothing is a warning; one that selects an App workload is an error', () => {
  const gw = (sel: string) => `
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: edge, namespace: shop }
spec:
  selector: { ${sel} }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
`;
  const none = meshFromYaml(APP + gw('istio: nothing'));
  assert.match(planMesh(none.config, none.registry, counter()).warnings.join('\n'), /Gateway shop\/edge selects no workload/);
  const app = meshFromYaml(APP + gw('app: web'));
  assert.throws(() => planMesh(app.config, app.registry, counter()), /App workload web\.shop is selected by Gateway shop\/edge: a gateway runs no app command/);
});
