/**
 * Draining a proxy gracefully (issue 4, lifecycle): when a sidecar closes,
 * the connections its callers keep open are told before they are cut, so a
 * caller never races a closing socket (the classic intermittent 503).
 * HTTP/2 sessions get a GOAWAY while their streams in flight finish;
 * HTTP/1.1 responses in flight say `connection: close`. A leaving instance's
 * `/ready` answers 503 while it still serves traffic.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { createAgent } from '../../src/proxy/agent.js';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { eventually, RunningMesh, startProxy, type Callee, type Handler } from '../helpers/proxy.js';

const SLOW_MS = 400;
let inFlight = 0;
const slow: Handler = (req, res) => {
  inFlight++;
  req.resume();
  setTimeout(() => { inFlight--; res.writeHead(200, { 'content-type': 'text/plain' }); res.end('slow done'); }, SLOW_MS);
};

let mesh: RunningMesh;
before(async () => {
  mesh = await RunningMesh.start({ yaml: TWO_SERVICES, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v1.shop#0'], handlers: { 'api-v1.shop#0': slow } });
});
after(async () => { await mesh?.close(); });

/** A new sidecar for a callee whose sidecar was closed, and the caller told its new address. */
async function restart(callee: Callee): Promise<void> {
  const fresh = await startProxy({ mode: 'sidecar', appPort: callee.app.port }, callee.proxy.snapshot);
  mesh.callees.set(callee.instance, { ...callee, proxy: fresh, inbound: fresh.addresses.inbound! });
  mesh.snapshot = mesh.patch(mesh.snapshot);
  const r = mesh.caller.apply(mesh.snapshot);
  assert.ok(r.ok);
}

test('a closing sidecar sends GOAWAY on an HTTP/2 caller session; the stream in flight completes', async () => {
  const callee = mesh.callees.get('api-v1.shop#0')!;
  // An h2c caller straight to the callee's inbound listener (as the caller's proxy would be for an HTTP/2 cluster).
  const session = h2connect(`http://${callee.inbound}`);
  session.on('error', () => undefined);
  let goaway: number | undefined;
  session.once('goaway', (code: number) => { goaway = code; });
  const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const st = session.request({ ':method': 'GET', ':path': '/slow', ':authority': 'api.shop:80' });
    let status = 0;
    let body = '';
    st.on('response', (h) => { status = Number(h[':status']); });
    st.setEncoding('utf8');
    st.on('data', (c: string) => (body += c));
    st.on('end', () => resolve({ status, body }));
    st.on('error', reject);
  });
  await eventually(() => (inFlight > 0 ? true : undefined), 3000, () => 'the request never reached the app');
  const closing = callee.proxy.close(5000);
  await eventually(() => goaway, 2000, () => 'no GOAWAY arrived while the proxy drained');
  assert.equal(goaway, 0, 'GOAWAY with NO_ERROR: a graceful end, not a failure');
  assert.throws(() => session.request({ ':path': '/again', ':authority': 'api.shop:80' }), /GOAWAY|destroyed|closed/i, 'no new stream opens on a session told to go away');
  const r = await reply;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'slow done');
  await closing;
  session.destroy();
  await restart(callee);
});

test('a closing sidecar answers the HTTP/1.1 request in flight with connection: close, then closes the connection', async () => {
  const callee = mesh.callees.get('api-v1.shop#0')!;
  const [host, port] = callee.inbound.split(':');
  const reply = new Promise<{ status: number; connection: string | undefined; body: string; closed: Promise<void> }>((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), path: '/slow', headers: { host: 'api.shop:80', connection: 'keep-alive' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      const closed = new Promise<void>((r) => res.socket.once('close', () => r()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body, closed }));
    });
    req.on('error', reject);
    req.end();
  });
  await eventually(() => (inFlight > 0 ? true : undefined), 3000, () => 'the request never reached the app');
  const closing = callee.proxy.close(5000);
  const r = await reply;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'slow done');
  assert.equal(r.connection, 'close', 'the response in flight tells the caller not to reuse the connection');
  await r.closed;
  await closing;
  await restart(callee);
});

test('a leaving instance answers /ready with 503 while it still serves traffic', async () => {
  const callee = mesh.callees.get('api-v1.shop#0')!;
  const ready = async () => {
    const res = await fetch(`http://${callee.proxy.addresses.admin}/ready`);
    return { status: res.status, text: await res.text() };
  };
  // Ready before: listeners up, snapshot applied (the control-plane connection is not part of readiness).
  assert.equal((await ready()).status, 200);
  // No control plane listens here: leave() resolves at once ('disconnected'), but the instance is leaving all the same.
  const agent = createAgent({ controlPlane: '127.0.0.1:1', instance: callee.instance, dataPlane: callee.proxy, backoff: { initialMs: 60_000 } });
  const left = await agent.leave(1000);
  assert.equal(left.why, 'disconnected');
  const r = await ready();
  assert.equal(r.status, 503);
  assert.match(r.text, /leaving rotation/);
  // Traffic still flows through the leaving instance.
  const res = await mesh.call('http://api.shop/slow');
  assert.equal(res.status, 200);
  await agent.close();
});
