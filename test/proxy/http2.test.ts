/**
 * HTTP/2 and gRPC through two data planes: the caller's outbound listener
 * (HTTP/1.1 and h2c on one port), HTTP/2 between the sidecars for HTTP2 and
 * GRPC services, h2c from the callee's inbound listener to the app. The apps
 * are a Node h2c server, an @grpc/grpc-js server (two versions, for subsets)
 * and an HTTP/1.1 echo.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, constants, createServer as createH2Server, type ClientHttp2Session, type Http2Server, type IncomingHttpHeaders } from 'node:http2';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { eventually, RunningMesh, withEndpoints, type App } from '../helpers/proxy.js';
import { k8sDeployment, k8sService } from '../helpers/mesh.js';

const YAML = [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'shop', 'web'),
  k8sService('echo', 'shop', { name: 'grpc', port: 9090, targetPort: 9090 }),
  k8sDeployment('echo-v1', 'shop', 'echo', { labels: { version: 'v1' } }),
  k8sDeployment('echo-v2', 'shop', 'echo', { labels: { version: 'v2' } }),
].join('---\n') + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: shop }
spec:
  host: echo
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: shop }
spec:
  hosts: [echo]
  http:
  - match: [{ headers: { x-version: { exact: v2 } } }]
    route: [{ destination: { host: echo, subset: v2 } }]
  - match: [{ uri: { prefix: /trellis.Echo/ } }]
    route: [{ destination: { host: echo, subset: v1 } }]
---
${k8sService('h2web', 'shop', { name: 'http2', port: 8080, targetPort: 8080 })}---
${k8sDeployment('h2web-v1', 'shop', 'h2web')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: h2web, namespace: shop }
spec:
  hosts: [h2web]
  http:
  - route: [{ destination: { host: h2web } }]
    retries: { attempts: 2, retryOn: 5xx }
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: shop }
spec:
  selector: { app: api }
  ports: [{ name: http, port: 80, targetPort: 9000 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: api-v1, namespace: shop }
spec:
  replicas: 1
  selector: { matchLabels: { app: api } }
  template: { metadata: { labels: { app: api } }, spec: { serviceAccountName: api, containers: [{ name: api, image: api }] } }
`;

const MiB = 1024 * 1024;
const BIG = 16 * MiB;

// ---- the h2c app -------------------------------------------------------------
let bigWritten = 0;
let flakyHits = 0;

async function startH2App(name: string): Promise<App> {
  const server: Http2Server = createH2Server((req, res) => {
    app.hits++;
    if (req.url === '/big') {
      // Writes as fast as flow control lets it; counts what it could hand over.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (bigWritten < BIG) {
          bigWritten += chunk.length;
          if (!res.write(chunk)) { res.once('drain', pump); return; }
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.url === '/reset') {
      res.writeHead(200);
      res.write('partial', () => setTimeout(() => res.stream.close(constants.NGHTTP2_INTERNAL_ERROR), 20));
      return;
    }
    if (req.url === '/flaky' && flakyHits++ === 0) { res.writeHead(503); res.end('try again'); return; }
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name });
      res.end(JSON.stringify({ app: name, httpVersion: req.httpVersion, url: req.url, authority: req.authority, headers: req.headers, bodyBytes: n }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => { sessions.add(s); s.once('close', () => sessions.delete(s)); });
  const app: App = {
    name, port: (server.address() as AddressInfo).port, hits: 0, server: server as unknown as Server,
    close: () => new Promise((r) => { for (const s of sessions) s.destroy(); server.close(() => r()); }),
  };
  return app;
}

// ---- the gRPC app -------------------------------------------------------------
const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return { path: `/trellis.Echo/${name}`, requestStream, responseStream, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize };
}
const ECHO: grpc.ServiceDefinition = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
};

const cancelled = new Set<string>();

async function startGrpcApp(name: string): Promise<App> {
  const server = new grpc.Server();
  const app: App = { name, port: 0, hits: 0, server: undefined as unknown as Server, close: async () => { server.forceShutdown(); } };
  server.addService(ECHO, {
    unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      app.hits++;
      const text = call.request.toString();
      if (text === 'fail') {
        const md = new grpc.Metadata(); md.set('x-why', 'asked-to');
        cb({ code: grpc.status.NOT_FOUND, details: 'no such thing', metadata: md });
        return;
      }
      if (text.startsWith('slow:')) {
        const id = text.slice(5);
        const t = setTimeout(() => cb(null, Buffer.from(`${name}:late`)), 2000);
        call.on('cancelled', () => { clearTimeout(t); cancelled.add(id); });
        return;
      }
      cb(null, Buffer.from(JSON.stringify({ app: name, got: text, version: call.metadata.get('x-version')[0] ?? null })));
    },
    serverStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      app.hits++;
      const text = call.request.toString();
      if (text.startsWith('forever:')) {
        const id = text.slice(8);
        const t = setInterval(() => call.write(Buffer.from('tick')), 20);
        call.on('cancelled', () => { clearInterval(t); cancelled.add(id); });
        return;
      }
      const n = Number(text);
      for (let i = 0; i < n; i++) call.write(Buffer.from(`m${i}`));
      if (n === 3) { const md = new grpc.Metadata(); md.set('x-end', 'bad'); call.emit('error', { code: grpc.status.ABORTED, details: 'stopped after three', metadata: md }); return; }
      call.end();
    },
    clientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      app.hits++;
      const got: string[] = [];
      call.on('data', (b: Buffer) => got.push(b.toString()));
      call.on('end', () => cb(null, Buffer.from(got.join(','))));
    },
    bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      app.hits++;
      call.on('data', (b: Buffer) => call.write(Buffer.from(`echo:${b.toString()}`)));
      call.on('end', () => call.end());
    },
  });
  (app as { port: number }).port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
  return app;
}

// ---- the mesh -------------------------------------------------------------------
let mesh: RunningMesh;
interface EchoClient extends grpc.Client {
  unary(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, b: Buffer) => void): grpc.ClientUnaryCall;
  serverStream(req: Buffer): grpc.ClientReadableStream<Buffer>;
  clientStream(cb: (err: grpc.ServiceError | null, b: Buffer) => void): grpc.ClientWritableStream<Buffer>;
  bidi(): grpc.ClientDuplexStream<Buffer, Buffer>;
}
let client: EchoClient;
let outbound: string;
const h2Sessions: ClientHttp2Session[] = [];

before(async () => {
  mesh = await RunningMesh.start({
    yaml: YAML, caller: { workload: 'web-v1', namespace: 'shop' },
    apps: { 'echo-v1.shop': startGrpcApp, 'echo-v2.shop': startGrpcApp, 'h2web-v1.shop': startH2App },
  });
  outbound = mesh.caller.addresses.outbound!;
  const Ctor = grpc.makeGenericClientConstructor(ECHO, 'Echo');
  client = new Ctor(outbound, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'echo:9090' }) as unknown as EchoClient;
});
after(async () => {
  client?.close();
  for (const s of h2Sessions) s.destroy();
  await mesh?.close();
});

function h2(): ClientHttp2Session {
  const s = connect(`http://${outbound}`);
  s.on('error', () => undefined);
  h2Sessions.push(s);
  return s;
}

interface H2Reply { headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders; body: Buffer }
function h2Request(s: ClientHttp2Session, headers: Record<string, string>, body?: Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const st = s.request(headers, { endStream: body === undefined });
    let h: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    st.on('response', (x, flags) => { h = x; if (flags & constants.NGHTTP2_FLAG_END_STREAM) trailers = x; });
    st.on('trailers', (t) => { trailers = t; });
    st.on('data', (c: Buffer) => chunks.push(c));
    st.on('end', () => resolve({ headers: h, trailers, body: Buffer.concat(chunks) }));
    st.on('error', reject);
    if (body !== undefined) st.end(body);
  });
}

function unary(text: string, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => client.unary(Buffer.from(text), md, opts, (err: grpc.ServiceError | null, b: Buffer) => (err ? reject(err) : resolve(b))));
}

/** A gRPC message frame (uncompressed). */
function frame(b: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(b.length, 1);
  return Buffer.concat([head, b]);
}

// ---- HTTP/2 -----------------------------------------------------------------------
test('http2: an h2c prior-knowledge request passes both proxies over HTTP/2 to an h2c app', async () => {
  const r = await h2Request(h2(), { ':method': 'POST', ':path': '/hello?x=1', ':authority': 'h2web:8080', 'x-mine': 'yes' }, Buffer.alloc(1000, 1));
  assert.equal(r.headers[':status'], 200);
  assert.equal(r.headers['x-served-by'], 'h2web-v1.shop');
  const seen = JSON.parse(r.body.toString()) as { httpVersion: string; url: string; authority: string; headers: Record<string, string>; bodyBytes: number };
  assert.equal(seen.httpVersion, '2.0');
  assert.equal(seen.url, '/hello?x=1');
  assert.equal(seen.authority, 'h2web:8080');
  assert.equal(seen.headers['x-mine'], 'yes');
  assert.equal(seen.bodyBytes, 1000);
  assert.ok(seen.headers['x-request-id']);
});

test('http2: HTTP/1.1 and h2c are served on the same outbound port', async () => {
  const one = await mesh.call('http://api/plain');
  assert.equal(one.status, 200);
  assert.equal(one.json().app, 'api-v1.shop');
  const two = await h2Request(h2(), { ':path': '/plain', ':authority': 'api' });
  assert.equal(two.headers[':status'], 200);
  assert.equal(JSON.parse(two.body.toString()).app, 'api-v1.shop');
  // And an HTTP/1.1 caller of an HTTP/2 service: the proxies speak h2c onwards.
  const three = await mesh.call('http://h2web:8080/from-h1');
  assert.equal(three.status, 200);
  assert.equal(JSON.parse(three.text).httpVersion, '2.0');
});

test('http2: a retriable response from an HTTP/2 upstream is retried before anything goes downstream', async () => {
  const r = await h2Request(h2(), { ':path': '/flaky', ':authority': 'h2web:8080' });
  assert.equal(r.headers[':status'], 200);
  assert.equal(flakyHits, 2);
});

test('http2: a slow reader does not make the proxies buffer a large stream (flow control end to end)', async () => {
  const st = h2().request({ ':path': '/big', ':authority': 'h2web:8080' });
  let got = 0;
  await new Promise<void>((resolve, reject) => { st.once('data', (c: Buffer) => { got += c.length; st.pause(); resolve(); }); st.once('error', reject); });
  await new Promise((r) => setTimeout(r, 500));
  const written = bigWritten;
  console.log(`flow control: the app had written ${written} bytes to a paused reader`);
  assert.ok(written < 8 * MiB, `the app could write ${written} bytes to a reader that took ${got}: something buffers`);
  st.on('data', (c: Buffer) => { got += c.length; });
  st.resume();
  await new Promise<void>((resolve, reject) => { st.once('end', resolve); st.once('error', reject); });
  assert.equal(got, BIG);
});

// ---- gRPC -----------------------------------------------------------------------------
test('grpc: unary through both proxies, routed by :authority', async () => {
  const r = JSON.parse((await unary('hi')).toString());
  assert.deepEqual(r, { app: 'echo-v1.shop', got: 'hi', version: null });
});

test('grpc: a header match picks the subset over HTTP/2', async () => {
  const md = new grpc.Metadata(); md.set('x-version', 'v2');
  for (let i = 0; i < 3; i++) assert.equal(JSON.parse((await unary('x', md)).toString()).app, 'echo-v2.shop');
  assert.equal(JSON.parse((await unary('x')).toString()).app, 'echo-v1.shop');
});

test('grpc: server streaming, client streaming and bidi', async () => {
  const got: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.serverStream(Buffer.from('5'));
    call.on('data', (b: Buffer) => got.push(b.toString()));
    call.on('end', resolve);
    call.on('error', reject);
  });
  assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);

  const sum = await new Promise<string>((resolve, reject) => {
    const call = client.clientStream((err: grpc.ServiceError | null, b: Buffer) => (err ? reject(err) : resolve(b.toString())));
    for (const s of ['a', 'b', 'c']) call.write(Buffer.from(s));
    call.end();
  });
  assert.equal(sum, 'a,b,c');

  const echoed: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.bidi();
    let i = 0;
    call.on('data', (b: Buffer) => {
      echoed.push(b.toString());
      if (++i < 4) call.write(Buffer.from(`n${i}`)); else call.end();
    });
    call.on('end', resolve);
    call.on('error', reject);
    call.write(Buffer.from('n0'));
  });
  assert.deepEqual(echoed, ['echo:n0', 'echo:n1', 'echo:n2', 'echo:n3']);
});

test('grpc: an error status after messages comes through in trailers, with its metadata', async () => {
  const got: string[] = [];
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    const call = client.serverStream(Buffer.from('3'));
    call.on('data', (b: Buffer) => got.push(b.toString()));
    call.on('error', resolve);
    call.on('end', () => resolve(new Error('ended without an error') as grpc.ServiceError));
  });
  assert.deepEqual(got, ['m0', 'm1', 'm2']);
  assert.equal(err.code, grpc.status.ABORTED);
  assert.equal(err.details, 'stopped after three');
  assert.equal(err.metadata.get('x-end')[0], 'bad');
});

test('grpc: a trailers-only error response comes through with status, message and metadata', async () => {
  const err = await unary('fail').then(() => assert.fail('expected an error'), (e: grpc.ServiceError) => e);
  assert.equal(err.code, grpc.status.NOT_FOUND);
  assert.equal(err.details, 'no such thing');
  assert.equal(err.metadata.get('x-why')[0], 'asked-to');
});

test('grpc: a client deadline shorter than the server takes ends DEADLINE_EXCEEDED, and the server sees the cancellation', async () => {
  const t0 = Date.now();
  const err = await unary('slow:d1', undefined, { deadline: Date.now() + 300 }).then(() => assert.fail('expected an error'), (e: grpc.ServiceError) => e);
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - t0 < 1500);
  await eventually(() => (cancelled.has('d1') ? true : undefined), 3000, () => 'the server did not see the call cancelled');
});

test('grpc: the proxy enforces grpc-timeout itself and answers grpc-status 4 (trailers-only)', async () => {
  const t0 = Date.now();
  const r = await h2Request(h2(), {
    ':method': 'POST', ':path': '/trellis.Echo/Unary', ':authority': 'echo:9090', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '250m',
  }, frame(Buffer.from('slow:d2')));
  const took = Date.now() - t0;
  assert.equal(r.headers[':status'], 200);
  assert.equal(r.trailers['grpc-status'], '4');
  assert.ok(took >= 200 && took < 1500, `answered after ${took} ms`);
  await eventually(() => (cancelled.has('d2') ? true : undefined), 3000, () => 'the app did not see the call cancelled');
});

test('grpc: a client cancel reaches the server as a cancellation (RST_STREAM through both proxies)', async () => {
  const call = client.serverStream(Buffer.from('forever:c1'));
  await new Promise<void>((resolve) => call.once('data', () => resolve()));
  call.on('error', () => undefined);
  call.cancel();
  await eventually(() => (cancelled.has('c1') ? true : undefined), 3000, () => 'the server did not see the call cancelled');
});

test('grpc: the proxy\'s own errors are gRPC-shaped: no route is 12 UNIMPLEMENTED', async () => {
  const r = await h2Request(h2(), { ':method': 'POST', ':path': '/other.Service/Call', ':authority': 'echo:9090', 'content-type': 'application/grpc', te: 'trailers' }, frame(Buffer.from('x')));
  assert.equal(r.headers[':status'], 200);
  assert.equal(r.trailers['grpc-status'], '12');
  assert.match(decodeURIComponent(String(r.trailers['grpc-message'])), /no route/);
});

test('grpc: an endpoint that refuses connections is 14 UNAVAILABLE; the HTTP/2 session is opened again once it is back', async () => {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const dead = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const good = mesh.snapshot;
  const r = mesh.caller.apply(withEndpoints(good, { 'echo-v1.shop': { address: '127.0.0.1', port: dead, health: 'HEALTHY' } }));
  assert.ok(r.ok);
  try {
    const err = await unary('x').then(() => assert.fail('expected an error'), (e: grpc.ServiceError) => e);
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /connect/);
  } finally {
    assert.ok(mesh.caller.apply(good).ok);
  }
  assert.equal(JSON.parse((await unary('back')).toString()).app, 'echo-v1.shop');
});

test('http2: the outbound listener tells HTTP/1.1 from h2c even when the first bytes arrive one at a time', async () => {
  const { connect: tcp } = await import('node:net');
  const [host, port] = outbound.split(':');
  const sock = tcp(Number(port), host!);
  sock.on('error', () => undefined);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  // "P" could begin the HTTP/2 preface ("PRI * HTTP/2.0"); "PO" cannot.
  sock.write('P');
  await new Promise((r) => setTimeout(r, 30));
  sock.write('OST http://api/split HTTP/1.1\r\nhost: api\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  const text = await new Promise<string>((resolve) => {
    let s = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => { s += d; });
    sock.once('close', () => resolve(s));
    setTimeout(() => { sock.destroy(); }, 3000);
  });
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /"url":"\/split"/);
});

test('grpc: each proxy\'s record of a call says HTTP/2, gRPC and the grpc-status, from trailers as from a trailers-only answer', async () => {
  const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
  const { REQUEST_CHANNEL } = await import('../../src/protocol/request-record.js');
  const seen: import('../../src/protocol/request-record.js').RequestRecord[] = [];
  const onRecord = (r: unknown) => { seen.push(r as (typeof seen)[number]); };
  subscribe(REQUEST_CHANNEL, onRecord);
  try {
    await unary('fail').catch(() => undefined);
    await new Promise<void>((resolve) => { const c = client.serverStream(Buffer.from('3')); c.on('data', () => undefined); c.on('error', () => resolve()); c.on('end', () => resolve()); });
    const ended = await eventually(() => (seen.length >= 4 ? seen : undefined), 3000, () => `${seen.length} records`);
    const out = ended.filter((r) => r.direction === 'outbound');
    assert.deepEqual(out.map((r) => [r.protocol, r.grpc, r.grpcStatus, r.path]), [
      ['HTTP/2.0', true, '5', '/trellis.Echo/Unary'],
      ['HTTP/2.0', true, '10', '/trellis.Echo/ServerStream'],
    ]);
    assert.deepEqual(ended.filter((r) => r.direction === 'inbound').map((r) => r.grpcStatus), ['5', '10']);
  } finally {
    unsubscribe(REQUEST_CHANNEL, onRecord);
  }
});

test('http2: an app that resets its stream mid-response makes the caller\'s stream reset too (not hang, not end cleanly)', async () => {
  const st = h2().request({ ':path': '/reset', ':authority': 'h2web:8080' });
  let body = '';
  st.setEncoding('utf8');
  st.on('data', (d: string) => { body += d; });
  st.on('error', () => undefined);
  const ended = await new Promise<string>((resolve) => {
    // A reset also ends the readable side ('end'); the reset code on 'close' tells it from a clean end.
    st.once('close', () => resolve(`close ${st.rstCode}`));
    setTimeout(() => resolve('hung'), 3000);
  });
  assert.equal(body, 'partial');
  assert.match(ended, /^close [1-9]/);
});
