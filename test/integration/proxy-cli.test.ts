/** `trellis proxy` as a process: usage errors, refusal exit status, gateway mode, SIGTERM. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MAIN } from './processes.js';
import { getJson } from './processes.js';
import { MESH_APP, RunningMesh } from './running-mesh.js';

const GATEWAY = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ingress, namespace: shop }
spec: { address: 127.0.0.1, labels: { istio: ingressgateway }, serviceAccount: ingress }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: shop, namespace: shop }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: front, namespace: shop }
spec:
  hosts: ["*"]
  gateways: [shop]
  http: [{ route: [{ destination: { host: api, port: { number: 8080 } } }] }]
`;

let mesh: RunningMesh;
before(async () => {
  mesh = new RunningMesh({ 'app.yaml': MESH_APP, 'gateway.yaml': GATEWAY });
  await mesh.startControlPlane(['--registration-grace', '0s']);
});
after(async () => {
  await mesh?.close();
});

const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'proxy', ...args], { encoding: 'utf8', timeout: 10_000 });

test('--help explains the flags, gateway mode and the refusal exit status', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  const text = r.stdout.replace(/\s+/g, ' ');
  for (const s of ['--control-plane', '--instance', '--inbound-port', '--outbound-port', '--admin-port', '--app-port', '--health-path', '--health-tcp', '--leave-timeout', '--drain-timeout', '--gateway', '--listen', 'exits with status 3', 'drained']) assert.ok(text.includes(s), s);
});

test('usage errors exit 2 and say what to do', () => {
  const cases: [string[], RegExp][] = [
    [['--control-plane', 'x:1', '--instance', 'a.b', '--listen', '80=0'], /--listen is for --gateway mode/],
    [['--control-plane', 'x:1', '--instance', 'a.b', '--health-path', '/h'], /--health-path needs --app-port/],
    [['--control-plane', 'x:1', '--instance', 'a.b', '--health-tcp'], /--health-tcp needs --app-port/],
    [['--control-plane', 'x:1', '--instance', 'a.b', '--app-port', '1', '--health-tcp', '--health-path', '/h'], /--health-tcp and --health-path exclude each other/],
    [['--control-plane', 'x:1', '--instance', 'a.b', '--gateway', '--listen', '80'], /--listen takes <serverPort>=<localPort>/],
    [['--control-plane', 'x:1', '--instance', 'a.b', '--claim-label', 'group'], /--claim-label takes key=value/],
  ];
  for (const [args, msg] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
});

test('an unknown instance exits with status 3 and the control plane\'s reason', async () => {
  const s = await mesh.startSidecar('api-v3.shop');
  const exit = await s.proc.exited;
  assert.equal(exit.code, 3, s.proc.tail());
  assert.match(s.proc.out, /registration refused TRL1201: instance "api-v3\.shop" is not declared by the configuration; did you mean "api-v2\.shop"/);
});

test('gateway mode: no inbound listener, one listener per --listen, registered as a gateway; SIGTERM exits 0', async () => {
  const app = await mesh.startApp('api-v2.shop');
  await mesh.startSidecar('api-v2.shop', app);
  const gw = await mesh.startSidecar('ingress.shop', undefined, ['--gateway', '--listen', '80=0']);
  assert.equal(gw.inbound, '-');
  const port = Number(/gateway=80=127\.0\.0\.1:(\d+)/.exec(gw.proc.out)?.[1]);
  assert.ok(port > 0, gw.proc.out);
  await mesh.synced(['ingress.shop', 'api-v2.shop']);
  const row = (await mesh.proxies()).find((p) => p.instance === 'ingress.shop') as unknown as { kind: string; listeners: { inbound: string } };
  assert.equal(row.kind, 'gateway');
  assert.equal(row.listeners.inbound, '');
  const eps = (await getJson<{ instance: string; address: string | null }[]>(mesh.admin, '/endpoints')).body;
  assert.ok(!eps.some((e) => e.instance === 'ingress.shop'), 'a gateway is no endpoint of any service');
  let body = '';
  for (let i = 0; i < 50 && body !== 'api-v2.shop'; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { host: 'shop.example.com' } });
    body = await res.text();
    if (body !== 'api-v2.shop') await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(body, 'api-v2.shop', 'the gateway routes to api through its sidecar');
  gw.proc.signal('SIGTERM');
  assert.deepEqual(await gw.proc.exited, { code: 0, signal: null });
});
