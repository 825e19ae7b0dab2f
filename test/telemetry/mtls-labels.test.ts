/**
 * Istio's security labels through real data planes with real mTLS
 * (certificates from the project's CA): the callee (reporter "destination")
 * labels requests that came over mTLS `connection_security_policy="mutual_tls"`
 * and fills the caller's principal and namespace from its SPIFFE ID, while
 * plaintext requests to the same PERMISSIVE port are "none" with an unknown
 * caller; the caller (reporter "source") says "unknown". The records behind
 * the metrics carry `mtls` and the peer principal.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import { rawRequest } from '../helpers/mtls-apps.js';
import { MtlsMesh, MTLS_YAML, recordTap, type Tap } from '../helpers/mtls-mesh.js';
import { eventually } from '../helpers/proxy.js';
import { parsePrometheusText, select, type Family } from './prom-text.js';
import { scrape } from './two-proxies.js';

const API = 'api-v1.shop';
const MUTUAL = 3;
const PLAIN = 2;

let m: MtlsMesh;
let records: Tap<RequestRecord>;
let callee: Family | undefined;
let caller: Family | undefined;

before(async () => {
  records = recordTap();
  m = await MtlsMesh.start({ yaml: MTLS_YAML, caller: { workload: 'client', namespace: 'shop' }, calleeMode: 'PERMISSIVE' });
  for (let i = 0; i < MUTUAL; i++) {
    const r = await m.client.call('http://api/mutual');
    assert.equal(r.status, 200, r.text);
  }
  for (let i = 0; i < PLAIN; i++) assert.match((await rawRequest(m.callee(API).inbound, 'api.shop', undefined, '/plain')).text, /^HTTP\/1\.1 200 /);
  // Records (and the counts behind the metrics) are taken when a response closes: wait until all are in.
  await eventually(() => (records.items.filter((r) => r.direction === 'inbound').length >= MUTUAL + PLAIN ? true : undefined), 5_000,
    () => `inbound records: ${records.items.filter((r) => r.direction === 'inbound').length}`);
  callee = parsePrometheusText((await scrape(m.callee(API).proxy)).text).get('trellis_requests_total');
  caller = parsePrometheusText((await scrape(m.caller)).text).get('trellis_requests_total');
});

after(async () => {
  records.stop();
  await m?.close();
});

test('the destination reporter labels requests over mTLS mutual_tls, with the caller\'s principal and namespace from its SPIFFE ID', () => {
  const mutual = select(callee, { reporter: 'destination', connection_security_policy: 'mutual_tls' });
  assert.deepEqual(mutual.map((s) => s.value), [MUTUAL]);
  const l = mutual[0]!.labels;
  assert.equal(m.callerIdentity, 'spiffe://cluster.local/ns/shop/sa/client');
  assert.equal(l['source_principal'], m.callerIdentity);
  assert.equal(l['source_workload_namespace'], 'shop');
  assert.deepEqual(
    [l['source_workload'], l['source_app'], l['source_version'], l['source_canonical_service'], l['source_canonical_revision']],
    ['unknown', 'unknown', 'unknown', 'unknown', 'unknown'],
    'no peer metadata exchange: the workload behind a service account stays unknown',
  );
  assert.equal(l['destination_principal'], m.callee(API).identity);
  assert.equal(l['destination_workload'], 'api-v1');
});

test('plaintext requests to the same PERMISSIVE port are connection_security_policy none, from an unknown caller', () => {
  const plain = select(callee, { reporter: 'destination', connection_security_policy: 'none' });
  assert.deepEqual(plain.map((s) => s.value), [PLAIN]);
  const l = plain[0]!.labels;
  assert.deepEqual([l['source_principal'], l['source_workload_namespace'], l['source_workload']], ['unknown', 'unknown', 'unknown']);
  assert.equal(select(callee, { reporter: 'destination' }).length, 2, 'one series per security policy, nothing else differs');
});

test('the source reporter says connection_security_policy unknown, even over mTLS', () => {
  const out = select(caller, { reporter: 'source' });
  assert.deepEqual(out.map((s) => [s.value, s.labels['connection_security_policy']]), [[MUTUAL, 'unknown']]);
  assert.equal(out[0]!.labels['source_principal'], m.callerIdentity);
});

test('the records carry mtls and the peer principal: true on the callee\'s inbound over mTLS, false for plaintext, absent outbound', () => {
  const node = m.callee(API).snapshot.node.id;
  const inbound = records.items.filter((r) => r.direction === 'inbound' && r.proxy === node);
  const mutual = inbound.filter((r) => r.path === '/mutual');
  const plain = inbound.filter((r) => r.path === '/plain');
  assert.equal(mutual.length, MUTUAL);
  assert.equal(plain.length, PLAIN);
  for (const r of mutual) assert.deepEqual([r.mtls, r.peerPrincipal, r.sourceIdentity], [true, 'cluster.local/ns/shop/sa/client', m.callerIdentity]);
  for (const r of plain) assert.deepEqual([r.mtls, r.peerPrincipal, r.sourceIdentity], [false, undefined, undefined]);
  const outbound = records.items.filter((r) => r.direction === 'outbound' && r.path === '/mutual');
  assert.equal(outbound.length, MUTUAL);
  for (const r of outbound) assert.deepEqual([r.mtls, r.peerPrincipal], [undefined, undefined], 'mtls is a fact of inbound requests: the caller\'s downstream is its own app');
});
