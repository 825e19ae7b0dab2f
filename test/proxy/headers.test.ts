/**
 * Headers across two real data planes: hop-by-hop fields removed both ways,
 * x-forwarded-for/-proto set, x-request-id kept or created (and the same in
 * both proxies' records), identity headers stripped on inbound, and the
 * route's and destination's header operations.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { TWO_SERVICES } from '../helpers/mesh.js';
import { echo, RunningMesh, type App, type Echo } from '../helpers/proxy.js';

const VS = `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - name: decorated
    match: [{ uri: { prefix: /decorated } }]
    headers:
      request: { set: { x-env: prod }, add: { x-tag: route }, remove: [x-drop-me] }
      response: { set: { x-resp: route }, remove: [x-served-by] }
    route:
    - destination: { host: api, subset: v1 }
      headers: { request: { set: { x-dest: v1 }, add: { x-tag: dest } }, response: { add: { x-resp-dest: v1 } } }
  - name: rest
    route: [{ destination: { host: api, subset: v1 } }]
`;

/** Echoes, and answers with hop-by-hop fields of its own. */
const hoppy = (req: IncomingMessage, res: ServerResponse, app: App) => {
  res.setHeader('connection', 'keep-alive, x-resp-hop');
  res.setHeader('x-resp-hop', 'must not pass');
  res.setHeader('proxy-connection', 'keep-alive');
  echo(req, res, app);
};

let mesh: RunningMesh;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await RunningMesh.start({ yaml: TWO_SERVICES + VS, caller: { workload: 'web-v1', namespace: 'shop' }, instances: ['api-v1.shop#0'], handlers: { 'api-v1.shop#0': hoppy } });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

/** A raw node:http request (undici refuses Connection headers that list fields). */
function raw(path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: Echo }> {
  const [host, port] = mesh.caller.addresses.outbound!.split(':');
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) as Echo }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('headers: hop-by-hop fields (and those Connection lists) do not pass, in either direction', async () => {
  const r = await raw('http://api/hop', {
    host: 'api', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=1', te: 'trailers',
    'proxy-authorization': 'Basic Zm9vOmJhcg==', 'proxy-connection': 'keep-alive', 'x-app': 'kept',
  });
  assert.equal(r.status, 200);
  const seen = r.body.headers;
  for (const h of ['x-hop', 'te', 'proxy-authorization', 'proxy-connection']) assert.equal(seen[h], undefined, `${h} reached the app`);
  assert.notEqual(seen['keep-alive'], 'timeout=1');
  assert.equal(seen['x-app'], 'kept');
  assert.equal(r.headers['x-resp-hop'], undefined, 'a response field the app listed in Connection');
  assert.equal(r.headers['proxy-connection'], undefined);
  assert.equal(r.headers['x-served-by'], 'api-v1.shop#0', 'end-to-end fields pass');
});

test('headers: x-forwarded-for/-proto are set; x-request-id is created once and carried through both proxies', async () => {
  const before = records.length;
  const r = await mesh.call('http://api/ids', { headers: { 'x-forwarded-for': '203.0.113.7' } });
  const e = r.json();
  assert.equal(e.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  assert.equal(e.headers['x-forwarded-proto'], 'http');
  const id = e.headers['x-request-id'] as string;
  assert.match(id, /^[0-9a-f-]{36}$/);
  const recs = records.slice(before);
  assert.deepEqual(recs.map((x) => [x.direction, x.requestId]).sort(), [['inbound', id], ['outbound', id]]);
  const kept = (await mesh.call('http://api/ids', { headers: { 'x-request-id': 'caller-chose-this' } })).json();
  assert.equal(kept.headers['x-request-id'], 'caller-chose-this');
});

test('headers: identity-carrying headers from a caller are stripped on inbound', async () => {
  const e = (await mesh.call('http://api/who', {
    headers: { 'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/shop/sa/admin;URI=spiffe://evil', 'x-trellis-peer-identity': 'spiffe://evil', 'x-envoy-peer-metadata': 'e30=' },
  })).json();
  assert.equal(e.headers['x-forwarded-client-cert'], undefined);
  assert.equal(e.headers['x-trellis-peer-identity'], undefined);
  assert.equal(e.headers['x-envoy-peer-metadata'], undefined);
});

test('headers: route and destination header operations, on the request and the response', async () => {
  const r = await mesh.call('http://api/decorated', { headers: { 'x-drop-me': 'please', 'x-tag': 'caller' } });
  const seen = r.json().headers;
  assert.equal(seen['x-env'], 'prod');
  assert.equal(seen['x-dest'], 'v1');
  assert.equal(seen['x-drop-me'], undefined);
  assert.equal(seen['x-tag'], 'caller, dest, route');
  assert.equal(r.headers['x-resp'], 'route');
  assert.equal(r.headers['x-resp-dest'], 'v1');
  assert.equal(r.headers['x-served-by'], undefined, 'removed from the response');
});
