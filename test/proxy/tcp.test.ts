/**
 * Opaque TCP between two real data planes: a client on a per-upstream local
 * port of the caller's sidecar → CONNECT tunnel → the callee's inbound
 * listener → a raw `net` app (a toy line-protocol database with an echo
 * mode). Bytes both ways (10 MiB), half-close each way, server and client
 * close, a 90/10 tcp route, another endpoint after a connect failure, the
 * inbound's refusals (404 for a port it does not serve, 502 when its app is
 * down), an HTTP service on a local port reached by curl without a proxy,
 * a port whose service appears later, and close() cutting open tunnels.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { k8sDeployment, k8sService } from '../helpers/mesh.js';
import { eventually, RunningMesh, startProxy, tally, withEndpoints, type App } from '../helpers/proxy.js';

const BASE = [
  k8sService('db', 'shop', { name: 'tcp-db', port: 5432, targetPort: 5432 }),
  k8sDeployment('db-v1', 'shop', 'db', { labels: { version: 'v1' } }),
  k8sDeployment('db-v2', 'shop', 'db', { labels: { version: 'v2' } }),
  k8sService('kv', 'shop', { name: 'tcp-kv', port: 6000, targetPort: 6000 }),
  k8sDeployment('kv-v1', 'shop', 'kv', { replicas: 2 }),
  k8sService('gone', 'shop', { name: 'tcp', port: 7000, targetPort: 7000 }),
  k8sDeployment('gone-v1', 'shop', 'gone'),
  k8sDeployment('client', 'shop', 'client'),
].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: shop }
spec:
  host: db
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: db, namespace: shop }
spec:
  hosts: [db]
  tcp:
  - route:
    - { destination: { host: db, subset: v1 }, weight: 90 }
    - { destination: { host: db, subset: v2 }, weight: 10 }
`;
const web = (ports: string) => `---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: ${ports}
---
${k8sDeployment('web-v1', 'shop', 'web')}`;
const YAML = BASE + web('[{ name: http, port: 80, targetPort: 8080 }]');
const YAML_LATER = BASE + web('[{ name: http, port: 80, targetPort: 8080 }, { name: http-alt, port: 81, targetPort: 8080 }]');

/** A toy database on raw TCP: the first line picks what the connection does. */
interface TcpApp extends App {
  /** Bytes received after the app half-closed its side (BYE). */
  afterBye: string;
  readonly open: Set<Socket>;
}

function serve(app: TcpApp, s: Socket): void {
  app.hits++;
  app.open.add(s);
  s.once('close', () => app.open.delete(s));
  s.on('error', () => undefined);
  const db = new Map<string, string>();
  let buf = '';
  // In line mode the app closes when the client does; the other modes handle the end of stream themselves.
  const onEnd = () => s.end();
  s.once('end', onEnd);
  const mode = () => { s.off('data', onData); s.off('end', onEnd); };
  const onData = (chunk: Buffer) => {
    buf += chunk.toString('latin1');
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const [cmd, k, v] = line.split(' ');
      if (cmd === 'PING') s.write(`PONG ${app.name}\n`);
      else if (cmd === 'SET') { db.set(k!, v!); s.write('OK\n'); }
      else if (cmd === 'GET') s.write(db.has(k!) ? `VALUE ${db.get(k!)}\n` : 'NONE\n');
      else if (cmd === 'ECHO') {
        // The rest of the connection is echoed as it is.
        mode();
        if (buf) s.write(Buffer.from(buf, 'latin1'));
        s.pipe(s);
        return;
      } else if (cmd === 'SUM') {
        // Counts bytes until the client's end of stream, and only then answers.
        mode();
        let n = Buffer.byteLength(buf, 'latin1');
        s.on('data', (c: Buffer) => { n += c.length; });
        s.once('end', () => s.end(`GOT ${n}\n`));
        return;
      } else if (cmd === 'BYE') {
        // Half-closes its side at once and keeps reading.
        mode();
        app.afterBye = buf;
        s.on('data', (c: Buffer) => { app.afterBye += c.toString('latin1'); });
        s.end('BYE\n');
        return;
      } else if (cmd === 'CLOSE') { s.end('closing\n'); s.destroy(); return; }
      else s.write(`ERR ${cmd}\n`);
    }
  };
  s.on('data', onData);
}

async function startTcpApp(name: string): Promise<TcpApp> {
  const server = createServer({ allowHalfOpen: true });
  const app: TcpApp = {
    name, port: 0, hits: 0, afterBye: '', open: new Set(), server: server as unknown as HttpServer,
    close: () => new Promise((r) => { for (const s of app.open) s.destroy(); server.close(() => r()); }),
  };
  server.on('connection', (s) => serve(app, s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (app as { port: number }).port = (server.address() as AddressInfo).port;
  return app;
}

let mesh: RunningMesh;
let caller: DataPlane;
const logs: string[] = [];
const records: RequestRecord[] = [];
const onRecord = (m: unknown) => { if ((m as RequestRecord).protocol === 'TCP') records.push(m as RequestRecord); };
const local: Record<string, number> = {};

before(async () => {
  const tcpApps = Object.fromEntries(['db-v1.shop', 'db-v2.shop', 'kv-v1.shop#0', 'kv-v1.shop#1', 'gone-v1.shop'].map((i) => [i, startTcpApp]));
  mesh = await RunningMesh.start({ yaml: YAML, caller: { workload: 'client', namespace: 'shop' }, apps: tcpApps });
  await mesh.callees.get('gone-v1.shop')!.app.close(); // its sidecar runs; the app is down
  const upstreams = [['db', 5432], ['kv.shop', 6000], ['gone', 7000], ['web', 80], ['web', 81]] as const;
  caller = await startProxy({ mode: 'sidecar', upstreams: upstreams.map(([host, port]) => ({ host, port, localPort: 0 })), log: (l) => logs.push(l) }, mesh.snapshot);
  for (const [host, port] of upstreams) local[`${host}:${port}`] = Number(caller.addresses.upstreams![`${host}:${port}`]!.split(':')[1]);
  subscribe(REQUEST_CHANNEL, onRecord);
});

after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await caller?.close(100);
  await mesh?.close();
});

/** A client connection that collects what it receives and says when the server ended or closed. */
class Conn {
  readonly socket: Socket;
  data = Buffer.alloc(0);
  ended = false;
  closed = false;
  readonly done: Promise<void>;
  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    this.socket.on('data', (c: Buffer) => { this.data = Buffer.concat([this.data, c]); });
    this.socket.on('end', () => { this.ended = true; });
    this.socket.on('error', () => undefined);
    this.done = new Promise((r) => this.socket.once('close', () => { this.closed = true; r(); }));
  }
  get text(): string { return this.data.toString('latin1'); }
  /** Waits until the received text has `n` lines. */
  lines(n: number, ms = 5000): Promise<string[]> {
    return eventually(() => { const l = this.text.split('\n'); return l.length > n ? l.slice(0, n) : undefined; }, ms, () => `got ${JSON.stringify(this.text)}`);
  }
  /** Waits for the end of stream from the other side (a close of the connection as TCP sees it: FIN or reset). */
  endedWithin(ms = 5000): Promise<void> {
    return eventually(() => (this.ended || this.closed ? true : undefined), ms, () => `no end of stream; got ${JSON.stringify(this.text.slice(0, 200))}`).then(() => undefined);
  }
  closedWithin(ms = 5000): Promise<void> {
    return Promise.race([this.done, new Promise<void>((_r, j) => setTimeout(() => j(new Error(`not closed after ${ms} ms; got ${JSON.stringify(this.text.slice(0, 200))}`)), ms))]);
  }
}

/** Sends one line on a fresh connection to the db local port and returns the first answer line. */
async function ping(port = local['db:5432']!): Promise<string> {
  const c = new Conn(port);
  c.socket.write('PING\n');
  const [line] = await c.lines(1);
  c.socket.end();
  await c.closedWithin();
  return line!;
}

/** `trellis_proxy_requests_total` of the caller for a direction and status class. */
async function requestsCounted(statusClass: string): Promise<number> {
  const text = await (await fetch(`http://${caller.addresses.admin}/metrics`)).text();
  const m = new RegExp(`^trellis_proxy_requests_total\\{direction="outbound",status_class="${statusClass}"\\} (\\d+)$`, 'm').exec(text);
  return Number(m?.[1] ?? 0);
}

test('a line protocol through the local port, both sidecars and the tunnel: the toy database answers', async () => {
  const counted = await requestsCounted('2xx');
  const c = new Conn(local['db:5432']!);
  c.socket.write('SET a 1\nGET a\nGET b\nPING\n');
  const lines = await c.lines(4);
  assert.deepEqual(lines.slice(0, 3), ['OK', 'VALUE 1', 'NONE']);
  assert.match(lines[3]!, /^PONG db-v[12]\.shop$/);
  c.socket.end();
  await c.closedWithin();
  const out = await eventually(() => records.find((r) => r.direction === 'outbound' && r.bytesSent === c.data.length), 2000, () => JSON.stringify(records));
  assert.equal(out.status, 200);
  assert.equal(out.authority, 'db.shop.svc.cluster.local:5432');
  assert.equal(out.bytesReceived, 'SET a 1\nGET a\nGET b\nPING\n'.length);
  assert.match(out.cluster!, /^outbound\|5432\|v[12]\|db\.shop\.svc\.cluster\.local$/);
  assert.equal(out.upstream, mesh.callees.get(lines[3]!.slice(5))!.inbound);
  const inb = await eventually(() => records.find((r) => r.direction === 'inbound' && r.bytesSent === c.data.length), 2000, () => JSON.stringify(records));
  assert.equal(inb.status, 200);
  assert.equal(inb.cluster, 'inbound|5432|db.shop.svc.cluster.local');
  assert.equal(inb.bytesReceived, out.bytesReceived);
  assert.equal(await requestsCounted('2xx'), counted + 1, 'the tunnel counted once in the caller\'s metrics');
});

test("Istio's TCP metrics count the tunnel's connections (opened when established, closed at the end) and bytes; no HTTP request series for it", async () => {
  const series = async (name: string) => {
    const text = await (await fetch(`http://${caller.addresses.admin}/metrics`)).text();
    return text.split('\n').filter((l) => l.startsWith(`${name}{`) && l.includes('reporter="source"') && l.includes('destination_service="db.shop.svc.cluster.local"'));
  };
  const total = async (name: string) => (await series(name)).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const opened = await total('trellis_tcp_connections_opened_total');
  const closed = await total('trellis_tcp_connections_closed_total');
  const sent = await total('trellis_tcp_sent_bytes_total');
  const received = await total('trellis_tcp_received_bytes_total');
  const c = new Conn(local['db:5432']!);
  const ask = 'SET k 42\nGET k\n';
  c.socket.write(ask);
  await c.lines(2);
  // Istio counts a connection opened when it is established, not when it ends.
  assert.equal(await total('trellis_tcp_connections_opened_total'), opened + 1, 'opened while the connection is open');
  assert.equal(await total('trellis_tcp_connections_closed_total'), closed, 'not closed yet');
  c.socket.end();
  await c.closedWithin();
  const answer = c.data.length;
  await eventually(() => records.find((r) => r.direction === 'outbound' && r.bytesReceived === ask.length && r.bytesSent === answer), 2000, () => JSON.stringify(records.slice(-4)));
  assert.equal(await total('trellis_tcp_connections_opened_total'), opened + 1);
  assert.equal(await total('trellis_tcp_connections_closed_total'), closed + 1);
  assert.equal(await total('trellis_tcp_received_bytes_total'), received + ask.length, 'bytes from the client');
  assert.equal(await total('trellis_tcp_sent_bytes_total'), sent + answer, 'bytes to the client');
  const line = (await series('trellis_tcp_connections_closed_total'))[0]!;
  assert.match(line, /request_protocol="tcp"/);
  assert.doesNotMatch(line, /response_code=/);
  assert.equal((await series('trellis_requests_total')).length, 0, 'a TCP connection is not an HTTP request');
});

test('10 MiB each way at once arrive intact', { timeout: 60_000 }, async () => {
  const payload = randomBytes(10 * 1024 * 1024);
  const c = new Conn(local['db:5432']!);
  c.socket.write('ECHO\n');
  c.socket.end(payload);
  await c.closedWithin(50_000);
  assert.equal(c.data.length, payload.length);
  assert.equal(createHash('sha256').update(c.data).digest('hex'), createHash('sha256').update(payload).digest('hex'));
});

test('half-close by the client: the server answers after the client\'s end of stream', async () => {
  const c = new Conn(local['db:5432']!);
  c.socket.write('SUM\n');
  c.socket.end('x'.repeat(1000));
  await c.closedWithin();
  assert.equal(c.text, 'GOT 1000\n');
  assert.ok(c.ended, 'the client got the server\'s end of stream');
});

test('half-close by the server: the client still sends after the server\'s end of stream', async () => {
  const c = new Conn(local['db:5432']!);
  c.socket.write('BYE\n');
  await eventually(() => c.ended || undefined, 5000, () => `no end of stream; got ${JSON.stringify(c.text)}`);
  assert.equal(c.text, 'BYE\n');
  assert.equal(c.closed, false, 'the client\'s side is still open');
  c.socket.end('still here');
  await c.closedWithin();
  const apps = ['db-v1.shop', 'db-v2.shop'].map((i) => mesh.callees.get(i)!.app as TcpApp);
  await eventually(() => apps.find((a) => a.afterBye === 'still here'), 5000, () => apps.map((a) => a.afterBye).join(' | '));
});

test('the server closes: the client sees its last bytes and the end of stream; both tunnels end once the client closes too', async () => {
  const from = records.length;
  const c = new Conn(local['db:5432']!);
  c.socket.write('CLOSE\n');
  await c.endedWithin();
  assert.equal(c.text, 'closing\n');
  c.socket.end();
  await c.closedWithin();
  const ended = await eventually(() => { const r = records.slice(from); return r.length === 2 ? r : undefined; }, 2000, () => JSON.stringify(records.slice(from)));
  assert.deepEqual(ended.map((r) => [r.direction, r.status, r.bytesSent]).sort(), [['inbound', 200, 8], ['outbound', 200, 8]]);
});

test('the client closes: the app\'s socket closes too', async () => {
  const apps = ['db-v1.shop', 'db-v2.shop'].map((i) => mesh.callees.get(i)!.app as TcpApp);
  await eventually(() => (apps.every((a) => a.open.size === 0) ? true : undefined), 5000, () => 'connections of earlier tests still open');
  const c = new Conn(local['db:5432']!);
  c.socket.write('PING\n');
  await c.lines(1);
  assert.equal(apps.reduce((n, a) => n + a.open.size, 0), 1);
  c.socket.destroy();
  await eventually(() => (apps.every((a) => a.open.size === 0) ? true : undefined), 5000, () => 'the app still has the connection');
});

test('a 90/10 tcp route splits connections between the versions', { timeout: 60_000 }, async () => {
  const served: string[] = [];
  for (let batch = 0; batch < 10; batch++) served.push(...(await Promise.all(Array.from({ length: 10 }, () => ping()))));
  const n = tally(served);
  assert.equal(served.length, 100);
  assert.ok((n['PONG db-v1.shop'] ?? 0) >= 75 && (n['PONG db-v2.shop'] ?? 0) >= 1, JSON.stringify(n));
});

test('a connect failure tries another endpoint: every connection lands on the live one', async () => {
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const live = mesh.callees.get('kv-v1.shop#1')!;
  const s = withEndpoints(mesh.snapshot, { 'kv-v1.shop#0': { address: '127.0.0.1', port: deadPort, health: 'HEALTHY' } });
  assert.deepEqual(caller.apply(s), { ok: true });
  try {
    const from = records.length;
    const answers = await Promise.all(Array.from({ length: 10 }, () => ping(local['kv.shop:6000'])));
    assert.deepEqual(tally(answers), { 'PONG kv-v1.shop#1': 10 });
    const out = records.slice(from).filter((r) => r.direction === 'outbound');
    assert.ok(out.every((r) => r.status === 200 && r.upstream === live.inbound), JSON.stringify(out));
  } finally {
    caller.apply(mesh.snapshot);
  }
});

/** A raw CONNECT to an inbound listener; resolves with everything it answered once it closed. */
async function rawConnect(inbound: string, target: string): Promise<string> {
  const c = new Conn(Number(inbound.split(':')[1]));
  c.socket.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`);
  await c.endedWithin();
  return c.text;
}

test('the inbound answers 404 for a port it does not serve, and closes', async () => {
  const text = await rawConnect(mesh.callees.get('db-v1.shop')!.inbound, 'db.shop.svc.cluster.local:9999');
  assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(text, /no inbound listener: db-v1\.shop serves no port 9999 \(its ports: 5432\)/);
});

test('an app that is down: the client is closed with nothing, and both proxies keep serving', async () => {
  const from = records.length;
  const c = new Conn(local['gone:7000']!);
  c.socket.write('PING\n');
  await c.endedWithin();
  assert.equal(c.text, '');
  const out = await eventually(() => records.slice(from).find((r) => r.direction === 'outbound'), 2000, () => JSON.stringify(records.slice(from)));
  assert.deepEqual([out.status, out.responseFlags], [502, ["UF"]], JSON.stringify(records.slice(from)));
  const text = await rawConnect(mesh.callees.get('gone-v1.shop')!.inbound, 'gone.shop.svc.cluster.local:7000');
  assert.match(text, /^HTTP\/1\.1 502 Bad Gateway\r\n[^]*upstream connect error: the app at 127\.0\.0\.1:\d+ did not accept the connection \(ECONNREFUSED\)/);
  assert.match(await ping(), /^PONG db-v[12]\.shop$/);
});

const HAVE_CURL = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).status === 0;

test('an HTTP upstream on a local port: plain curl without a proxy reaches the service', { skip: HAVE_CURL ? false : 'curl is not installed' }, async () => {
  // Not spawnSync: the proxies run in this process and must keep serving while curl waits.
  const r = await promisify(execFile)('curl', ['-s', '-m', '5', '-w', '\n%{http_code}', `http://127.0.0.1:${local['web:80']}/orders?x=1`], { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH } });
  const at = r.stdout.lastIndexOf('\n');
  assert.equal(r.stdout.slice(at + 1), '200', r.stdout + r.stderr);
  const body = JSON.parse(r.stdout.slice(0, at));
  assert.equal(body.app, 'web-v1.shop');
  assert.equal(body.url, '/orders?x=1');
  assert.equal(body.headers.host, 'web:80');
});

test('a local port whose service is not in the snapshot closes connections, logs once, and works once it is', async () => {
  const first = new Conn(local['web:81']!);
  await first.endedWithin();
  const second = new Conn(local['web:81']!);
  await second.endedWithin();
  const lines = logs.filter((l) => l.includes('upstream web:81'));
  assert.deepEqual(lines, [`upstream web:81 (local port ${local['web:81']}): no service "web" with port 81 in the configuration in force; closing its connections until a snapshot has it`]);
  const later = mesh.compile(YAML_LATER);
  assert.deepEqual(caller.apply(later), { ok: true });
  try {
    const r = await fetch(`http://127.0.0.1:${local['web:81']}/late`);
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { url: string }).url, '/late');
    assert.ok(logs.includes(`upstream web:81 (local port ${local['web:81']}): served again`), logs.join('\n'));
  } finally {
    caller.apply(mesh.snapshot);
  }
});

test('close() cuts tunnels still open once its grace has passed', async () => {
  const other = await startProxy({ mode: 'sidecar', upstreams: [{ host: 'db', port: 5432, localPort: 0 }] }, mesh.snapshot);
  const c = new Conn(Number(other.addresses.upstreams!['db:5432']!.split(':')[1]));
  c.socket.write('PING\n');
  await c.lines(1);
  await other.close(200);
  await c.endedWithin(2000);
});

test('a tunnel with no byte either way for the idle timeout is closed; a busy one outlives it', async () => {
  const IDLE = 400;
  const other = await startProxy({ mode: 'sidecar', upstreams: [{ host: 'db', port: 5432, localPort: 0 }], limits: { idleTimeoutMs: IDLE } }, mesh.snapshot);
  const port = Number(other.addresses.upstreams!['db:5432']!.split(':')[1]);
  const idle = new Conn(port);
  const busy = new Conn(port);
  idle.socket.write('PING\n');
  busy.socket.write('PING\n');
  await Promise.all([idle.lines(1), busy.lines(1)]);
  // The busy one talks every IDLE/4 for 3 × IDLE: it must stay open while the idle one is closed.
  const began = Date.now();
  for (let n = 2; Date.now() - began < 3 * IDLE; n++) {
    busy.socket.write('PING\n');
    await busy.lines(n);
    await new Promise((r) => setTimeout(r, IDLE / 4));
  }
  await idle.endedWithin(IDLE);
  assert.equal(busy.closed || busy.ended, false, 'the busy tunnel was closed');
  busy.socket.end();
  await other.close(200);
});
