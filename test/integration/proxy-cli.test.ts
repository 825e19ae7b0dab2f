/** `trellis proxy` as a process: usage errors, refusal exit status, gateway mode, SIGTERM. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MAIN, Proc } from './processes.js';
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

test('an instance the configuration does not declare gets no token, and its proxy exits with status 3 saying why', async () => {
  const mint = spawnSync(process.execPath, [MAIN, 'token', 'create', 'api-v3.shop', '--config', mesh.config.path, '--state-dir', mesh.stateDir], { encoding: 'utf8' });
  assert.equal(mint.status, 2, mint.stderr);
  assert.match(mint.stderr, /the configuration declares no instance "api-v3\.shop"; did you mean "api-v2\.shop"/);
  const proc = mesh.procs.add(Proc.trellis('proxy api-v3', ['proxy', '--control-plane', `127.0.0.1:${mesh.grpcPort}`, '--instance', 'api-v3.shop']));
  const exit = await proc.exited;
  assert.equal(exit.code, 3, proc.tail());
  assert.match(proc.out, /registration refused TRL1208: no join token, and no valid certificate: start the proxy with --join-token \(trellis token create api-v3\.shop\)/);
});

test('a join token joins once: replayed, it is refused by the control plane with a clear log line, and the proxy exits 3', async () => {
  const mint = spawnSync(process.execPath, [MAIN, 'token', 'create', 'api-v2.shop', '--config', mesh.config.path, '--state-dir', mesh.stateDir], { encoding: 'utf8' });
  assert.equal(mint.status, 0, mint.stderr);
  const token = /^api-v2\.shop (\S+)$/m.exec(mint.stdout)?.[1];
  assert.ok(token?.startsWith('trellis-join.v1.'), mint.stdout);
  const first = mesh.procs.add(Proc.trellis('proxy api-v2 first', ['proxy', '--control-plane', `127.0.0.1:${mesh.grpcPort}`, '--instance', 'api-v2.shop', '--join-token', token!]));
  await first.line(/certificate spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api valid until/, 8000);
  await first.line(/snapshot applied/, 8000);
  await first.stop();
  const before = mesh.cp!.out.length;
  const again = mesh.procs.add(Proc.trellis('proxy api-v2 replay', ['proxy', '--control-plane', `127.0.0.1:${mesh.grpcPort}`, '--instance', 'api-v2.shop', '--join-token', token!]));
  assert.equal((await again.exited).code, 3, again.tail());
  assert.match(again.out, /join token refused \(replayed\)/);
  await mesh.cp!.line(/certificate refused instance=api-v2\.shop peer=\S+: join token refused \(replayed\): join token for instance "api-v2\.shop" refused: it was already used at /, 3000, before);
  assert.ok(!mesh.cp!.out.slice(before).includes(token!.split('.').at(-1)!), 'the secret is not logged');

  // A token for one instance cannot join another: the proxy checks before it dials.
  const other = spawnSync(process.execPath, [MAIN, 'token', 'create', 'web.shop', '--config', mesh.config.path, '--state-dir', mesh.stateDir, '-o', 'json'], { encoding: 'utf8' });
  const webToken = (JSON.parse(other.stdout) as { token: string }[])[0]!.token;
  const wrong = mesh.procs.add(Proc.trellis('proxy wrong', ['proxy', '--control-plane', `127.0.0.1:${mesh.grpcPort}`, '--instance', 'api-v2.shop', '--join-token', webToken!]));
  assert.equal((await wrong.exited).code, 3, wrong.tail());
  assert.match(wrong.out, /the join token is for instance "web\.shop", not "api-v2\.shop"/);
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
