/**
 * Gateway mode: a listener per Gateway server port, routed with that port's
 * route table, forwarded to the sidecar of the service like outbound
 * traffic. Istio's bookinfo gateway sample, and a host-specific Gateway.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { REQUEST_CHANNEL, type RequestRecord } from '../../src/protocol/request-record.js';
import { BOOKINFO } from '../helpers/mesh.js';
import { Client, RunningMesh } from '../helpers/proxy.js';

const FILES = [join(BOOKINFO, 'platform/kube/bookinfo.yaml'), join(BOOKINFO, 'networking/bookinfo-gateway.yaml'), join(BOOKINFO, '..', '..', 'ingress-gateway.yaml')];
const SHOP = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: shop-gateway, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 9000, name: http-shop, protocol: HTTP }
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [shop-gateway]
  http:
  - name: shop-details
    route: [{ destination: { host: details, port: { number: 9080 } } }]
`;

let mesh: RunningMesh;
const records: RequestRecord[] = [];
const onRecord = (r: unknown) => records.push(r as RequestRecord);

before(async () => {
  subscribe(REQUEST_CHANNEL, onRecord);
  mesh = await RunningMesh.start({
    yaml: SHOP, files: FILES, caller: { workload: 'istio-ingressgateway', namespace: 'istio-system' },
    gatewayPorts: [8080, 9000], instances: ['productpage-v1.default', 'details-v1.default'],
  });
});
after(async () => {
  unsubscribe(REQUEST_CHANNEL, onRecord);
  await mesh?.close();
});

test('gateway: the snapshot is a gateway\'s, with a route table per server port', () => {
  assert.equal(mesh.snapshot.node.kind, 'gateway');
  assert.deepEqual(mesh.snapshot.outbound.http.map((t) => t.port), [8080, 9000]);
  assert.deepEqual(Object.keys(mesh.caller.addresses.gateway!), ['8080', '9000']);
  assert.equal(mesh.caller.addresses.outbound, undefined);
  assert.equal(mesh.caller.addresses.inbound, undefined);
});

test('gateway: the bookinfo routes reach productpage through its sidecar; outside identity headers are dropped', async () => {
  for (const path of ['/productpage', '/static/app.css', '/login', '/api/v1/products/1']) {
    const r = await mesh.client.call(path, { headers: { host: 'bookinfo.example.com', 'x-forwarded-client-cert': 'By=spiffe://evil' } });
    assert.equal(r.status, 200, path);
    const e = r.json();
    assert.equal(e.app, 'productpage-v1.default', path);
    assert.equal(e.url, path);
    assert.equal(e.headers.host, 'bookinfo.example.com');
    assert.equal(e.headers['x-forwarded-client-cert'], undefined);
    assert.equal(e.headers['x-forwarded-for'], '127.0.0.1, 127.0.0.1', 'the client, then the gateway');
  }
  const rec = records.filter((x) => x.direction === 'gateway').at(-1)!;
  assert.equal(rec.proxy, 'istio-ingressgateway.istio-system');
  assert.equal(rec.cluster, 'outbound|9080||productpage.default.svc.cluster.local');
  assert.equal(rec.upstream, mesh.callees.get('productpage-v1.default')!.inbound);
});

test('gateway: what no route of the port takes is 404 NR, never passed through', async () => {
  const r = await mesh.client.call('/admin', { headers: { host: 'bookinfo.example.com' } });
  assert.equal(r.status, 404);
  assert.match(r.text, /^no route: no route of \*:8080 matches GET \/admin/);
  assert.deepEqual(records.filter((x) => x.direction === 'gateway').at(-1)!.responseFlags, ['NR']);
});

test('gateway: a host-specific server port routes by Host', async () => {
  const shop = new Client(mesh.caller.addresses.gateway![9000]!);
  try {
    const r = await shop.call('/details/0', { headers: { host: 'shop.example.com' } });
    assert.equal(r.status, 200);
    assert.equal(r.json().app, 'details-v1.default');
    const other = await shop.call('/details/0', { headers: { host: 'bookinfo.example.com' } });
    assert.equal(other.status, 404);
    assert.match(other.text, /no service "bookinfo\.example\.com" on port 9000/);
  } finally {
    await shop.close();
  }
});
