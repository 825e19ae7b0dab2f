/**
 * The upstream response parser on its own (it is pure): every framing a
 * server may use, fed whole, split at every byte and byte by byte, gives the
 * same head, body and trailers; interim responses are skipped and a 101 is
 * refused; malformed or ambiguous framing is an error with the code errors.ts
 * classifies; hop-by-hop fields stay out of the head; keep-alive is decided
 * as RFC 9112 says, with the server's Keep-Alive hint; pause holds the rest
 * of a buffer until resume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseParser, upstreamError, type ResponseHeaders, type ResponseSink } from '../../src/proxy/h1-response-parser.js';

const MAX_HEAD = 1024;

interface Seen {
  status: number;
  /** The head's fields as [name, value] in the order the parser gave them (the object has no prototype, so it is copied). */
  headers: [string, string | string[]][];
  raw: ResponseHeaders | undefined;
  heads: number;
  /** The body chunks as handed on, kept as they are: a chunk that shares memory the caller reuses shows here. */
  chunks: Buffer[];
  readonly body: string;
  /** Undefined until the response ended. */
  trailers: Record<string, string | string[]> | undefined;
  ends: number;
}

function sink(): ResponseSink & { seen: Seen } {
  const seen: Seen = {
    status: 0, headers: [], raw: undefined, heads: 0, chunks: [], trailers: undefined, ends: 0,
    get body() { return Buffer.concat(this.chunks).toString('latin1'); },
  };
  return {
    seen,
    onHead(status, headers) { seen.status = status; seen.headers = Object.entries(headers); seen.raw = headers; seen.heads++; },
    onBody(chunk) { seen.chunks.push(chunk); },
    onEnd(trailers) { seen.trailers = { ...trailers }; seen.ends++; },
  };
}

interface Parsed { seen: Seen; p: ResponseParser; error?: Error & { code?: string } }

/**
 * Parses `text` in pieces cut at `cuts`; stops at the first error.
 * `transient`: each piece goes in one scratch buffer, handed over as a
 * socket's `onread` buffer is, and scribbled over once `execute` returns.
 */
function parse(text: string, cuts: readonly number[] = [], noBody = false, transient = false): Parsed {
  const s = sink();
  const p = new ResponseParser(s, MAX_HEAD);
  p.reset(noBody);
  const buf = Buffer.from(text, 'latin1');
  const scratch = Buffer.alloc(buf.length);
  let at = 0;
  for (const c of [...cuts, buf.length]) {
    let piece = buf.subarray(at, c);
    if (transient) piece = scratch.subarray(0, buf.copy(scratch, 0, at, c));
    const err = p.execute(piece, transient);
    if (transient) scratch.fill(0x23);
    at = c;
    if (err) return { seen: s.seen, p, error: err };
  }
  return { seen: s.seen, p };
}

const everyByte = (text: string) => Array.from({ length: Buffer.byteLength(text, 'latin1') }, (_, i) => i);

interface Case { text: string; status: number; body: string; headers?: [string, string | string[]][]; trailers?: Record<string, string | string[]>; keepAlive?: boolean; noBody?: boolean }

const CASES: Record<string, Case> = {
  'content-length': {
    text: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\nX-Two:  a b \r\n\r\nhello',
    status: 200, body: 'hello', keepAlive: true,
    headers: [['content-type', 'text/plain'], ['content-length', '5'], ['x-two', 'a b']],
  },
  'chunked with extensions and trailers': {
    text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1 ; x\r\n!\r\nA\r\n0123456789\r\n0\r\nGrpc-Status: 0\r\nX-T:  v \r\nX-T: w\r\n\r\n',
    status: 200, body: 'hello!0123456789', headers: [], keepAlive: true,
    trailers: { 'grpc-status': '0', 'x-t': ['v', 'w'] },
  },
  'chunked after another coding': {
    text: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    status: 200, body: 'abc', headers: [],
  },
  'a repeated field is an array, in order': {
    text: 'HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nX: 1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\nContent-Length: 0\r\n\r\n',
    status: 201, body: '', headers: [['set-cookie', ['a=1', 'b=2', 'c=3']], ['x', '1'], ['content-length', '0']],
  },
  'fields named like Object.prototype members': {
    text: 'HTTP/1.1 200 OK\r\nConstructor: a\r\nconstructor: b\r\n__proto__: p\r\ntoString: t\r\nhasOwnProperty: h\r\nContent-Length: 0\r\n\r\n',
    status: 200, body: '',
    headers: [['constructor', ['a', 'b']], ['__proto__', 'p'], ['tostring', 't'], ['hasownproperty', 'h'], ['content-length', '0']],
  },
  'interim responses skipped, their fields dropped': {
    text: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    status: 200, body: 'ok', headers: [['content-length', '2']],
  },
  'a status line without a reason phrase': { text: 'HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx', status: 200, body: 'x' },
  '204 has no body': { text: 'HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n', status: 204, body: '', keepAlive: true },
  '304 has no body': { text: 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: "x"\r\n\r\n', status: 304, body: '', headers: [['etag', '"x"']] },
  'a HEAD response has no body, whatever its length says': { text: 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', status: 200, body: '', noBody: true, headers: [['content-length', '1000']] },
  'content-length repeated with one value': { text: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', status: 200, body: 'abc' },
};

for (const [name, c] of Object.entries(CASES)) {
  test(`parser: ${name}, whole, split at every byte and byte by byte, from a buffer kept or reused`, () => {
    const len = Buffer.byteLength(c.text, 'latin1');
    const runs: [string, number[]][] = [['whole', []]];
    for (let cut = 0; cut < len; cut++) runs.push([`split at ${cut}`, [cut]]);
    runs.push(['byte by byte', everyByte(c.text)]);
    for (const [where, cuts, transient] of runs.flatMap(([w, cuts]) => [[w, cuts, false], [`${w}, transient`, cuts, true]] as const)) {
      const r = parse(c.text, cuts, c.noBody, transient);
      assert.equal(r.error, undefined, `${where}: ${r.error?.message}`);
      assert.equal(r.seen.heads, 1, `${where}: one head`);
      assert.equal(r.seen.status, c.status, where);
      assert.equal(r.seen.body, c.body, where);
      if (c.headers) assert.deepEqual(r.seen.headers, c.headers, where);
      assert.deepEqual(r.seen.trailers, c.trailers ?? {}, `${where}: ended, with its trailers`);
      assert.equal(r.seen.ends, 1, where);
      assert.equal(r.p.idle, true, where);
      assert.equal(r.p.garbage, false, where);
      if (c.keepAlive !== undefined) assert.equal(r.p.keepAlive, c.keepAlive, where);
    }
  });
}

test('parser: a field named constructor reads as a plain value', () => {
  const r = parse('HTTP/1.1 200 OK\r\nconstructor: x\r\nContent-Length: 0\r\n\r\n');
  assert.equal(r.error, undefined);
  assert.equal(r.seen.raw!['constructor'], 'x');
  assert.equal(r.seen.raw!['toString'], undefined, 'no inherited members either');
});

test('parser: a body without length, or after an unknown coding, runs to the end of the connection, which then is not kept', () => {
  for (const transient of [false, true]) {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, part two', [30, 50, 55], false, transient);
    assert.equal(r.error, undefined);
    assert.equal(r.p.untilClose, true);
    assert.equal(r.p.keepAlive, false, 'an HTTP/1.1 response read to the close cannot leave a connection behind');
    assert.equal(r.seen.trailers, undefined, 'not ended yet');
    assert.equal(r.p.finish(), undefined);
    assert.deepEqual([r.seen.body, r.seen.trailers, r.p.idle], ['part one, part two', {}, true], `transient: ${transient}`);
  }

  const gz = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz');
  assert.equal(gz.p.untilClose, true, 'RFC 9112 §6.3: the last coding is not chunked');
  assert.equal(gz.seen.body, 'xyz');
  assert.equal(gz.p.finish(), undefined);
  assert.equal(gz.seen.ends, 1);
});

test('parser: the end of the connection before the response ended is UND_ERR_SOCKET', () => {
  const pieces: Record<string, string> = {
    'nothing yet': '',
    'half a head': 'HTTP/1.1 200 OK\r\nContent-Le',
    'short body': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
    'chunked without its last chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n',
    'chunked without the end of its trailers': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n',
  };
  for (const [name, text] of Object.entries(pieces)) {
    const r = parse(text);
    assert.equal(r.error, undefined, name);
    const err = r.p.finish() as (Error & { code?: string }) | undefined;
    assert.equal(err?.code, 'UND_ERR_SOCKET', name);
    assert.match(err!.message, /closed the connection before the response ended/, name);
    assert.equal(r.seen.ends, 0, `${name}: not ended`);
  }
  // Between responses the end of the connection is no error.
  const done = parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  assert.equal(done.p.finish(), undefined);
});

test('parser: keep-alive as HTTP/1.0 and 1.1 and the Connection header say, with the Keep-Alive hint in ms', () => {
  const ka = (head: string) => {
    const r = parse(`${head}\r\nContent-Length: 0\r\n\r\n`);
    assert.equal(r.error, undefined, head);
    return [r.p.keepAlive, r.p.keepAliveHintMs];
  };
  assert.deepEqual(ka('HTTP/1.1 200 OK'), [true, undefined]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nConnection: close'), [false, undefined]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nConnection: Upgrade, Close'), [false, undefined]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close'), [false, undefined]);
  assert.deepEqual(ka('HTTP/1.0 200 OK'), [false, undefined]);
  assert.deepEqual(ka('HTTP/1.0 200 OK\r\nConnection: keep-alive'), [true, undefined]);
  assert.deepEqual(ka('HTTP/1.0 200 OK\r\nConnection: X-A, Keep-Alive'), [true, undefined]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5'), [true, 5000]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100'), [true, 5000]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nKeep-Alive: max=10, Timeout = 30'), [true, 30000]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nKeep-Alive: max=10'), [true, undefined]);
  assert.deepEqual(ka('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=soon'), [true, undefined]);
});

test('parser: reset() makes one parser read the next response of a kept connection afresh', () => {
  const s = sink();
  const p = new ResponseParser(s, MAX_HEAD);
  p.reset(false);
  assert.equal(p.execute(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=9\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n')), undefined);
  assert.deepEqual([s.seen.body, s.seen.trailers, p.keepAliveHintMs, p.idle], ['a', { 'x-t': '1' }, 9000, true]);
  p.reset(true);
  assert.equal(p.idle, false);
  assert.equal(p.keepAliveHintMs, undefined, 'the hint was the last response\'s');
  assert.equal(p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n')), undefined, 'a HEAD: no body expected');
  assert.deepEqual([s.seen.body, s.seen.trailers, s.seen.ends, p.idle], ['a', {}, 2, true]);
});

test('parser: malformed or ambiguous framing is an error (TRL_UPSTREAM_MALFORMED_RESPONSE), and nothing follows it', () => {
  const bad: Record<string, string> = {
    'not HTTP': 'NOT HTTP AT ALL\r\n\r\n',
    'HTTP/2 status line': 'HTTP/2 200 OK\r\n\r\n',
    'HTTP/1.2': 'HTTP/1.2 200 OK\r\n\r\n',
    'status digits': 'HTTP/1.1 2x0 OK\r\n\r\n',
    'status 099': 'HTTP/1.1 099 Low\r\n\r\n',
    'status without its space': 'HTTP/1.1 200OK\r\n\r\n',
    'obs-fold': 'HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 0\r\n\r\n',
    'obs-fold with a tab': 'HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\nContent-Length: 0\r\n\r\n',
    'no colon': 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n',
    'empty name': 'HTTP/1.1 200 OK\r\n: v\r\n\r\n',
    'space before the colon': 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n',
    'Content-Length with Transfer-Encoding': 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'Transfer-Encoding with Content-Length': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
    'conflicting lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'a length list': 'HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc',
    'length not digits': 'HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n',
    'length of 16 digits': 'HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\n',
    'chunk size not hex': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'chunk size with junk after it': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n',
    'chunk size of 13 digits': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000000000001\r\nx\r\n0\r\n\r\n',
    'chunk without CRLF': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n',
    'trailer without colon': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbroken\r\n\r\n',
    'obs-fold in a trailer': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n',
    'trailers over maxHeaderSize': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(20)}\r\n`,
    'a chunk line over maxHeaderSize': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(2000)}`,
    'head over maxHeaderSize': `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(2000)}\r\nContent-Length: 0\r\n\r\n`,
    'head over maxHeaderSize, not ended yet': `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(2000)}`,
    '101 unasked': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n',
  };
  for (const [name, text] of Object.entries(bad)) {
    for (const [where, cuts] of [['whole', []], ['byte by byte', everyByte(text)]] as const) {
      const r = parse(text, cuts);
      assert.ok(r.error, `${name} (${where}): an error`);
      assert.equal(r.error.code, 'TRL_UPSTREAM_MALFORMED_RESPONSE', `${name} (${where}): ${r.error.message}`);
      assert.match(r.error.message, /^the upstream's response is malformed: /, name);
      assert.equal(r.seen.ends, 0, `${name} (${where}): no end after an error`);
    }
  }
  // Folding is refused as folding, even where the folded line would read as a field of its own.
  for (const text of ['HTTP/1.1 200 OK\r\nX: a\r\n b: c\r\nContent-Length: 0\r\n\r\n', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b: c\r\n\r\n']) {
    assert.match(parse(text).error?.message ?? '', /obsolete line folding/, text);
  }
  // After an error the parser says nothing more, whatever arrives.
  const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n');
  assert.ok(r.error);
  assert.equal(r.p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')), undefined);
  assert.deepEqual([r.seen.heads, r.seen.ends], [0, 0]);
});

test('parser: a head of up to maxHeaderSize bytes is read, one byte more is refused', () => {
  const head = (size: number) => {
    const start = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: ';
    return `${start}${'a'.repeat(size - start.length)}`;
  };
  assert.equal(head(MAX_HEAD).length, MAX_HEAD);
  const ok = parse(`${head(MAX_HEAD)}\r\n\r\n`);
  assert.equal(ok.error, undefined);
  assert.equal(ok.seen.ends, 1);
  assert.equal(parse(`${head(MAX_HEAD + 1)}\r\n\r\n`).error?.code, 'TRL_UPSTREAM_MALFORMED_RESPONSE');
});

test('parser: a head of exactly maxHeaderSize bytes is read however its bytes are split, the CRLF CRLF after it too; one byte more is refused however split', () => {
  // The limit counts the head up to its blank line: a piece may end inside the CRLF CRLF after a head of the
  // limit's size (up to 3 bytes of it) and still be the start of a good head.
  const head = (size: number, start = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: ') => `${start}${'a'.repeat(size - start.length)}`;
  // After an interim response, so that the head does not start at the buffer's first byte either.
  const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
  for (const before of ['', interim]) {
    const text = `${before}${head(MAX_HEAD)}\r\n\r\nhello`;
    const end = before.length + MAX_HEAD; // where the CRLF CRLF begins
    assert.equal(text.length, end + 4 + 5);
    // Every cut from 8 bytes before the head's end to the end of the body, one cut and two cuts; then byte by byte.
    const window = Array.from({ length: text.length - (end - 8) }, (_, i) => end - 8 + i);
    const runs: number[][] = window.map((c) => [c]);
    for (const a of window) for (const b of window) if (a < b) runs.push([a, b]);
    runs.push(everyByte(text));
    for (const cuts of runs) {
      for (const transient of [false, true]) {
        const where = `${before ? 'after an interim response, ' : ''}cut at ${cuts.length > 2 ? 'every byte' : cuts.join(', ')}${transient ? ', transient' : ''}`;
        const r = parse(text, cuts, false, transient);
        assert.equal(r.error, undefined, `${where}: ${r.error?.message}`);
        assert.deepEqual([r.seen.heads, r.seen.status, r.seen.body, r.seen.ends], [1, 200, 'hello', 1], where);
        assert.equal(r.seen.headers.find(([n]) => n === 'x')?.[1], 'a'.repeat(MAX_HEAD - 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: '.length), where);
      }
    }

    // One byte over: refused whole, at every cut around its end (the piece before the cut at most the limit and
    // the 3 bytes, or more), and byte by byte, with no head heard.
    const over = `${before}${head(MAX_HEAD + 1)}\r\n\r\nhello`;
    const overEnd = before.length + MAX_HEAD + 1;
    const overRuns: number[][] = [[], everyByte(over)];
    for (let c = overEnd - 8; c < over.length; c++) overRuns.push([c]);
    for (const cuts of overRuns) {
      for (const transient of [false, true]) {
        const where = `${before ? 'after an interim response, ' : ''}over by one, ${cuts.length === 0 ? 'whole' : cuts.length > 1 ? 'byte by byte' : `cut at ${cuts[0]}`}${transient ? ', transient' : ''}`;
        const r = parse(over, cuts, false, transient);
        assert.equal(r.error?.code, 'TRL_UPSTREAM_MALFORMED_RESPONSE', where);
        assert.match(r.error!.message, new RegExp(`its head is over ${MAX_HEAD} bytes`), where);
        assert.deepEqual([r.seen.heads, r.seen.ends], [0, 0], where);
      }
    }
  }

  // A head that has not ended and is past the limit and the 3 bytes of a CRLF CRLF is refused without waiting for more.
  const endless = head(MAX_HEAD + 4);
  for (const cuts of [[], everyByte(endless)]) assert.equal(parse(endless, cuts).error?.code, 'TRL_UPSTREAM_MALFORMED_RESPONSE', `cuts: ${cuts.length}`);
});

test('parser: hop-by-hop fields, and those the Connection header lists, are left out of the head', () => {
  const text = 'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop, x-other\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nTE: trailers\r\nUpgrade: h2c\r\n'
    + 'Proxy-Connection: keep-alive\r\nX-Other: 2\r\nX-Other: 3\r\nX-End: 2\r\nTrailer: x-t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
  const r = parse(text);
  assert.equal(r.error, undefined);
  assert.deepEqual(r.seen.headers, [['x-end', '2'], ['trailer', 'x-t']]);
  assert.equal(r.p.keepAlive, true, 'the keep-alive token was read for the connection');
  assert.equal(r.p.keepAliveHintMs, 5000, 'the Keep-Alive field was read for the hint');
});

test('parser: bytes after the response ended are marked (nothing was pipelined)', () => {
  const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n');
  assert.deepEqual([r.seen.body, r.seen.ends, r.p.garbage], ['ok', 1, true]);
  const later = parse('HTTP/1.1 204 No Content\r\n\r\n', []);
  assert.equal(later.p.execute(Buffer.from('x')), undefined);
  assert.equal(later.p.garbage, true, 'in a later read too');
  const chunked = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nextra');
  assert.equal(chunked.p.garbage, true);
});

test('parser: pause keeps the rest of a buffer, and what arrives meanwhile, until resume', () => {
  const seen: string[] = [];
  const s: ResponseSink = {
    onHead(status) { seen.push(`<${status}>`); },
    onBody(chunk) { seen.push(chunk.toString()); parser.pause(); },
    onEnd(trailers) { seen.push(`<end ${JSON.stringify({ ...trailers })}>`); },
  };
  const parser = new ResponseParser(s, MAX_HEAD);
  parser.reset(false);
  assert.equal(parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n')), undefined);
  assert.deepEqual(seen, ['<200>', 'a'], 'paused in the first chunk');
  assert.equal(parser.paused, true);
  assert.equal(parser.execute(Buffer.from('1\r\nc\r\n0\r\nX: 1\r\n\r\n')), undefined);
  assert.deepEqual(seen, ['<200>', 'a'], 'input while paused waits too');
  assert.equal(parser.resume(), undefined);
  assert.deepEqual(seen, ['<200>', 'a', 'b']);
  assert.equal(parser.resume(), undefined);
  assert.deepEqual(seen, ['<200>', 'a', 'b', 'c']);
  assert.equal(parser.resume(), undefined);
  assert.deepEqual(seen, ['<200>', 'a', 'b', 'c', '<end {"x":"1"}>']);
  assert.equal(parser.idle, true);
  assert.equal(parser.resume(), undefined, 'resume when not paused does nothing');
  assert.equal(seen.length, 5);
});

test('parser: with a transient buffer, what pause keeps is a copy: the rest of a read, and reads that arrive while paused', () => {
  for (const pauseIn of ['onHead', 'onBody'] as const) {
    const chunks: Buffer[] = [];
    let parser!: ResponseParser;
    parser = new ResponseParser({
      onHead() { if (pauseIn === 'onHead') parser.pause(); },
      onBody(chunk) { chunks.push(chunk); if (pauseIn === 'onBody' && chunks.length === 1) parser.pause(); },
      onEnd() { chunks.push(Buffer.from('<end>')); },
    }, MAX_HEAD);
    parser.reset(false);
    const scratch = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nhello', 'latin1');
    assert.equal(parser.execute(scratch, true), undefined);
    scratch.fill(0x23);
    for (const piece of ['world', '12345']) {
      const more = Buffer.from(piece, 'latin1');
      assert.equal(parser.execute(more, true), undefined, 'arrives while paused');
      more.fill(0x23);
    }
    assert.equal(parser.paused, true);
    assert.equal(parser.resume(), undefined);
    assert.equal(Buffer.concat(chunks).toString(), 'helloworld12345<end>', `paused in ${pauseIn}`);
  }
});

test('parser: pause in onHead holds the body; an error in the held bytes comes from resume', () => {
  let parser!: ResponseParser;
  const seen: string[] = [];
  parser = new ResponseParser({
    onHead() { seen.push('head'); parser.pause(); },
    onBody(chunk) { seen.push(chunk.toString()); },
    onEnd() { seen.push('end'); },
  }, MAX_HEAD);
  parser.reset(false);
  assert.equal(parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX')), undefined);
  assert.deepEqual(seen, ['head']);
  const err = parser.resume() as (Error & { code?: string }) | undefined;
  assert.equal(err?.code, 'TRL_UPSTREAM_MALFORMED_RESPONSE');
  assert.deepEqual(seen, ['head', 'ab'], 'the body up to the bad byte, and no end');
});

test('parser: halt() stops every callback, the end included', () => {
  const s = sink();
  const p = new ResponseParser(s, MAX_HEAD);
  p.reset(false);
  assert.equal(p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc')), undefined);
  p.halt();
  assert.equal(p.execute(Buffer.from('def')), undefined);
  assert.deepEqual([s.seen.body, s.seen.ends], ['abc', 0]);
});

test('upstreamError: an Error with the code', () => {
  const e = upstreamError('it broke', 'UND_ERR_SOCKET');
  assert.ok(e instanceof Error);
  assert.deepEqual([e.message, e.code], ['it broke', 'UND_ERR_SOCKET']);
});
