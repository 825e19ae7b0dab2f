/**
 * WebSocket (HTTP/1.1 Upgrade) through the sidecars and a gateway, with the
 * `ws` package on both ends: client → caller's outbound listener → callee's
 * inbound listener → a ws server app. Frames both ways, close codes both
 * ways, routing of the upgrade request as of any request (header match,
 * rewrite, header edits, refusals), the absolute-form (HTTP_PROXY) request
 * line, the idle limit, the record, and close() cutting an open tunnel.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { BOOKINFO, shopVirtualService, TWO_SERVICES, WEB_ONLY_VS } from '../helpers/mesh.js';
import { eventually, RunningMesh, startApp, startProxy, withEndpoints, type App } from '../helpers/proxy.js';

const VS = `
${shopVirtualService('api', `
  - name: broken
    match: [{ uri: { prefix: /broken } }]
    fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: v2-by-header
    match: [{ headers: { x-version: { exact: v2 } } }]
    route: [{ destination: { host: api, subset: v2 } }]
  - name: legacy
    match: [{ uri: { prefix: /legacy/ } }]
    rewrite: { uri: /chat/ }
    headers: { request: { set: { x-route: legacy } }, response: { set: { x-route-response: legacy } } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: rest
    route: [{ destination: { host: api, subset: v1 } }]
`)}${WEB_ONLY_VS}`;

/** What the app sends first on every WebSocket: who it is and the handshake it saw. */
interface Hello {
  readonly app: string;
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

const serverCloses: { app: string; code: number; reason: string }[] = [];

/**
 * An app that answers WebSocket upgrades (plain HTTP requests get the echo
 * handler): it greets with a Hello, echoes frames as they came (text or
 * binary), and on `close:<code>` closes with that code, on `tick:<n>` sends n
 * messages 100 ms apart, on `quiet:…` says nothing. `/forbidden` is refused with 403.
 */
async function startWsApp(name: string): Promise<App> {
  const app = await startApp(name);
  const wss = new WebSocketServer({
    noServer: true,
    verifyClient: (info, cb) => (info.req.url?.startsWith('/forbidden') ? cb(false, 403, 'Forbidden') : cb(true)),
  });
  app.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (req.headers.upgrade === 'toy') { toyProtocol(socket); return; }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  wss.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ app: name, url: req.url ?? '', headers: req.headers } satisfies Hello));
    ws.on('message', (data: Buffer, binary) => {
      const text = binary ? '' : data.toString();
      if (text.startsWith('close:')) ws.close(Number(text.slice(6)), 'server bye');
      else if (text.startsWith('tick:')) {
        let n = Number(text.slice(5));
        const timer = setInterval(() => { if (n-- <= 0 || ws.readyState !== WebSocket.OPEN) clearInterval(timer); else ws.send(`tick ${n}`); }, 100);
      } else if (!text.startsWith('quiet:')) ws.send(data, { binary });
    });
    ws.on('close', (code, reason) => serverCloses.push({ app: name, code, reason: reason.toString() }));
  });
  const closeHttp = app.close;
  return Object.assign(app, {
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      await closeHttp();
    },
  });
}

/** `Upgrade: toy`: echoes bytes, and answers the client's half-close with `bye` before its own. */
function toyProtocol(socket: Socket): void {
  socket.allowHalfOpen = true;
  socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: toy\r\n\r\n');
  socket.on('data', (d: Buffer) => socket.write(d));
  socket.once('end', () => socket.end('bye\n'));
  socket.on('error', () => socket.destroy());
}

/** A client WebSocket with its messages queued, so that a test can await them in order. */
class Peer {
  readonly queue: { data: Buffer; binary: boolean }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly openedAt = Date.now();
  #wake: (() => void) | undefined;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary) => { this.queue.push({ data, binary }); this.#wake?.(); });
    this.closed = new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  }

  async next(ms = 10_000): Promise<{ data: Buffer; binary: boolean }> {
    const end = Date.now() + ms;
    while (this.queue.length === 0) {
      if (Date.now() > end) throw new Error(`no message within ${ms} ms`);
      await new Promise<void>((r) => { this.#wake = r; setTimeout(r, 50); });
    }
    return this.queue.shift()!;
  }

  async hello(): Promise<Hello> {
    return JSON.parse((await this.next()).data.toString()) as Hello;
  }

  async closedWithin(ms: number): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the WebSocket did not close within ${ms} ms`)), ms); });
    try { return await Promise.race([this.closed, timeout]); } finally { clearTimeout(timer); }
  }
}

/** Opens `ws://<address><path>`; rejects with the status when the handshake is refused. */
function open(address: string, path: string, opts: ClientOptions = {}): Promise<Peer> {
  const ws = new WebSocket(`ws://${address}${path}`, { handshakeTimeout: 5_000, ...opts });
  const peer = new Peer(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(peer));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => { req.destroy(); reject(new Error(`handshake answered ${res.statusCode}`)); });
  });
}

/** The answer to a handshake that is refused: status, headers and body. */
function refused(address: string, path: string, opts: ClientOptions = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const ws = new WebSocket(`ws://${address}${path}`, { handshakeTimeout: 5_000, ...opts });
  return new Promise((resolve, reject) => {
    ws.once('open', () => { ws.terminate(); reject(new Error('the handshake succeeded')); });
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.once('end', () => { req.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); });
    });
  });
}

let mesh: RunningMesh;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);
const byHost = (host: string, headers: Record<string, string> = {}): ClientOptions => ({ headers: { host, ...headers } });
const outbound = () => mesh.caller.addresses.outbound!;
const recordOf = (direction: string, path: string) => records.filter((r) => r.direction === direction && r.path === path).at(-1);

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await RunningMesh.start({
    yaml: TWO_SERVICES + VS, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v1.shop#0', 'api-v2.shop'],
    apps: { 'api-v1.shop#0': startWsApp, 'api-v2.shop': startWsApp },
  });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

test('websocket: frames both ways through both sidecars, text and binary, a 1 MiB message included', async () => {
  const peer = await open(outbound(), '/chat?room=1', byHost('api', { 'x-custom': 'kept', 'x-forwarded-client-cert': 'By=spiffe://evil' }));
  const hello = await peer.hello();
  assert.equal(hello.app, 'api-v1.shop#0');
  assert.equal(hello.url, '/chat?room=1');
  assert.equal(hello.headers.host, 'api', 'the Host is kept');
  assert.equal(hello.headers.upgrade, 'websocket');
  assert.match(String(hello.headers.connection), /upgrade/i);
  assert.equal(typeof hello.headers['sec-websocket-key'], 'string');
  assert.equal(hello.headers['sec-websocket-version'], '13');
  assert.equal(hello.headers['x-custom'], 'kept');
  assert.equal(hello.headers['x-forwarded-client-cert'], undefined, 'identity headers are stripped at the inbound listener');
  assert.match(String(hello.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  assert.equal(hello.headers['x-forwarded-proto'], 'http');

  peer.ws.send('hello there');
  const text = await peer.next();
  assert.deepEqual([text.binary, text.data.toString()], [false, 'hello there']);
  peer.ws.send(Buffer.from([0, 1, 2, 255]));
  const bin = await peer.next();
  assert.deepEqual([bin.binary, [...bin.data]], [true, [0, 1, 2, 255]]);
  const big = randomBytes(1024 * 1024);
  peer.ws.send(big);
  const back = await peer.next();
  assert.equal(back.binary, true);
  assert.ok(back.data.equals(big), 'the 1 MiB message came back intact');
  const bigText = 'x'.repeat(1024 * 1024);
  peer.ws.send(bigText);
  assert.equal((await peer.next()).data.toString(), bigText);

  peer.ws.close(1000, 'done');
  assert.equal((await peer.closedWithin(5_000)).code, 1000);
  const out = await eventually(() => recordOf('outbound', '/chat?room=1'), 5_000, () => 'no outbound record of the tunnel');
  assert.equal(out.status, 101);
  assert.deepEqual(out.responseFlags, []);
  assert.equal(out.route, 'rest');
  assert.equal(out.cluster, 'outbound|80|v1|api.shop.svc.cluster.local');
  assert.equal(out.upstream, mesh.callees.get('api-v1.shop#0')!.inbound);
  assert.equal(out.protocol, 'HTTP/1.1');
  assert.ok(out.bytesReceived > 2 * 1024 * 1024 && out.bytesSent > 2 * 1024 * 1024, `bytes ${out.bytesReceived} in, ${out.bytesSent} out`);
  assert.ok(out.durationMs >= Date.now() - peer.openedAt - 1_000 && out.upstreamMs! <= out.durationMs, 'the duration is the life of the tunnel');
  const inb = await eventually(() => recordOf('inbound', '/chat?room=1'), 5_000, () => 'no inbound record of the tunnel');
  assert.equal(inb.status, 101);
  assert.ok(inb.bytesReceived > 2 * 1024 * 1024);
});

test('websocket: a close from the client reaches the app with its code, and one from the app reaches the client', async () => {
  const a = await open(outbound(), '/close-by-client', byHost('api'));
  await a.hello();
  a.ws.close(4001, 'client bye');
  assert.deepEqual(await a.closedWithin(5_000), { code: 4001, reason: 'client bye' });
  const seen = await eventually(() => serverCloses.find((c) => c.code === 4001), 5_000, () => JSON.stringify(serverCloses));
  assert.equal(seen.reason, 'client bye');

  const b = await open(outbound(), '/close-by-server', byHost('api'));
  await b.hello();
  b.ws.send('close:4002');
  assert.deepEqual(await b.closedWithin(5_000), { code: 4002, reason: 'server bye' });
});

test('upgrade: another protocol than WebSocket passes as bytes, and a half-close is passed on as one both ways', async () => {
  const s = connect(Number(outbound().split(':')[1]), '127.0.0.1');
  s.allowHalfOpen = true;
  let got = '';
  let ended = false;
  s.on('data', (c: Buffer) => { got += c.toString(); });
  s.once('end', () => { ended = true; });
  try {
    s.write('GET /toy HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: toy\r\n\r\n');
    await eventually(() => (got.includes('\r\n\r\n') ? true : undefined), 5_000, () => got);
    assert.match(got, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(got, /\r\nupgrade: toy\r\n/i);
    const afterHead = () => got.slice(got.indexOf('\r\n\r\n') + 4);
    s.write('ping 1\n');
    await eventually(() => (afterHead() === 'ping 1\n' ? true : undefined), 5_000, () => JSON.stringify(got));
    s.end(); // half-close: the app still answers, then ends
    await eventually(() => (ended ? true : undefined), 5_000, () => `no end; got ${JSON.stringify(got)}`);
    assert.equal(afterHead(), 'ping 1\nbye\n', 'the app saw the FIN and could still answer');
  } finally {
    s.destroy();
  }
});

test('websocket: the upgrade is routed as any request: a header match picks v2, a rewrite and header edits apply', async () => {
  const v2 = await open(outbound(), '/chat', byHost('api.shop', { 'x-version': 'v2' }));
  assert.equal((await v2.hello()).app, 'api-v2.shop');
  v2.ws.close();
  const v1 = await open(outbound(), '/chat', byHost('api.shop', { 'x-version': 'v3' }));
  assert.equal((await v1.hello()).app, 'api-v1.shop#0');
  v1.ws.close();

  let responseHeaders: Record<string, unknown> = {};
  const legacy = new WebSocket(`ws://${outbound()}/legacy/room`, byHost('api'));
  legacy.once('upgrade', (res) => { responseHeaders = res.headers; });
  const peer = new Peer(legacy);
  await new Promise((resolve, reject) => { legacy.once('open', resolve); legacy.once('error', reject); });
  const hello = await peer.hello();
  assert.equal(hello.url, '/chat/room', 'the route rewrote the path');
  assert.equal(hello.headers['x-route'], 'legacy', 'request header edits apply');
  assert.equal(responseHeaders['x-route-response'], 'legacy', 'response header edits apply to the 101');
  legacy.close();
  await Promise.all([v2.closedWithin(5_000), v1.closedWithin(5_000), peer.closedWithin(5_000)]);
});

test('websocket: the HTTP_PROXY form (absolute-form request line) works through the outbound listener', async () => {
  const [host, port] = outbound().split(':');
  // What an HTTP proxy agent does: connect to the proxy, name the target in the request line.
  const peer = await open('api:80', '/proxied', {
    createConnection: () => connect(Number(port), host!),
    finishRequest: (req) => { req.path = 'http://api:80/proxied'; req.end(); },
  });
  const hello = await peer.hello();
  assert.equal(hello.app, 'api-v1.shop#0');
  assert.equal(hello.url, '/proxied', 'the app gets origin-form');
  assert.equal(hello.headers.host, 'api:80');
  peer.ws.send('via proxy');
  assert.equal((await peer.next()).data.toString(), 'via proxy');
  peer.ws.close();
  await peer.closedWithin(5_000);
});

test('websocket: refusals are a normal request\'s: 404 NR, a fault abort, 503 UH, 503 UF, and the app\'s own 403, each closing the connection', async () => {
  const nr = await refused(outbound(), '/elsewhere', byHost('web'));
  assert.equal(nr.status, 404);
  assert.match(nr.body, /^no route: no route of web\.shop\.svc\.cluster\.local:80 matches GET \/elsewhere/);
  assert.equal(nr.headers.connection, 'close');
  assert.deepEqual(recordOf('outbound', '/elsewhere')?.responseFlags, ['NR']);
  const fi = await refused(outbound(), '/broken', byHost('api'));
  assert.equal(fi.status, 503);
  assert.equal(fi.body, 'fault filter abort\n');
  assert.deepEqual(recordOf('outbound', '/broken')?.responseFlags, ['FI']);
  const uh = await refused(outbound(), '/only', byHost('web'));
  assert.equal(uh.status, 503);
  assert.deepEqual(recordOf('outbound', '/only')?.responseFlags, ['UH']);
  const app = await refused(outbound(), '/forbidden', byHost('api'));
  assert.equal(app.status, 403, 'the app\'s refusal is relayed');
  assert.equal(recordOf('outbound', '/forbidden')?.status, 403);

  // An endpoint that refuses connections: 503 UF, as for any request.
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const closedPort = (gone.address() as AddressInfo).port;
  await new Promise((r) => gone.close(r));
  const broken = await startProxy({ mode: 'sidecar' }, withEndpoints(mesh.snapshot, { 'api-v2.shop': { address: '127.0.0.1', port: closedPort } }));
  try {
    const uf = await refused(broken.addresses.outbound!, '/down', byHost('api', { 'x-version': 'v2' }));
    assert.equal(uf.status, 503);
    assert.match(uf.body, /^upstream connect error: connect-failure \(connect ECONNREFUSED/);
    assert.deepEqual(records.filter((r) => r.path === '/down').at(-1)?.responseFlags, ['UF']);
  } finally {
    await broken.close(100);
  }

  // On the wire: the refusal, then the proxy closes; nothing of a 101.
  const raw = await new Promise<string>((resolve, reject) => {
    const s = connect(Number(outbound().split(':')[1]), '127.0.0.1', () => {
      s.write('GET /elsewhere HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    });
    let got = '';
    s.on('data', (c: Buffer) => { got += c.toString(); });
    s.once('end', () => resolve(got));
    s.once('error', reject);
    setTimeout(() => { s.destroy(); reject(new Error(`the proxy did not close the connection; got ${JSON.stringify(got)}`)); }, 5_000).unref();
  });
  assert.match(raw, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(raw, /\r\nConnection: close\r\n/i);
});

test('websocket: the idle limit closes a tunnel with no bytes either way; busy ones stay', async () => {
  const idleMs = 300;
  const caller = await startProxy({ mode: 'sidecar', websocketIdleTimeoutMs: idleMs }, mesh.snapshot);
  const address = caller.addresses.outbound!;
  try {
    const [idle, up, down] = await Promise.all([open(address, '/idle', byHost('api')), open(address, '/busy-up', byHost('api')), open(address, '/busy-down', byHost('api'))]);
    await Promise.all([idle.hello(), up.hello(), down.hello()]);
    const started = Date.now();
    down.ws.send('tick:15');
    const sender = setInterval(() => up.ws.send('quiet: client to app only'), 100);
    try {
      await idle.closedWithin(5_000);
      assert.ok(Date.now() - started >= idleMs - 50, `closed after ${Date.now() - started} ms, before the idle limit of ${idleMs} ms`);
      // Keep the others going for several times the limit: bytes in one direction alone keep a tunnel open.
      while (Date.now() - started < 5 * idleMs) await new Promise((r) => setTimeout(r, 50));
      assert.equal(up.ws.readyState, WebSocket.OPEN, 'client-to-app bytes keep the tunnel open');
      assert.equal(down.ws.readyState, WebSocket.OPEN, 'app-to-client bytes keep the tunnel open');
      assert.ok(down.queue.length >= 5, `ticks arrived: ${down.queue.length}`);
    } finally {
      clearInterval(sender);
    }
    up.ws.close();
    down.ws.close();
    await Promise.all([up.closedWithin(5_000), down.closedWithin(5_000)]);
    const rec = await eventually(() => records.find((r) => r.path === '/idle' && r.direction === 'outbound'), 5_000, () => 'no record of the idle tunnel');
    assert.equal(rec.status, 101);
  } finally {
    await caller.close(100);
  }
});

test('websocket: close() of a data plane cuts an open tunnel after its grace', async () => {
  const caller = await startProxy({ mode: 'sidecar' }, mesh.snapshot);
  const peer = await open(caller.addresses.outbound!, '/drained', byHost('api'));
  await peer.hello();
  await caller.close(100);
  const closed = await peer.closedWithin(5_000);
  assert.equal(closed.code, 1006, 'the connection was cut (no close frame from the proxy)');
});

test('websocket: a gateway listener carries a WebSocket to the service behind it', async () => {
  const gw = await RunningMesh.start({
    yaml: '', files: [join(BOOKINFO, 'platform/kube/bookinfo.yaml'), join(BOOKINFO, 'networking/bookinfo-gateway.yaml'), join(BOOKINFO, '..', '..', 'ingress-gateway.yaml')],
    caller: { workload: 'istio-ingressgateway', namespace: 'istio-system' }, gatewayPorts: [8080],
    instances: ['productpage-v1.default'], apps: { 'productpage-v1.default': startWsApp },
  });
  try {
    const address = gw.caller.addresses.gateway![8080]!;
    const peer = await open(address, '/productpage', byHost('bookinfo.example.com', { 'x-forwarded-client-cert': 'By=spiffe://evil' }));
    const hello = await peer.hello();
    assert.equal(hello.app, 'productpage-v1.default');
    assert.equal(hello.headers.host, 'bookinfo.example.com');
    assert.equal(hello.headers['x-forwarded-client-cert'], undefined, 'the gateway chain strips identity headers');
    peer.ws.send('through the gateway');
    assert.equal((await peer.next()).data.toString(), 'through the gateway');
    peer.ws.close(4003);
    assert.equal((await peer.closedWithin(5_000)).code, 4003);
    const rec = await eventually(() => recordOf('gateway', '/productpage'), 5_000, () => 'no gateway record');
    assert.equal(rec.status, 101);
    const nr = await refused(address, '/admin', byHost('bookinfo.example.com'));
    assert.equal(nr.status, 404);
  } finally {
    await gw.close();
  }
});
