import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';
import { tempDir } from '../up/helpers.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
function trellis(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('trellis --help lists the commands; every command has its own --help', () => {
  const top = trellis('--help');
  assert.equal(top.code, 0);
  for (const c of ['validate', 'explain', 'compile', 'defaults', 'codes']) {
    assert.match(top.out, new RegExp(`\\b${c}\\b`));
    const h = trellis(c, '--help');
    assert.equal(h.code, 0, c);
    assert.match(h.out, /Usage: trellis /);
  }
});

test('trellis validate accepts the bundled example and exits 0', () => {
  const r = trellis('validate', 'examples/bank');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /0 errors/);
});

test('trellis validate names file, line, column, code and field of a bad edit, and exits 1', () => {
  const dir = tempDir('trellis-cli-');
  writeFileSync(join(dir, 'vs.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: web }\nspec:\n  hosts: [web]\n  http:\n  - timeout: forever\n    route: [{ destination: { host: web } }]\n');
  const r = trellis('validate', dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /vs\.yaml:7:14: error TRL0106 VirtualService default\/web spec\.http\[0\]\.timeout: .*not a valid duration/);
  const j = trellis('validate', dir, '-o', 'json');
  assert.equal(j.code, 1);
  const doc = JSON.parse(j.out);
  assert.equal(doc.errors, 1);
  assert.equal(doc.diagnostics[0].field, 'spec.http[0].timeout');
});

test('trellis explain shows the route, the split and the endpoints', () => {
  const r = trellis('explain', 'examples/bank', '--from', 'frontend', 'GET', 'http://accounts:8080/balance');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /route\s+"split"/);
  assert.match(r.out, /outbound\|8080\|v1\|accounts\.bank\.svc\.cluster\.local\s+90%/);
  assert.match(r.out, /outbound\|8080\|v2\|accounts\.bank\.svc\.cluster\.local\s+10%/);
  const canary = trellis('explain', 'examples/bank', '--from', 'frontend', 'GET', 'http://accounts:8080/', '-H', 'x-canary: true', '-o', 'json');
  assert.equal(canary.code, 0, canary.err);
  const sim = JSON.parse(canary.out);
  assert.equal(sim.route.name, 'canary-opt-in');
  assert.deepEqual(sim.clusters.map((c: { name: string; percent: number }) => [c.name, c.percent]), [['outbound|8080|v2|accounts.bank.svc.cluster.local', 100]]);
});

test('trellis explain with an unknown workload says which workloads exist', () => {
  const r = trellis('explain', 'examples/bank', '--from', 'nobody', 'GET', 'http://accounts:8080/');
  assert.equal(r.code, 1);
  assert.match(r.err, /TRL1009.*no workload "nobody".*frontend\.bank/);
});

test('trellis compile --dump prints the stable snapshot JSON, identical on every run', () => {
  const a = trellis('compile', 'examples/bank', '--proxy', 'frontend', '--dump');
  const b = trellis('compile', 'examples/bank', '--proxy', 'frontend.bank', '--dump');
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  const snap = JSON.parse(a.out);
  assert.equal(snap.schema, 'trellis.dev/snapshot/v1');
  assert.equal(snap.node.identity, 'spiffe://bank.example/ns/bank/sa/frontend');
  assert.deepEqual(Object.keys(snap), [...Object.keys(snap)].sort(), 'keys are sorted');
  assert.ok(snap.clusters.some((c: { name: string }) => c.name === 'outbound|8080|v2|accounts.bank.svc.cluster.local'));
  const summary = trellis('compile', 'examples/bank', '--proxy', 'frontend');
  assert.match(summary.out, /version [0-9a-f]{16}/);
});

test('trellis codes lists the catalogue and explains one code', () => {
  const all = trellis('codes', '-o', 'json');
  assert.equal(all.code, 0);
  const codes = JSON.parse(all.out) as { code: string; level: string; docs: string }[];
  assert.ok(codes.some((c) => c.code === 'TRL0106' && c.level === 'error'));
  const one = trellis('codes', 'trl1002');
  assert.equal(one.code, 0);
  assert.match(one.out, /TRL1002\s+error\s+UnknownField/);
  assert.equal(trellis('codes', 'TRL9999').code, 1);
});

test('trellis validate rejects a RateLimitPolicy whose target Service does not exist, at the line of the name, and exits 1', () => {
  const dir = tempDir('trellis-cli-');
  writeFileSync(join(dir, 'limits.yaml'), 'apiVersion: trellis.dev/v1alpha1\nkind: RateLimitPolicy\nmetadata: { name: l, namespace: bank }\nspec:\n  targetRef: { kind: Service, name: nosuch }\n  limits:\n  - name: per-caller\n    rate: { requests: 20 }\n');
  const bad = trellis('validate', 'examples/bank', dir);
  assert.equal(bad.code, 1, bad.err);
  assert.match(bad.err, /limits\.yaml:5:\d+: error TRL\d+ RateLimitPolicy bank\/l spec\.targetRef\.name: .*"nosuch"/);
  writeFileSync(join(dir, 'limits.yaml'), 'apiVersion: trellis.dev/v1alpha1\nkind: RateLimitPolicy\nmetadata: { name: l, namespace: bank }\nspec:\n  targetRef: { kind: Service, name: accounts }\n  limits:\n  - name: per-caller\n    rate: { requests: 20 }\n');
  const good = trellis('validate', 'examples/bank', dir);
  assert.equal(good.code, 0, good.err);
});

test('trellis explain --claims: a gateway routes on JWT claims as a valid token would give them; bad JSON is a usage error', () => {
  const dir = tempDir('trellis-cli-');
  writeFileSync(join(dir, 'mesh.yaml'), `apiVersion: v1
kind: Service
metadata: { name: admin, namespace: default }
spec: { selector: { app: admin }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: admin-v1, namespace: default }
spec: { selector: { matchLabels: { app: admin } }, template: { metadata: { labels: { app: admin } }, spec: { containers: [{ name: app, image: admin }] } } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [public]
  http:
  - name: by-group
    match: [{ headers: { "@request.auth.claims.group": { exact: admins } } }]
    route: [{ destination: { host: admin.default.svc.cluster.local } }]
  - name: rest
    directResponse: { status: 404 }
`);
  const args = (...more: string[]) => ['explain', dir, join(ROOT, 'test/fixtures/ingress-gateway.yaml'), '--from', 'istio-ingressgateway.istio-system', ...more, '-o', 'json', 'GET', 'http://shop.example.com:8080/'];
  const none = trellis(...args());
  assert.equal(none.code, 0, none.err);
  assert.equal((JSON.parse(none.out) as { route: { name: string } }).route.name, 'rest');
  const admins = trellis(...args('--claims', '{"group":"admins"}'));
  assert.equal(admins.code, 0, admins.err);
  assert.equal((JSON.parse(admins.out) as { route: { name: string } }).route.name, 'by-group');
  const bad = trellis(...args('--claims', '{group'));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--claims must be a JSON object/);
});
