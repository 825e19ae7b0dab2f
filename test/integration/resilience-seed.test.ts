/**
 * The seed's resilience cases on a running mesh of real processes (a
 * `trellis control-plane` and a `trellis proxy` beside every instance):
 *
 * 1. A three-service sequence a → b → c, each app a node:http server that
 *    calls the next through its own sidecar. b-v1 is slowed by fault
 *    injection (c's VirtualService delays the calls whose source is
 *    version v1, at b-v1's sidecar, as Istio injects on the caller's side);
 *    a's route to b has a timeout and retries with a per-try timeout, so
 *    every answer still comes, from b-v2, within the limit. Counted: the
 *    tries at b-v1 (each abandoned, never reaching c), a's retries. When
 *    every b is slow, a's route timeout answers 504 UT within its bound.
 * 2. A replica of api killed (SIGKILL of its app process) under load (1000
 *    requests, 8 callers) with retries on connect-failure,reset,503: no
 *    request fails. The retries measured are printed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep, waitFor } from '../controlplane/helpers.js';
import { Proc } from './processes.js';
import { RunningMesh, usableApiEndpoints } from './running-mesh.js';

const APP = `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: shop }
spec:
  namespace: shop
  services:
  - name: a
    ports: [{ name: http, port: 8080 }]
    command: [node, a.js]
  - name: b
    ports: [{ name: http, port: 8080 }]
    workloads:
    - { name: b-v1, labels: { version: v1 }, command: [node, b.js] }
    - { name: b-v2, labels: { version: v2 }, command: [node, b.js] }
  - name: c
    ports: [{ name: http, port: 8080 }]
    command: [node, c.js]
  - name: web
    ports: [{ name: http, port: 8080 }]
    command: [node, web.js]
  - name: api
    ports: [{ name: http, port: 8080 }]
    health: { path: /healthz }
    replicas: 3
    command: [node, api.js]
`;

const PER_TRY_MS = 800;
const TIMEOUT_MS = 2000;

const ROUTING = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: b, namespace: shop }
spec:
  hosts: [b]
  http:
  - timeout: ${TIMEOUT_MS}ms
    retries: { attempts: 2, perTryTimeout: ${PER_TRY_MS}ms, retryOn: "5xx,reset,connect-failure" }
    route: [{ destination: { host: b } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: b, namespace: shop }
spec:
  host: b
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: c, namespace: shop }
spec:
  hosts: [c]
  http:
  - name: all-slow
    match: [{ uri: { prefix: /all } }]
    fault: { delay: { fixedDelay: 5s, percentage: { value: 100 } } }
    route: [{ destination: { host: c } }]
  - name: v1-slow
    match: [{ sourceLabels: { version: v1 } }]
    fault: { delay: { fixedDelay: 5s, percentage: { value: 100 } } }
    route: [{ destination: { host: c } }]
  - route: [{ destination: { host: c } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - retries: { attempts: 3, retryOn: "connect-failure,reset,503" }
    route: [{ destination: { host: api } }]
`;

const API = ['api.shop#0', 'api.shop#1', 'api.shop#2'];

/** An app's view of the chain: how many requests it got, how many of them it answered, and how many went away before that. */
interface ChainApp {
  readonly server: Server;
  port: number;
  got: number;
  answered: number;
  abandoned: number;
  paths: string[];
}

let mesh: RunningMesh;
const apps = new Map<string, ChainApp>();
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const apiProcs = new Map<string, Proc>();

/** A GET of `url` through the HTTP proxy at `proxy` (`host:port`), as an app with HTTP_PROXY does; `onStart` gets the request (to abort it). */
function viaProxy(proxy: string, url: string, onStart?: (abort: () => void) => void): Promise<{ status: number; body: string }> {
  const [host, port] = proxy.split(':');
  return new Promise((resolve) => {
    const req = request({ host, port: Number(port), path: url, headers: { host: new URL(url).host }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ status: 0, body: String(e) }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    onStart?.(() => req.destroy());
    req.end();
  });
}

/** An app of the chain: answers `<name>` for the last one, else `<name>>` and what the next service (through this instance's sidecar) answered. */
async function chainApp(instance: string, next?: string): Promise<ChainApp> {
  const app: ChainApp = { server: undefined as unknown as Server, port: 0, got: 0, answered: 0, abandoned: 0, paths: [] };
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    // The sidecar's health checks (startSidecar gives it --health-path /healthz) are not part of the chain.
    if (req.url === '/healthz') { res.end('ok'); return; }
    app.got++;
    app.paths.push(req.url ?? '');
    let done = false;
    res.on('close', () => { if (!done) app.abandoned++; });
    const answer = (status: number, body: string) => {
      if (res.destroyed) return;
      done = true;
      app.answered++;
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    };
    if (!next) { answer(200, instance); return; }
    const outbound = mesh.sidecars.get(instance)!.outbound;
    let abort: (() => void) | undefined;
    // The caller went away: so does the call to the next service (as any app that honours cancellation).
    res.on('close', () => { if (!done) abort?.(); });
    void viaProxy(outbound, `http://${next}.shop:8080${req.url}/${instance}`, (a) => (abort = a)).then((r) => answer(r.status, `${instance}>${r.body}`));
  };
  (app as { server: Server }).server = createServer(serve);
  await new Promise<void>((r) => app.server.listen(0, '127.0.0.1', r));
  app.port = (app.server.address() as AddressInfo).port;
  apps.set(instance, app);
  return app;
}

/** An api replica as its own process (so that it can be SIGKILLed): answers its name after 5 ms, and /healthz. */
function apiProcess(instance: string): Proc {
  const script = `
    const name = process.env.INSTANCE;
    require('node:http').createServer((req, res) => {
      if (req.url === '/healthz') return void res.end('ok');
      req.resume();
      req.on('end', () => setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(name); }, 5));
    }).listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });`;
  return mesh.procs.add(new Proc(`app ${instance}`, ['-e', script], { env: { INSTANCE: instance } }));
}

async function metric(instance: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${mesh.sidecars.get(instance)!.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

before(async () => {
  mesh = new RunningMesh({ 'app.yaml': APP, 'routing.yaml': ROUTING });
  await mesh.startControlPlane();
  const c = await chainApp('c.shop');
  const b1 = await chainApp('b-v1.shop', 'c');
  const b2 = await chainApp('b-v2.shop', 'c');
  const a = await chainApp('a.shop', 'b');
  const ports = new Map<string, number>();
  for (const i of API) {
    const p = apiProcess(i);
    ports.set(i, Number((await p.line(/listening (\d+)/, 8000))[1]));
    apiProcs.set(i, p);
  }
  await Promise.all([
    mesh.startSidecar('c.shop', c.port), mesh.startSidecar('b-v1.shop', b1.port), mesh.startSidecar('b-v2.shop', b2.port),
    mesh.startSidecar('a.shop', a.port), mesh.startSidecar('web.shop'),
    ...API.map((i) => mesh.startSidecar(i, ports.get(i)!)),
  ]);
  await mesh.synced(['a.shop', 'b-v1.shop', 'b-v2.shop', 'c.shop', 'web.shop', ...API]);
  await waitFor('web sees the three api replicas', async () => usableApiEndpoints(await mesh.configDump('web.shop')).length === 3 || undefined, 10_000);
  let seenB = '';
  await waitFor('a sees both b endpoints', async () => {
    const s = await mesh.configDump('a.shop');
    const eps = s?.endpoints.find((e) => e.cluster === 'outbound|8080||b.shop.svc.cluster.local')?.endpoints ?? [];
    seenB = JSON.stringify(s?.endpoints.filter((e) => e.cluster.includes('b.shop')).map((e) => [e.cluster, e.endpoints.map((x) => [x.instance, x.address, x.health])]));
    return eps.filter((e) => e.address && e.health !== 'UNHEALTHY').length === 2 || undefined;
  }, 10_000).catch((err: Error) => { throw new Error(`${err.message}; b clusters: ${seenB}`); });
});

after(async () => {
  agent.destroy();
  for (const app of apps.values()) {
    app.server.closeAllConnections();
    await new Promise((r) => app.server.close(r));
  }
  await mesh?.close();
});

/** Calls a's app directly (it is the entry of the chain); resolves with the answer and how long it took. */
function callA(path: string): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: apps.get('a.shop')!.port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - t0 }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e), ms: Date.now() - t0 }));
    req.end();
  });
}

test('seed 1: b-v1 slowed by fault injection; a\'s per-try timeout abandons its tries and the retries on b-v2 answer within the limit', async () => {
  const [a, b1, b2, c] = ['a.shop', 'b-v1.shop', 'b-v2.shop', 'c.shop'].map((i) => apps.get(i)!) as [ChainApp, ChainApp, ChainApp, ChainApp];
  const retries0 = await metric('a.shop', 'trellis_proxy_upstream_retries_total');
  const start = { b1: b1.got, b2: b2.got, c: c.got, abandoned: b1.abandoned };
  const N = 24;
  const results: { status: number; body: string; ms: number }[] = [];
  const t0 = Date.now();
  await Promise.all([0, 1, 2].map(async (w) => {
    for (let i = w; i < N; i += 3) results.push(await callA(`/seq/${i}`));
  }));
  const total = Date.now() - t0;
  const tries = { b1: b1.got - start.b1, b2: b2.got - start.b2, c: c.got - start.c };
  await waitFor('every try at b-v1 was abandoned', () => (b1.abandoned - start.abandoned === tries.b1) || undefined, 10_000);
  const retries = (await metric('a.shop', 'trellis_proxy_upstream_retries_total')) - retries0;
  console.log(`seed 1: ${N} requests in ${total} ms; tries at b-v1 ${tries.b1} (all abandoned), at b-v2 ${tries.b2}; a's retries ${retries}; calls reaching c ${tries.c}; slowest answer ${Math.max(...results.map((r) => r.ms))} ms`);
  assert.deepEqual(results.filter((r) => r.status !== 200 || r.body !== 'a.shop>b-v2.shop>c.shop').map((r) => `${r.status} ${r.body}`), []);
  assert.ok(tries.b1 >= 3, `round robin sent first tries to b-v1 (${tries.b1})`);
  assert.equal(tries.b2, N, 'every request was answered by b-v2, once');
  assert.equal(retries, tries.b1, 'each try at b-v1 was retried once');
  assert.equal(tries.c, N, 'no delayed call from b-v1 reached c');
  assert.ok(c.paths.slice(-N).every((p) => p.endsWith('/b-v2.shop')));
  assert.equal(a.abandoned, 0);
  // Correctness of the bound, not speed: no answer took longer than the route timeout plus a wide margin.
  for (const r of results) assert.ok(r.ms < TIMEOUT_MS + 1500, `an answer took ${r.ms} ms`);
});

test('seed 1: with every b slow, a\'s route timeout answers 504 UT within its limit; the tries are abandoned', async () => {
  const [b1, b2, c] = ['b-v1.shop', 'b-v2.shop', 'c.shop'].map((i) => apps.get(i)!) as [ChainApp, ChainApp, ChainApp];
  const start = { got: b1.got + b2.got, abandoned: b1.abandoned + b2.abandoned, c: c.got };
  const rs = await Promise.all([callA('/all/1'), callA('/all/2')]);
  for (const r of rs) {
    assert.equal(r.status, 504);
    assert.match(r.body, /^a\.shop>upstream request timeout: no response within the route timeout of 2000 ms/);
    assert.ok(r.ms < TIMEOUT_MS + 2000, `answered after ${r.ms} ms`);
  }
  const tries = b1.got + b2.got - start.got;
  // 2000 ms over tries of 800 ms: each request made its first try and its first retry (a third try starts at ~1600 ms, backoff allowing).
  assert.ok(tries >= 4 && tries <= 6, `${tries} tries`);
  await waitFor('the tries were abandoned', () => (b1.abandoned + b2.abandoned - start.abandoned === tries) || undefined, 10_000);
  assert.equal(c.got - start.c, 0, 'nothing reached c');
});

test('seed 2: an api replica SIGKILLed under load with retries on: zero failed requests over 1000', async () => {
  const retries0 = await metric('web.shop', 'trellis_proxy_upstream_retries_total');
  const victim = apiProcs.get('api.shop#1')!;
  let killedAt = 0;
  const results = await mesh.traffic('http://api.shop:8080/work', {
    count: 1000, workers: 8, spreadMs: 6000, maxMs: 45_000,
    onProgress: (n) => {
      if (n === 300 && !killedAt) { killedAt = Date.now(); victim.signal('SIGKILL'); }
    },
  });
  await victim.exited;
  const retries = (await metric('web.shop', 'trellis_proxy_upstream_retries_total')) - retries0;
  const after = results.filter((r) => r.at > killedAt);
  const by: Record<string, number> = {};
  for (const r of after) by[r.body] = (by[r.body] ?? 0) + 1;
  console.log(`seed 2: ${results.length} requests, ${results.filter((r) => r.status !== 200).length} failed; api.shop#1 killed after 300; retries ${retries}; served after the kill ${JSON.stringify(by)}`);
  assert.equal(results.length, 1000, 'every request was sent within the time bound');
  assert.deepEqual(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 100)}`), []);
  assert.ok(after.length > 500, `${after.length} requests after the kill`);
  assert.ok(retries >= 1, 'the kill cost retries, not failures');
  assert.ok(!by['api.shop#1'] || by['api.shop#1'] < 20, 'the killed replica answered nothing after a few in flight');
  await sleep(10);
});
