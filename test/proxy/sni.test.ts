/**
 * The ClientHello reader (src/proxy/sni.ts) on real ClientHellos — sent by
 * node:tls and by `openssl s_client` to a raw TCP server here — and on
 * crafted and mangled ones: the SNI and ALPN read, every prefix asking for
 * more, a hello re-framed into many records, garbage and mutations refused
 * with a reason and never a throw; and peekClientHello on real sockets
 * (split over segments, a stall, a close).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parseClientHello, peekClientHello, type PeekResult } from '../../src/proxy/sni.js';

let server: Server;
let port = 0;
/** Each accepted connection's bytes, once a complete hello (or 2 s) has arrived. */
const captured: Promise<Buffer>[] = [];
let onCapture: ((p: Promise<Buffer>) => void) | undefined;

before(async () => {
  server = createServer((s) => {
    s.on('error', () => undefined);
    const p = new Promise<Buffer>((resolve) => {
      let buf = Buffer.alloc(0);
      const timer = setTimeout(() => { s.destroy(); resolve(buf); }, 2000);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (parseClientHello(buf).kind !== 'more') { clearTimeout(timer); s.destroy(); resolve(buf); }
      });
    });
    captured.push(p);
    onCapture?.(p);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((r) => server.close(() => r())));

/** The ClientHello node:tls sends with these options (the handshake then fails: the server is not TLS). */
function nodeHello(o: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  const got = new Promise<Promise<Buffer>>((r) => { onCapture = r; });
  const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...o });
  s.on('error', () => undefined);
  return got.then((p) => p);
}

const HAVE_OPENSSL = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).status === 0;

test('node:tls: the SNI and the ALPN list of a real ClientHello', async () => {
  const hello = await nodeHello({ servername: 'API.Example.com', ALPNProtocols: ['h2', 'http/1.1'] });
  const r = parseClientHello(hello);
  assert.equal(r.kind, 'hello', JSON.stringify(r));
  if (r.kind !== 'hello') return;
  assert.equal(r.hello.serverName, 'api.example.com');
  assert.deepEqual(r.hello.alpn, ['h2', 'http/1.1']);
});

test('node:tls to an IP without servername sends no SNI: serverName undefined', async () => {
  const hello = await nodeHello({});
  const r = parseClientHello(hello);
  assert.deepEqual(r, { kind: 'hello', hello: { serverName: undefined, alpn: [] } });
});

test('openssl s_client -servername: the SNI is read', { skip: HAVE_OPENSSL ? false : 'openssl is not installed' }, async () => {
  const got = new Promise<Promise<Buffer>>((r) => { onCapture = r; });
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'db.shop.svc.cluster.local'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    const hello = await (await got);
    const r = parseClientHello(hello);
    assert.equal(r.kind === 'hello' ? r.hello.serverName : JSON.stringify(r), 'db.shop.svc.cluster.local');
  } finally {
    child.kill('SIGKILL');
  }
});

test('every strict prefix of a real ClientHello asks for more; the whole one parses', async () => {
  const hello = await nodeHello({ servername: 'prefix.example.com' });
  const end = 5 + hello.readUInt16BE(3);
  for (let n = 0; n < end; n++) assert.equal(parseClientHello(hello.subarray(0, n)).kind, 'more', `prefix of ${n} bytes`);
  assert.equal(parseClientHello(hello.subarray(0, end)).kind, 'hello');
  // Bytes after the ClientHello (early data, a second record) do not matter.
  assert.equal(parseClientHello(Buffer.concat([hello.subarray(0, end), Buffer.from([23, 3, 3, 0, 1, 0])])).kind, 'hello');
});

/** The hello's handshake message cut into records of `size` bytes. */
function reframe(hello: Buffer, size: number): Buffer {
  const hs = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let at = 0; at < hs.length; at += size) {
    const frag = hs.subarray(at, at + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(frag.length, 3);
    out.push(head, frag);
  }
  return Buffer.concat(out);
}

test('a ClientHello fragmented over many TLS records is reassembled', async () => {
  const hello = await nodeHello({ servername: 'fragments.example.com' });
  for (const size of [1, 3, 64, 200]) {
    const r = parseClientHello(reframe(hello, size));
    assert.equal(r.kind === 'hello' ? r.hello.serverName : JSON.stringify(r), 'fragments.example.com', `records of ${size} bytes`);
  }
  const framed = reframe(hello, 50);
  assert.equal(parseClientHello(framed.subarray(0, framed.length - 1)).kind, 'more');
  // A record of another type in the middle of the handshake is an error.
  const broken = Buffer.from(framed);
  broken[55] = 23;
  assert.equal(parseClientHello(broken).kind, 'error');
});

/** A hand-made ClientHello with these extensions ([type, data]). */
function crafted(exts: readonly (readonly [number, Buffer])[], record = { type: 22, major: 3 }): Buffer {
  const extBytes = Buffer.concat(exts.map(([t, d]) => { const h = Buffer.alloc(4); h.writeUInt16BE(t, 0); h.writeUInt16BE(d.length, 2); return Buffer.concat([h, d]); }));
  const extLen = Buffer.alloc(2);
  extLen.writeUInt16BE(extBytes.length, 0);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0]), Buffer.from([0, 2, 0x13, 0x01]), Buffer.from([1, 0]), extLen, extBytes]);
  const hs = Buffer.concat([Buffer.from([1, 0, 0, 0]), body]);
  hs.writeUIntBE(body.length, 1, 3);
  const rec = Buffer.from([record.type, record.major, 1, 0, 0]);
  rec.writeUInt16BE(hs.length, 3);
  return Buffer.concat([rec, hs]);
}

function sniExt(...names: readonly (string | Buffer)[]): Buffer {
  const entries = Buffer.concat(names.map((n) => { const b = Buffer.isBuffer(n) ? n : Buffer.from(n, 'latin1'); const h = Buffer.from([0, 0, 0]); h.writeUInt16BE(b.length, 1); return Buffer.concat([h, b]); }));
  const len = Buffer.alloc(2);
  len.writeUInt16BE(entries.length, 0);
  return Buffer.concat([len, entries]);
}

test('crafted hellos: a trailing dot and capitals are normalized; bad names, duplicates and foreign records are refused', () => {
  const ok = (b: Buffer) => { const r = parseClientHello(b); return r.kind === 'hello' ? r.hello.serverName : `${r.kind}${r.kind === 'error' ? ` ${r.code}: ${r.reason}` : ''}`; };
  const code = (b: Buffer) => { const r = parseClientHello(b); return r.kind === 'error' ? r.code : r.kind; };
  assert.equal(ok(crafted([[0, sniExt('Web.Example.COM.')]])), 'web.example.com');
  assert.equal(ok(crafted([[10, Buffer.from([0, 2, 0, 29])], [0, sniExt('a.b')]])), 'a.b');
  assert.equal(code(crafted([[0, sniExt('a.b\u0000evil.com')]])), 'MALFORMED');
  assert.equal(code(crafted([[0, sniExt('a b.com')]])), 'MALFORMED');
  assert.equal(code(crafted([[0, sniExt('one.com', 'two.com')]])), 'MALFORMED');
  assert.equal(code(crafted([[0, sniExt('one.com')], [0, sniExt('two.com')]])), 'MALFORMED');
  assert.equal(code(crafted([[0, sniExt('')]])), 'MALFORMED');
  assert.equal(code(crafted([[0, sniExt('x'.repeat(256))]])), 'MALFORMED');
  assert.equal(code(crafted([[0, sniExt('a.com')]], { type: 23, major: 3 })), 'NOT_TLS');
  assert.equal(code(crafted([[0, sniExt('a.com')]], { type: 22, major: 2 })), 'NOT_TLS');
  assert.equal(code(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n')), 'NOT_TLS');
  assert.equal(code(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02])), 'NOT_TLS');
  // Bounded: a hello larger than the limit is refused before it has all arrived.
  const big = crafted([[0, sniExt('big.example.com')], [21, Buffer.alloc(5000)]]);
  assert.equal(code(big.subarray(0, 100)), 'more');
  assert.equal(parseClientHello(big.subarray(0, 100), 1024).kind, 'error');
  assert.equal(ok(big), 'big.example.com');
});

test('10 000 random mutations of a real hello never throw, and each answer is more, a hello or an error with a reason', async () => {
  const hello = await nodeHello({ servername: 'fuzz.example.com', ALPNProtocols: ['h2'] });
  let seed = 12345;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const kinds: Record<string, number> = {};
  for (let i = 0; i < 10_000; i++) {
    const b = Buffer.from(hello);
    for (let k = 1 + rand(4); k > 0; k--) b[rand(b.length)] = rand(256);
    const cut = rand(3) === 0 ? b.subarray(0, rand(b.length)) : b;
    const r = parseClientHello(cut);
    kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
    if (r.kind === 'error') assert.ok(r.reason.length > 0);
  }
  assert.ok((kinds.error ?? 0) > 0 && (kinds.hello ?? 0) > 0, JSON.stringify(kinds));
});

/** A socket pair on loopback: the client's end and the server's (paused) end. */
async function pair(): Promise<{ client: Socket; server: Socket; close: () => void }> {
  const srv = createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, noDelay: true });
  client.on('error', () => undefined);
  const server = await accepted;
  server.on('error', () => undefined);
  return { client, server, close: () => { client.destroy(); server.destroy(); srv.close(); } };
}

const peek = (s: Socket, timeoutMs = 5000) => new Promise<PeekResult>((r) => peekClientHello(s, { timeoutMs }, r));

test('peekClientHello: a hello written in pieces with pauses arrives whole, every byte handed back', async () => {
  const hello = await nodeHello({ servername: 'pieces.example.com' });
  const p = await pair();
  try {
    const result = peek(p.server);
    for (let at = 0; at < hello.length; at += 40) {
      p.client.write(hello.subarray(at, at + 40));
      await new Promise((r) => setTimeout(r, 15));
    }
    const r = await result;
    assert.equal(r.ok && r.hello.serverName, 'pieces.example.com');
    assert.ok(r.bytes.equals(hello), 'the bytes read are the bytes sent');
    assert.equal(p.server.isPaused(), true, 'the socket is left paused for whoever forwards it');
  } finally {
    p.close();
  }
});

test('peekClientHello: a stall ends with TIMEOUT, a close with CLOSED, garbage at once with NOT_TLS', async () => {
  const hello = await nodeHello({ servername: 'stall.example.com' });
  const a = await pair();
  const b = await pair();
  const c = await pair();
  try {
    a.client.write(hello.subarray(0, 20));
    const t0 = Date.now();
    const stalled = await peek(a.server, 300);
    assert.deepEqual([stalled.ok, !stalled.ok && stalled.code, stalled.bytes.length], [false, 'TIMEOUT', 20]);
    assert.ok(Date.now() - t0 < 4000);
    b.client.end(hello.subarray(0, 30));
    const closed = await peek(b.server);
    assert.deepEqual([closed.ok, !closed.ok && closed.code], [false, 'CLOSED']);
    c.client.write('SSH-2.0-OpenSSH_9.2\r\n');
    const garbage = await peek(c.server);
    assert.deepEqual([garbage.ok, !garbage.ok && garbage.code], [false, 'NOT_TLS']);
  } finally {
    a.close(); b.close(); c.close();
  }
});
