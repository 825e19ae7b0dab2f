/**
 * Bodies stream through both proxies chunk by chunk: each side waits for the
 * other to have received a chunk before it sends the next, so a proxy that
 * buffered a whole body would stall the test (and fail it with what arrived).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { eventually, RunningMesh } from '../helpers/proxy.js';

const MiB = 1024 * 1024;
const CHUNKS = 8;

let appReceived = 0;
let clientReceived = 0;

const streamer = (req: IncomingMessage, res: ServerResponse) => {
  if (req.url === '/upload') {
    req.on('data', (c: Buffer) => { appReceived += c.length; });
    req.on('end', () => { res.writeHead(200); res.end(String(appReceived)); });
    return;
  }
  // /download: one MiB at a time, each only once the client has the previous one.
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(CHUNKS * MiB) });
  void (async () => {
    for (let i = 0; i < CHUNKS; i++) {
      res.write(Buffer.alloc(MiB, i));
      await eventually(() => (clientReceived >= (i + 1) * MiB ? true : undefined), 5000, () => `the client has ${clientReceived} bytes after chunk ${i}`);
    }
    res.end();
  })().catch((err) => res.destroy(err as Error));
};

let mesh: RunningMesh;
before(async () => {
  mesh = await RunningMesh.start({ yaml: TWO_SERVICES, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v2.shop'], handlers: { 'api-v2.shop': streamer } });
});
after(async () => { await mesh?.close(); });

test('streaming: an 8 MiB upload reaches the app chunk by chunk while it is still being sent', async () => {
  const body = new PassThrough();
  const response = mesh.client.pool.request({ path: 'http://api/upload', method: 'POST', headers: { host: 'api' }, body });
  for (let i = 0; i < CHUNKS; i++) {
    body.write(Buffer.alloc(MiB, i));
    await eventually(() => (appReceived >= (i + 1) * MiB ? true : undefined), 5000, () => `the app has ${appReceived} bytes after chunk ${i}`);
  }
  body.end();
  const r = await response;
  assert.equal(r.statusCode, 200);
  assert.equal(await r.body.text(), String(CHUNKS * MiB));
});

test('streaming: an 8 MiB download reaches the client chunk by chunk while the app is still writing', async () => {
  const r = await mesh.client.pool.request({ path: 'http://api/download', method: 'GET', headers: { host: 'api' } });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['content-length'], String(CHUNKS * MiB));
  for await (const chunk of r.body) clientReceived += (chunk as Buffer).length;
  assert.equal(clientReceived, CHUNKS * MiB);
});
