/**
 * Certificates change under traffic, handshakes are not paid per request:
 * keep-alive connections carry many requests on one handshake; a pool's
 * later connections resume the TLS session; rotating both sides' certificates
 * every 500 ms during a bounded load (2 000 requests or more, 8 at a time) fails no
 * request, and new connections show the new serials; open tunnels and
 * WebSockets survive a rotation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import type { TlsHandshakeEvent } from '../../src/proxy/tls/tls-events.js';
import { k8sDeployment, k8sService } from '../helpers/mesh.js';
import { startTcpEchoApp, startWsEchoApp } from '../helpers/mtls-apps.js';
import { metricValue, MtlsMesh, MTLS_YAML, tlsTap, type Tap } from '../helpers/mtls-mesh.js';
import { eventually } from '../helpers/proxy.js';

const API = 'api-v1.shop';
const WEB = 'web-v1.shop';
const DB = 'db-v1.shop';

/** api's connections carry 50 requests each (so a load keeps opening new ones); web's are unlimited. */
const YAML = `${MTLS_YAML}---
${k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 })}---
${k8sDeployment('web-v1', 'shop', 'web')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 50 } } }
`;

let m: MtlsMesh;
let handshakes: Tap<TlsHandshakeEvent>;

before(async () => {
  handshakes = tlsTap();
  m = await MtlsMesh.start({
    yaml: YAML,
    caller: { workload: 'client', namespace: 'shop' },
    callerOptions: { upstreams: [{ host: 'db', port: 5432, localPort: 0 }] },
    apps: { [API]: startWsEchoApp, [DB]: startTcpEchoApp },
    calleeMode: 'STRICT',
  });
});

after(async () => {
  handshakes.stop();
  await m?.close();
});

const inboundHandshakes = (instance: string) => metricValue(m.callee(instance).proxy, 'trellis_proxy_tls_handshakes_total', { direction: 'inbound' });

test('rotation: 200 sequential requests over keep-alive take a handshake or two, not 200', async () => {
  const before = await inboundHandshakes(WEB);
  for (let i = 0; i < 200; i++) {
    const r = await m.client.call(`http://web/seq/${i}`);
    assert.equal(r.status, 200, r.text);
  }
  const n = (await inboundHandshakes(WEB)) - before;
  assert.ok(n >= 1 && n <= 2, `${n} handshakes for 200 requests`);
});

test('rotation: a pool\'s later connections resume the TLS session', async () => {
  const web = m.callee(API);
  const full = await metricValue(web.proxy, 'trellis_proxy_tls_handshakes_total', { direction: 'inbound', resumed: 'false' });
  const resumed = await metricValue(web.proxy, 'trellis_proxy_tls_handshakes_total', { direction: 'inbound', resumed: 'true' });
  for (let i = 0; i < 200; i++) {
    const r = await m.client.call(`http://api/resume/${i}`);
    assert.equal(r.status, 200, r.text);
  }
  const fullN = (await metricValue(web.proxy, 'trellis_proxy_tls_handshakes_total', { direction: 'inbound', resumed: 'false' })) - full;
  const resumedN = (await metricValue(web.proxy, 'trellis_proxy_tls_handshakes_total', { direction: 'inbound', resumed: 'true' })) - resumed;
  // 50 requests per connection: 4 connections, the first with a full handshake, the next ones resumed.
  assert.ok(fullN + resumedN >= 4, `${fullN} full + ${resumedN} resumed handshakes`);
  assert.ok(fullN <= 1, `${fullN} full handshakes`);
  assert.ok(resumedN >= 3, `${resumedN} resumed handshakes`);
});

test('rotation: certificates rotated every 500 ms under load: no request fails, new connections show the new serials', async () => {
  const api = m.callee(API);
  const callerSerials = [m.callerLeaf!.serial];
  const apiSerials = [api.leaf!.serial];
  let rotating = true;
  const rotatedAt: number[] = [];
  const rotate = async () => {
    callerSerials.push((m.callerLeaf = await m.certify(m.caller, m.callerIdentity)).serial);
    apiSerials.push((api.leaf = await m.certify(api.proxy, api.identity)).serial);
    rotatedAt.push(Date.now());
  };
  const rotator = (async () => {
    while (rotating) {
      await new Promise((r) => setTimeout(r, 500));
      if (rotating) await rotate();
    }
  })();
  handshakes.clear();
  // 2 000 requests, and on a fast machine more, until two rotations have happened during the load (bounded: 20 000).
  const TOTAL = 2_000;
  const MAX = 20_000;
  let sent = 0;
  const failures: string[] = [];
  const worker = async () => {
    while (sent < TOTAL || (rotatedAt.length < 3 && sent < MAX)) {
      const i = sent++;
      try {
        const r = await m.client.call(`http://api/load/${i}`);
        if (r.status !== 200) failures.push(`${i}: ${r.status} ${r.text}`);
      } catch (err) {
        failures.push(`${i}: ${(err as Error).message}`);
      }
    }
  };
  // At least two rotations happen during the load: it starts when the first has been made.
  await rotate();
  await Promise.all(Array.from({ length: 8 }, worker));
  const loadEnd = Date.now();
  rotating = false;
  await rotator;
  assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
  const inbound = handshakes.items.filter((e) => e.ok && e.direction === 'inbound' && e.local === api.identity);
  const outbound = handshakes.items.filter((e) => e.ok && e.direction === 'outbound' && e.local === m.callerIdentity && e.peerSerial);
  assert.ok(inbound.length >= 30, `${inbound.length} new connections during the load (50 requests each)`);
  for (const e of inbound) assert.ok(callerSerials.includes(e.peerSerial!), `the callee saw serial ${e.peerSerial}, not one issued`);
  for (const e of outbound) assert.ok(apiSerials.includes(e.peerSerial!), `the caller saw serial ${e.peerSerial}, not one issued`);
  // Each certificate that was in use for a while (200 ms: several new connections) was presented on new connections.
  const settled = rotatedAt.filter((t) => t <= loadEnd - 200).length;
  const seenByCallee = new Set(inbound.map((e) => e.peerSerial));
  assert.ok(settled >= 2, `${settled} rotations well within the load`);
  assert.ok(seenByCallee.size >= settled, `the callee saw ${seenByCallee.size} caller serials over ${settled} rotations`);

  // Quiet now: one more rotation, then new pools (another connection limit): every new connection has the newest certificates.
  await rotate();
  m.applyCaller((s) => ({ ...s, clusters: s.clusters.map((c) => (c.service.startsWith('api.') ? { ...c, connectionPool: { ...c.connectionPool, maxRequestsPerConnection: 10 } } : c)) }));
  handshakes.clear();
  for (let i = 0; i < 60; i++) assert.equal((await m.client.call(`http://api/after/${i}`)).status, 200);
  const fresh = handshakes.items.filter((x) => x.ok && x.direction === 'inbound' && x.local === api.identity);
  assert.ok(fresh.length >= 6, `${fresh.length} new connections for 60 requests, 10 each`);
  for (const e of fresh) assert.equal(e.peerSerial, m.callerLeaf!.serial, 'the caller presents its newest certificate');
  const full = handshakes.items.filter((x) => x.ok && x.direction === 'outbound' && x.local === m.callerIdentity && x.peer === api.identity && !x.resumed);
  assert.ok(full.length >= 1);
  for (const e of full) assert.equal(e.peerSerial, api.leaf!.serial, 'the callee presents its newest certificate');
});

test('rotation: open WebSockets and TCP tunnels survive a rotation of both sides', async () => {
  const api = m.callee(API);
  const ws = new WebSocket(`ws://${m.caller.addresses.outbound}/chat`, { headers: { host: 'api' }, handshakeTimeout: 5_000 });
  const got: string[] = [];
  ws.on('message', (d: Buffer) => got.push(d.toString()));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const port = Number(m.caller.addresses.upstreams!['db:5432']!.split(':')[1]);
  const tcp = connect({ host: '127.0.0.1', port });
  let echoed = '';
  tcp.on('data', (c: Buffer) => { echoed += c.toString(); });
  tcp.write('before\n');
  await eventually(() => (echoed === 'before\n' && got.length >= 1 ? true : undefined), 5_000, () => `tcp ${JSON.stringify(echoed)}, ws ${JSON.stringify(got)}`);
  m.callerLeaf = await m.certify(m.caller, m.callerIdentity);
  api.leaf = await m.certify(api.proxy, api.identity);
  await m.certify(m.callee(DB).proxy, m.callee(DB).identity);
  ws.send('after rotation');
  tcp.write('after\n');
  await eventually(() => (echoed === 'before\nafter\n' && got.includes('after rotation') ? true : undefined), 5_000, () => `tcp ${JSON.stringify(echoed)}, ws ${JSON.stringify(got)}`);
  ws.close();
  tcp.end();
});
