/**
 * Bad input against running proxies, with raw `node:net` clients (and raw
 * HTTP/2 frames): malformed request lines and headers, header blocks over
 * the limit (431), bodies over the limit (413, with Content-Length before
 * anything goes upstream, chunked when the limit is crossed), request
 * smuggling attempts, a slowloris client (408 at the headers bound), broken
 * HTTP/2 sessions (GOAWAY PROTOCOL_ERROR), a client that resets its stream
 * mid-body, and an upstream that closes early (503 UC, or a cut response).
 * Each on the caller's outbound listener, the callee's inbound listener and
 * a gateway listener where it applies; the app behind them never sees a
 * request from the bad input complete (let alone two), and after each the
 * same proxy serves a good request.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect as h2connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { REQUEST_CHANNEL, type RequestRecord, type ResponseFlag } from '../../src/protocol/request-record.js';
import { eventually } from '../helpers/proxy.js';
import { LimitedMesh, open, rawExchange, type Target } from './limited-mesh.js';

const LIMITS = { maxRequestHeadersBytes: 4096, maxRequestBodyBytes: 4096, headersTimeoutMs: 1000 };

/** What the app saw of each request. */
interface Seen { readonly url: string; bytes: number; complete: boolean; closed: boolean }
const seen: Seen[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  const s: Seen = { url: req.url ?? '', bytes: 0, complete: false, closed: false };
  seen.push(s);
  req.on('close', () => { s.closed = true; });
  if (s.url.startsWith('/close-early')) { req.socket.destroy(); return; }
  if (s.url.startsWith('/close-mid')) {
    res.writeHead(200, { 'content-length': '1000' });
    res.write('x'.repeat(100), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  req.on('data', (c: Buffer) => { s.bytes += c.length; });
  req.on('end', () => { s.complete = true; res.end(JSON.stringify(s)); });
}

let mesh: LimitedMesh;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await LimitedMesh.start(LIMITS, handler, { gateway: true });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

/** The same listener still serves: a good request reaches the app. */
async function assertServes(t: Target): Promise<void> {
  const r = await rawExchange(t.address, [`GET ${t.requestTarget('/ok')} HTTP/1.1\r\nHost: ${t.host}\r\nConnection: close\r\n\r\n`]);
  assert.equal(r.status, 200, `${t.name} serves a good request after the bad one: ${r.raw.slice(0, 200)}`);
}

/** What the app saw since `from`, once the good request after the bad input has arrived. */
function seenSince(from: number): Seen[] {
  return seen.slice(from).filter((s) => s.url !== '/ok');
}

function assertRecorded(from: number, t: Target, status: number, flag: ResponseFlag | undefined): void {
  const found = records.slice(from).find((r) => r.direction === t.name && r.status === status && (flag === undefined || r.responseFlags.includes(flag)));
  assert.ok(found, `a ${t.name} record ${status} ${flag ?? ''}: ${JSON.stringify(records.slice(from).map((r) => [r.direction, r.status, r.responseFlags]))}`);
}

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: api\r\n\r\n';

/** Input Node's parser refuses: each answered with its status, connection: close, and never reaching the app. */
const PARSER_CASES: readonly { name: string; status: number; flag: ResponseFlag; text: RegExp; bytes(t: Target): string }[] = [
  { name: 'a malformed request line', status: 400, flag: 'DPE', text: /^malformed HTTP request: .+ \(HPE_INVALID_VERSION\)\n$/, bytes: (t) => `GET ${t.requestTarget('/x')} HTTP/1.1 junk\r\nHost: ${t.host}\r\n\r\n` },
  { name: 'a method that is no token', status: 400, flag: 'DPE', text: /^malformed HTTP request: .+ \(HPE_INVALID_METHOD\)\n$/, bytes: (t) => `G@T ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n` },
  { name: 'a header line without a colon', status: 400, flag: 'DPE', text: /\(HPE_INVALID_HEADER_TOKEN\)\n$/, bytes: (t) => `GET ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nNoColonHere\r\n\r\n` },
  { name: 'a header name with a space', status: 400, flag: 'DPE', text: /\(HPE_INVALID_HEADER_TOKEN\)\n$/, bytes: (t) => `GET ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nBad Name: x\r\n\r\n` },
  {
    name: 'a header block over the limit', status: 431, flag: 'DPE', text: /^request headers too large: the request head is over the limit of 4096 bytes\n$/,
    bytes: (t) => `GET ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`,
  },
  {
    name: 'smuggling: Content-Length and Transfer-Encoding', status: 400, flag: 'DPE', text: /Content-Length \(HPE_INVALID_TRANSFER_ENCODING\)\n$/,
    bytes: (t) => `POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  },
  {
    name: 'smuggling: two different Content-Lengths', status: 400, flag: 'DPE', text: /\(HPE_UNEXPECTED_CONTENT_LENGTH\)\n$/,
    bytes: (t) => `POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nContent-Length: 5\r\nContent-Length: 42\r\n\r\nhello${SMUGGLED}`,
  },
  {
    name: 'smuggling: a repeated Content-Length', status: 400, flag: 'DPE', text: /\(HPE_UNEXPECTED_CONTENT_LENGTH\)\n$/,
    bytes: (t) => `POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
  },
  {
    name: 'smuggling: obs-fold (a folded header line)', status: 400, flag: 'DPE', text: /\(HPE_INVALID_HEADER_TOKEN\)\n$/,
    bytes: (t) => `POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello`,
  },
  {
    name: 'smuggling: Transfer-Encoding that does not end in chunked', status: 400, flag: 'DPE', text: /\(HPE_INVALID_TRANSFER_ENCODING\)\n$/,
    bytes: (t) => `POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
  },
  {
    name: 'a bad chunk size', status: 400, flag: 'DPE', text: /\(HPE_INVALID_CHUNK_SIZE\)\n$/,
    bytes: (t) => `POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
  },
  {
    name: 'a chunk size that overflows', status: 400, flag: 'DPE', text: /\(HPE_INVALID_CHUNK_SIZE\)\n$/,
    bytes: (t) => `POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n`,
  },
];

for (const c of PARSER_CASES) {
  test(`bad input: ${c.name} is ${c.status} with connection: close on every listener, and never reaches the app`, async () => {
    for (const t of mesh.targets) {
      const s0 = seen.length;
      const r0 = records.length;
      const r = await rawExchange(t.address, [c.bytes(t)]);
      assert.equal(r.status, c.status, `${t.name}: ${r.raw.slice(0, 300)}`);
      assert.equal(r.headers.connection, 'close', t.name);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8', t.name);
      assert.match(r.body, c.text, t.name);
      assert.ok(r.closed, `${t.name}: the proxy closed the connection`);
      await assertServes(t);
      assert.deepEqual(seenSince(s0).filter((s) => s.complete || s.url.includes('smuggled')), [], `${t.name}: the app saw ${JSON.stringify(seenSince(s0))}`);
      assertRecorded(r0, t, c.status, c.flag);
    }
  });
}

test('bad input: a bad chunk after the request went upstream is 400 DPE; the app sees its request aborted, never complete', async () => {
  for (const t of mesh.targets) {
    const s0 = seen.length;
    const r0 = records.length;
    const s = await open(t.address);
    let raw = '';
    s.on('data', (b: Buffer) => { raw += b.toString('latin1'); });
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.write(`POST ${t.requestTarget('/upload')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    const upload = await eventually(() => seen.slice(s0).find((x) => x.url === '/upload' && x.bytes === 5), 3000, () => `${t.name}: the app never got the first chunk`);
    s.write(`zz\r\nworld\r\n0\r\n\r\n${SMUGGLED}`);
    await closed;
    assert.match(raw, /^HTTP\/1\.1 400 Bad Request\r\n/, `${t.name}: ${raw}`);
    assert.match(raw, /\r\nconnection: close\r\n/i);
    assert.match(raw, /malformed HTTP request: .*\(HPE_INVALID_CHUNK_SIZE\)\n$/);
    await eventually(() => (upload.closed ? true : undefined), 3000, () => `${t.name}: the app's request is still open`);
    assert.equal(upload.complete, false, `${t.name}: the app saw the request complete`);
    await assertServes(t);
    assert.deepEqual(seenSince(s0).filter((x) => x.complete || x.url.includes('smuggled')), []);
    assertRecorded(r0, t, 400, 'DPE');
  }
});

test('bad input: a Content-Length over the body limit is 413 before anything goes upstream (and before 100 Continue)', async () => {
  for (const t of mesh.targets) {
    const s0 = seen.length;
    const r = await rawExchange(t.address, [`POST ${t.requestTarget('/x')} HTTP/1.1\r\nHost: ${t.host}\r\nContent-Length: 10000\r\nExpect: 100-continue\r\n\r\n`]);
    assert.equal(r.status, 413, `${t.name}: ${r.raw}`);
    assert.doesNotMatch(r.raw, /100 Continue/);
    assert.equal(r.body, 'request body too large: content-length 10000 is over the limit of 4096 bytes\n');
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.closed, `${t.name}: closed`);
    assert.equal(seen.length, s0, `${t.name}: the app saw ${JSON.stringify(seen.slice(s0))}`);
    await assertServes(t);
  }
});

test('bad input: a chunked body is cut where it crosses the limit: 413, the app sees its request aborted; one within the limit passes', async () => {
  const chunk = (n: number) => `${n.toString(16)}\r\n${'b'.repeat(n)}\r\n`;
  for (const t of mesh.targets) {
    const s0 = seen.length;
    const r0 = records.length;
    const r = await rawExchange(t.address, [
      `POST ${t.requestTarget('/upload')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(2000)}`, chunk(2000), chunk(2000), chunk(2000), '0\r\n\r\n',
    ], { gapMs: 100 });
    assert.equal(r.status, 413, `${t.name}: ${r.raw}`);
    assert.equal(r.body, 'request body too large: the body passed the limit of 4096 bytes\n');
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.closed);
    const upload = seen.slice(s0).filter((x) => x.url === '/upload');
    await eventually(() => (upload.every((x) => x.closed) ? true : undefined), 3000, () => `${t.name}: the app's request is still open`);
    assert.ok(upload.every((x) => !x.complete && x.bytes <= 4096), `${t.name}: the app saw ${JSON.stringify(upload)}`);
    assertRecorded(r0, t, 413, undefined);
    const ok = await rawExchange(t.address, [`POST ${t.requestTarget('/upload')} HTTP/1.1\r\nHost: ${t.host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk(2000)}`, `${chunk(2000)}0\r\n\r\n`], { gapMs: 50 });
    assert.equal(ok.status, 200, ok.raw);
    assert.equal(JSON.parse(ok.body.replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, '')).bytes, 4000);
  }
});

test('bad input: a slowloris client (one header byte at a time) gets 408 at the headers bound and is closed', async () => {
  for (const t of mesh.targets) {
    const r0 = records.length;
    const request = `GET ${t.requestTarget('/slow')} HTTP/1.1\r\nHost: ${t.host}\r\nX-Slow: ${'s'.repeat(100)}\r\n\r\n`;
    const r = await rawExchange(t.address, [...request], { gapMs: 40, waitMs: 6000 });
    assert.equal(r.status, 408, `${t.name}: ${r.raw}`);
    assert.equal(r.body, 'request header timeout: the request head did not arrive within 1000 ms\n');
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.closed && r.ms >= 900 && r.ms < 3000, `${t.name}: closed after ${r.ms} ms`);
    assertRecorded(r0, t, 408, 'DT');
    await assertServes(t);
  }
});

// ---- HTTP/2 -----------------------------------------------------------------------

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
function frame(type: number, flags: number, stream: number, payload = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
const SETTINGS = frame(0x4, 0, 0);
/** HEADERS (END_STREAM | END_HEADERS) with `:method GET` (HPACK static index 2). */
const headersOn = (stream: number) => frame(0x1, 0x5, stream, Buffer.from([0x82]));

/** The GOAWAY error codes in what the proxy sent back. */
function goaways(raw: Buffer): number[] {
  const codes: number[] = [];
  for (let i = 0; i + 9 <= raw.length;) {
    const len = raw.readUIntBE(i, 3);
    if (raw[i + 3] === 0x7) codes.push(raw.readUInt32BE(i + 13));
    i += 9 + len;
  }
  return codes;
}

async function rawH2(address: string, bytes: Buffer): Promise<{ raw: Buffer; closed: boolean }> {
  const s = await open(address);
  const chunks: Buffer[] = [];
  s.on('data', (b: Buffer) => chunks.push(b));
  s.on('error', () => undefined);
  const closed = await new Promise<boolean>((resolve) => {
    s.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 3000);
    s.write(bytes);
  });
  s.destroy();
  return { raw: Buffer.concat(chunks), closed };
}

function h2get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ':authority': 'api', ...headers });
    let body = '';
    let status = 0;
    req.on('response', (h: IncomingHttpHeaders) => { status = Number(h[':status']); });
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

async function assertServesH2(address: string): Promise<void> {
  const session = h2connect(`http://${address}`);
  try {
    const r = await h2get(session, '/ok');
    assert.equal(r.status, 200, `HTTP/2 still served: ${r.body}`);
  } finally {
    session.destroy();
  }
}

test('bad input: broken HTTP/2 sessions end with GOAWAY PROTOCOL_ERROR (DPE), and the listener serves other clients', async () => {
  const cases: Record<string, Buffer> = {
    'a bad preface after PRI': Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'),
    'garbage after the preface': Buffer.from(`${PREFACE}this is not an HTTP/2 frame at all\r\n`),
    'a HEADERS frame on stream 0': Buffer.concat([Buffer.from(PREFACE), SETTINGS, headersOn(0)]),
  };
  for (const t of [mesh.outbound, mesh.inbound]) {
    for (const [name, bytes] of Object.entries(cases)) {
      const r0 = records.length;
      const r = await rawH2(t.address, bytes);
      assert.deepEqual(goaways(r.raw), [constants.NGHTTP2_PROTOCOL_ERROR], `${t.name}, ${name}: ${r.raw.toString('hex')}`);
      assert.ok(r.closed, `${t.name}, ${name}: the proxy closed the connection`);
      assertRecorded(r0, t, 0, 'DPE');
      await assertServesH2(t.address);
      await assertServes(t);
    }
  }
});

test('bad input: an HTTP/2 header list over the limit is 431 on its stream; the session goes on', async () => {
  for (const t of [mesh.outbound, mesh.inbound]) {
    const session = h2connect(`http://${t.address}`);
    try {
      const s0 = seen.length;
      const r0 = records.length;
      const r = await h2get(session, '/x', { 'x-big': 'a'.repeat(5000) });
      assert.equal(r.status, 431, `${t.name}: ${r.body}`);
      assert.equal(r.body, 'request headers too large: the request head is over the limit of 4096 bytes\n');
      assert.equal(seen.length, s0, 'the app saw nothing');
      assertRecorded(r0, t, 431, 'DPE');
      assert.equal((await h2get(session, '/ok')).status, 200, `${t.name}: the same session serves on`);
    } finally {
      session.destroy();
    }
  }
});

/** An HPACK literal (indexed name, no Huffman) for a request pseudo-header. */
const literal = (nameIndex: number, value: string) => Buffer.concat([Buffer.from([0x40 | nameIndex, value.length]), Buffer.from(value, 'latin1')]);
/** HEADERS for `<method> <path>` on `stream` (:method GET = static 2, POST = 3; :scheme http = 6; :path, :authority by name). */
function requestHeaders(stream: number, method: 'GET' | 'POST', path: string, endStream: boolean): Buffer {
  const block = Buffer.concat([Buffer.from([method === 'GET' ? 0x82 : 0x83, 0x86]), literal(4, path), literal(1, 'api')]);
  return frame(0x1, 0x4 | (endStream ? 0x1 : 0), stream, block);
}
const rstStream = (stream: number, code: number) => { const p = Buffer.alloc(4); p.writeUInt32BE(code); return frame(0x3, 0, stream, p); };

test('bad input: an HTTP/2 client that resets its stream mid-body (RST_STREAM, no END_STREAM): the upload never completes upstream (DC); the session goes on', async () => {
  for (const t of [mesh.outbound, mesh.inbound]) {
    const s0 = seen.length;
    const r0 = records.length;
    const s = await open(t.address);
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.write(Buffer.concat([Buffer.from(PREFACE), SETTINGS, requestHeaders(1, 'POST', '/upload', false), frame(0x0, 0, 1, Buffer.alloc(1000, 1))]));
    const upload = await eventually(() => seen.slice(s0).find((x) => x.url === '/upload' && x.bytes === 1000), 3000, () => `${t.name}: the app never got the first bytes`);
    s.write(rstStream(1, constants.NGHTTP2_CANCEL));
    await eventually(() => (upload.closed ? true : undefined), 3000, () => `${t.name}: the app's request is still open`);
    assert.equal(upload.complete, false, `${t.name}: the app saw a truncated upload as complete`);
    const rec = await eventually(() => records.slice(r0).find((r) => r.direction === t.name && r.path === '/upload'), 3000, () => 'no record');
    assert.deepEqual(rec.responseFlags, ['DC']);
    // The same session: another stream is answered (HEADERS on stream 3 leading with :status 200, HPACK static index 8).
    s.write(requestHeaders(3, 'GET', '/ok', true));
    await eventually(() => {
      const raw = Buffer.concat(got);
      for (let i = 0; i + 9 <= raw.length; i += 9 + raw.readUIntBE(i, 3)) {
        if (raw[i + 3] === 0x1 && (raw.readUInt32BE(i + 5) & 0x7fffffff) === 3) return raw[i + 9] === 0x88 ? true : undefined;
      }
      return undefined;
    }, 3000, () => `${t.name}: no 200 on stream 3: ${Buffer.concat(got).toString('hex')}`);
    s.destroy();
  }
});

// ---- the upstream closes early ----------------------------------------------------

test('bad input: an upstream that closes before responding is 503 UC; mid-response the caller is cut (UC); the proxy serves on', async () => {
  for (const t of mesh.targets) {
    const r0 = records.length;
    const early = await rawExchange(t.address, [`GET ${t.requestTarget('/close-early')} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`], { waitMs: 1500 });
    assert.equal(early.status, 503, `${t.name}: ${early.raw}`);
    assert.match(early.body, /^upstream reset before response headers: reset \(/, t.name);
    // The callee's sidecar saw the app close; a caller's proxy passes (and retries) its 503.
    assertRecorded(r0, mesh.inbound, 503, 'UC');
    await assertServes(t);

    const r1 = records.length;
    const mid = await rawExchange(t.address, [`GET ${t.requestTarget('/close-mid')} HTTP/1.1\r\nHost: ${t.host}\r\n\r\n`], { waitMs: 3000 });
    assert.equal(mid.status, 200, `${t.name}: ${mid.raw.slice(0, 200)}`);
    assert.ok(mid.closed && mid.body.length < 1000, `${t.name}: the response was cut (${mid.body.length} bytes, closed ${mid.closed})`);
    await eventually(() => records.slice(r1).find((r) => r.direction === t.name && r.responseFlags.includes('UC')), 3000, () => `${t.name}: no UC record`);
    await assertServes(t);
  }
});

test('bad input: refused input is counted in the proxy metrics by direction and flag', async () => {
  const text = await (await fetch(`http://${mesh.caller.addresses.admin}/metrics`)).text();
  const dpe = Number(/trellis_proxy_response_flags_total\{direction="outbound",flag="DPE"\} (\d+)/.exec(text)?.[1] ?? 0);
  assert.ok(dpe >= PARSER_CASES.length, `outbound DPE counted ${dpe} times:\n${text.split('\n').filter((l) => l.includes('flags_total')).join('\n')}`);
  assert.match(text, /trellis_proxy_requests_total\{direction="outbound",status_class="4xx"\} \d+/);
});
