/**
 * `Expect: 100-continue` through the sidecars: the proxy answers 100 only
 * once routing (and on the inbound listener its chain) let the request
 * through; a refused request gets its final status without a 100, its body
 * never asked for, and the HTTP/1.1 connection closed. With curl (its
 * verbose output shows the interim response), a raw socket client that
 * checks the order of what arrives, and node:http2 for h2c.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from '../../src/compile/index.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { k8sDeployment, k8sService, meshFromYaml, shopVirtualService, TWO_SERVICES, WEB_ONLY_VS } from '../helpers/mesh.js';
import { RunningMesh, startProxy, withMesh, type Echo } from '../helpers/proxy.js';

const VS = `
${shopVirtualService('api', `
  - name: broken
    match: [{ uri: { prefix: /broken } }]
    fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: slow
    match: [{ uri: { prefix: /slow } }]
    fault: { delay: { fixedDelay: 300ms, percentage: { value: 100 } } }
    route: [{ destination: { host: api, subset: v1 } }]
  - name: rest
    route: [{ destination: { host: api, subset: v1 } }]
`)}${WEB_ONLY_VS}`;

/** A service with two ports on two app ports: its inbound listener serves exactly those two. */
const FILES = [k8sService('files', 'shop', { name: 'http', port: 80, targetPort: 18080 }).replace(
  'ports: [{ name: http, port: 80, targetPort: 18080 }]',
  'ports: [{ name: http, port: 80, targetPort: 18080 }, { name: http-admin, port: 81, targetPort: 18081 }]',
), k8sDeployment('files-v1', 'shop', 'files')].join('---\n');

let mesh: RunningMesh;
let strict: DataPlane;
let files: DataPlane;
let dir: string;
let upload: string;
const BODY = randomBytes(200 * 1024);

before(async () => {
  mesh = await RunningMesh.start({ yaml: `${TWO_SERVICES}${VS}---\n${FILES}`, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v1.shop#0'] });
  strict = await startProxy({ mode: 'sidecar' }, withMesh(mesh.snapshot, { outboundTrafficPolicy: 'REGISTRY_ONLY' }));
  const m = meshFromYaml(`${TWO_SERVICES}---\n${FILES}`);
  files = await startProxy({ mode: 'sidecar' }, compile(m.config, m.registry, { workload: 'files-v1', namespace: 'shop' }));
  dir = mkdtempSync(join(tmpdir(), 'trellis-expect-'));
  upload = join(dir, 'upload.bin');
  writeFileSync(upload, BODY);
});
after(async () => {
  await strict?.close(100);
  await files?.close(100);
  await mesh?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const portOf = (address: string) => Number(address.split(':').at(-1));
const outbound = () => mesh.caller.addresses.outbound!;
const api = () => mesh.callees.get('api-v1.shop#0')!;

function curl(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-v', '-m', '10', ...args], { timeout: 15_000, env: { PATH: process.env.PATH ?? '' } }, (err, stdout, stderr) => {
      if (err && (err as { code?: unknown }).code !== 22) reject(new Error(`curl failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Response lines curl printed (`< HTTP/1.1 100 Continue`, `< HTTP/1.1 200 OK`, `< HTTP/2 100`). */
const statusLines = (stderr: string) => stderr.split('\n').filter((l) => /^< HTTP\/\S+ \d{3}/.test(l)).map((l) => l.slice(2).trim());

/**
 * Sends a request head with `Expect: 100-continue` on a raw socket and reads
 * what comes back. `body`: sent once a 100 arrives. Resolves when the proxy
 * closes the connection, or with what has arrived after `ms`.
 */
function rawExpect(address: string, head: string, body?: Buffer, ms = 5_000): Promise<{ text: string; closed: boolean; continueAfterMs: number | undefined }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let text = '';
    let continueAfterMs: number | undefined;
    let done = false;
    const finish = (closed: boolean) => { if (!done) { done = true; clearTimeout(timer); s.destroy(); resolve({ text, closed, continueAfterMs }); } };
    const s = connect(portOf(address), '127.0.0.1', () => s.write(head));
    s.on('data', (c: Buffer) => {
      const before = text.length;
      text += c.toString('latin1');
      if (continueAfterMs === undefined && text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        continueAfterMs = Date.now() - started;
        if (body && before < 25) s.write(body);
      }
      if (body && finalBody(text) !== undefined) finish(false);
    });
    s.once('end', () => finish(true));
    s.once('error', reject);
    const timer = setTimeout(() => finish(false), ms);
  });
}

/** The body of the final response in `text` (after any 100), once it is complete (content-length or chunked). */
function finalBody(text: string): string | undefined {
  const start = text.startsWith('HTTP/1.1 100 ') ? text.indexOf('\r\n\r\n') + 4 : 0;
  const end = text.indexOf('\r\n\r\n', start);
  if (end < 0) return undefined;
  const headers = text.slice(start, end).toLowerCase();
  let rest = text.slice(end + 4);
  const cl = /\r\ncontent-length: (\d+)/.exec(headers);
  if (cl) return rest.length >= Number(cl[1]) ? rest.slice(0, Number(cl[1])) : undefined;
  if (!/\r\ntransfer-encoding: chunked/.test(headers)) return undefined;
  let out = '';
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) return undefined;
    const size = parseInt(rest.slice(0, eol), 16);
    if (size === 0) return out;
    if (rest.length < eol + 2 + size + 2) return undefined;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

const head = (path: string, host: string, length: number) =>
  `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\n\r\n`;

test('expect: curl gets 100 Continue from the outbound listener once the call is routed, then the body goes through', async () => {
  const hits = api().app.hits;
  const r = await curl(['-x', `http://${outbound()}`, '-H', 'Expect: 100-continue', '--data-binary', `@${upload}`, 'http://api/upload']);
  assert.deepEqual(statusLines(r.stderr), ['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK'], r.stderr);
  const e = JSON.parse(r.stdout) as Echo;
  assert.equal(e.bodyBytes, BODY.length);
  assert.equal(e.headers.expect, undefined, 'expect is answered hop by hop, not sent on');
  assert.equal(api().app.hits, hits + 1);
});

test('expect: curl gets a refusal without 100 Continue, and its body is not asked for', async () => {
  const hits = api().app.hits;
  for (const [url, status] of [['http://web/elsewhere', 404], ['http://api/broken', 418], ['http://web/only', 503]] as const) {
    const r = await curl(['-x', `http://${outbound()}`, '-H', 'Expect: 100-continue', '--expect100-timeout', '5', '--data-binary', `@${upload}`, url]);
    assert.deepEqual(statusLines(r.stderr), [`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 418 ? "I'm a Teapot" : 'Service Unavailable'}`], `${url}: ${r.stderr}`);
    assert.match(r.stderr, /< connection: close/i, url);
  }
  assert.equal(api().app.hits, hits, 'no refused request reached the app');
});

test('expect: on a raw socket nothing arrives before the refusal, and the proxy closes the connection', async () => {
  const cases: [string, string, RegExp][] = [
    [outbound(), head('/elsewhere', 'web', 10), /^HTTP\/1\.1 404 Not Found\r\n[^]*no route: /],
    [outbound(), head('/broken', 'api', 10), /^HTTP\/1\.1 418 /],
    [outbound(), head('/only', 'web', 10), /^HTTP\/1\.1 503 [^]*no healthy upstream/],
    [strict.addresses.outbound!, head('/out', '127.0.0.1:9', 10), /^HTTP\/1\.1 502 [^]*REGISTRY_ONLY/],
    [files.addresses.inbound!, head('/x', 'files.shop:82', 10), /^HTTP\/1\.1 404 [^]*no inbound listener: files-v1\.shop serves no port 82/],
  ];
  for (const [address, h, want] of cases) {
    const r = await rawExpect(address, h);
    assert.match(r.text, want, h);
    assert.doesNotMatch(r.text, /100 Continue/, h);
    assert.equal(r.closed, true, `the connection is closed after the refusal: ${h}`);
  }
});

test('expect: on a raw socket the 100 comes after the route\'s fault delay, then the request completes', async () => {
  const r = await rawExpect(outbound(), head('/slow', 'api', BODY.length), BODY);
  assert.ok(r.continueAfterMs !== undefined, `no 100 Continue: ${r.text.slice(0, 200)}`);
  assert.ok(r.continueAfterMs >= 250, `the 100 came ${r.continueAfterMs} ms after the head, before the 300 ms delay had passed`);
  assert.match(r.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.equal((JSON.parse(finalBody(r.text)!) as Echo).bodyBytes, BODY.length);
});

test('expect: the inbound listener answers 100 after its chain, to a caller that sends expect to it', async () => {
  const r = await rawExpect(api().inbound, head('/direct', 'api.shop', BODY.length), BODY);
  assert.match(r.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  const e = JSON.parse(finalBody(r.text)!) as Echo;
  assert.equal(e.bodyBytes, BODY.length);
  assert.equal(e.url, '/direct');
  const c = await curl(['-H', 'Host: api.shop', '-H', 'Expect: 100-continue', '--data-binary', `@${upload}`, `http://${api().inbound}/curl`]);
  assert.deepEqual(statusLines(c.stderr), ['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK'], c.stderr);
});

test('expect: h2c gets 100 only when the request is routed; a refusal comes without it', async () => {
  const session = h2connect(`http://${outbound()}`);
  try {
    const ask = (path: string, authority: string, body: Buffer | undefined) => new Promise<{ status: number; continued: boolean; text: string }>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': path, ':authority': authority, expect: '100-continue', 'content-length': String(body?.length ?? 10) }, { endStream: false });
      let continued = false;
      let status = 0;
      let text = '';
      req.once('continue', () => { continued = true; if (body) req.end(body); });
      req.once('response', (h) => { status = Number(h[':status']); });
      req.on('data', (c: Buffer) => { text += c.toString(); });
      req.once('end', () => resolve({ status, continued, text }));
      req.once('error', reject);
      req.setTimeout(5_000, () => { req.close(); reject(new Error(`no answer for ${path}`)); });
    });
    const refusedCall = await ask('/elsewhere', 'web', undefined);
    assert.deepEqual([refusedCall.status, refusedCall.continued], [404, false]);
    const ok = await ask('/h2', 'api', BODY);
    assert.deepEqual([ok.status, ok.continued], [200, true]);
    assert.equal((JSON.parse(ok.text) as Echo).bodyBytes, BODY.length);
  } finally {
    session.close();
  }
  const c = await curl(['--http2-prior-knowledge', '-H', 'Host: api', '-H', 'Expect: 100-continue', '--data-binary', `@${upload}`, `http://${outbound()}/curl-h2`]);
  assert.deepEqual(statusLines(c.stderr), ['HTTP/2 100', 'HTTP/2 200'], c.stderr);
});
