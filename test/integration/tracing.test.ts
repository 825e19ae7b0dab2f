/**
 * Traces through real processes: a `trellis control-plane` reading a
 * MeshConfig with an OpenTelemetry provider from its config directory, and
 * three `trellis proxy` sidecars (web → a → b) with node:http apps in this
 * process; a's app propagates the trace headers when it calls b. A real
 * OTLP/HTTP receiver decodes what the proxies export; once it is gone,
 * requests still succeed and each proxy says so once in its log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '../controlplane/helpers.js';
import { OtlpReceiver } from '../telemetry/otlp-receiver.js';
import { RunningMesh } from './running-mesh.js';

const APP = `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: traced }
spec:
  namespace: shop
  services:
  - { name: web, ports: [{ name: http, port: 8080 }], command: [node, web.js] }
  - { name: a, ports: [{ name: http, port: 8080 }], command: [node, a.js] }
  - { name: b, ports: [{ name: http, port: 8080 }], command: [node, b.js] }
`;

const PROPAGATED = ['traceparent', 'tracestate', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-request-id'];
const recv = new OtlpReceiver();
const servers: Server[] = [];
let mesh: RunningMesh;

async function app(handler: Parameters<typeof createServer>[1]): Promise<number> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

before(async () => {
  await recv.start();
  mesh = new RunningMesh({
    'app.yaml': APP,
    'mesh.yaml': `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  defaultConfig: { tracing: { sampling: 100 } }
  extensionProviders: [{ name: otel, opentelemetry: { service: 127.0.0.1, port: ${recv.port}, http: { path: /v1/traces, timeout: 300ms } } }]
  defaultProviders: { tracing: [otel] }
`,
  });
  await mesh.startControlPlane();
  const b = await app((req, res) => { req.resume(); res.end(String(req.headers['traceparent'])); });
  let aOutbound = '';
  const a = await app((req, res) => {
    req.resume();
    if (req.url === '/healthz') { res.end('ok'); return; }
    const [host, port] = aOutbound.split(':');
    const headers: Record<string, string> = { host: 'b.shop:8080' };
    for (const k of PROPAGATED) if (typeof req.headers[k] === 'string') headers[k] = req.headers[k];
    request({ host, port: Number(port), path: 'http://b.shop:8080/deep', headers, agent: false }, (up) => {
      res.writeHead(up.statusCode ?? 502);
      up.pipe(res);
    }).on('error', (e) => { res.writeHead(502); res.end(e.message); }).end();
  });
  await Promise.all([mesh.startSidecar('web.shop'), mesh.startSidecar('b.shop', b), mesh.startSidecar('a.shop', a).then((s) => { aOutbound = s.outbound; })]);
  await mesh.synced(['web.shop', 'a.shop', 'b.shop']);
  await waitFor('web and a see their callees', async () => {
    const ok = async (i: string, host: string) => (await mesh.configDump(i))?.endpoints.some((ce) => ce.cluster.endsWith(`|${host}`) && ce.endpoints.some((e) => e.address && e.health === 'HEALTHY'));
    return ((await ok('web.shop', 'a.shop.svc.cluster.local')) && (await ok('a.shop', 'b.shop.svc.cluster.local'))) || undefined;
  }, 10_000, 100);
});

after(async () => {
  await mesh?.close();
  for (const s of servers) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
  await recv.close();
});

test('one request through three sidecar processes: one trace of four spans, parent to child', async () => {
  const r = await mesh.call('http://a.shop:8080/hello');
  assert.equal(r.status, 200, r.body);
  const [, traceId, parentAtB, flags] = r.body.split('-');
  assert.equal(flags, '01');
  const spans = await waitFor(`the four spans of ${traceId}`, async () => (recv.trace(traceId!).length >= 4 ? recv.trace(traceId!) : undefined), 10_000, 50);
  const chain = ['web.shop', 'a.shop', 'a.shop', 'b.shop'];
  let parent: string | undefined;
  for (const [i, service] of chain.entries()) {
    const s = spans.find((x) => x.parentSpanId === parent);
    assert.ok(s, `hop ${i} (${service}) has the span before it as parent; spans: ${JSON.stringify(spans.map((x) => [x.resource['service.name'], x.spanId, x.parentSpanId]))}`);
    assert.equal(s.resource['service.name'], service);
    assert.equal(s.kind, i % 2 === 0 ? 3 : 2, 'client, server, client, server');
    parent = s.spanId;
  }
  assert.equal(parentAtB, parent, 'b\'s app is a child of b\'s server span');
  assert.equal(spans.length, 4);
});

test('the collector gone: requests still succeed, and each proxy logs it once', async () => {
  await recv.close();
  for (let i = 0; i < 40; i++) assert.equal((await mesh.call(`http://a.shop:8080/after/${i}`)).status, 200);
  const at = `http://127.0.0.1:${recv.port}/v1/traces`;
  const lines = (i: string) => mesh.sidecars.get(i)!.proc.out.split('\n').filter((l) => l.includes('tracing:'));
  await waitFor('every proxy logged the failing collector', async () => ['web.shop', 'a.shop', 'b.shop'].every((i) => lines(i).length > 0) || undefined, 10_000, 100);
  for (let i = 0; i < 40; i++) assert.equal((await mesh.call(`http://a.shop:8080/later/${i}`)).status, 200);
  await new Promise((r) => setTimeout(r, 1500));
  for (const i of ['web.shop', 'a.shop', 'b.shop']) {
    assert.equal(lines(i).length, 1, `${i}: ${lines(i).join('\n')}`);
    assert.match(lines(i)[0]!, new RegExp(`proxy ${i} tracing: cannot export spans to ${at.replace(/[/.]/g, '\\$&')} \\(.+\\)`));
  }
});
