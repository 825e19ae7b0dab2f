/**
 * istioLabels on records as the proxy publishes them (no sockets): the
 * security labels per reporter and transport, and what the caller's SPIFFE
 * ID fills on the destination reporter (principal and namespace; the
 * workload names stay "unknown"). The same labels over real mTLS are in
 * mtls-labels.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import { istioLabels, peerOfIdentity, prepareLabelTables, spiffeParts } from '../../src/telemetry/istio-labels.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';

const mesh = meshFromYaml(TWO_SERVICES);
const tables = prepareLabelTables(compile(mesh.config, mesh.registry, { workload: 'api-v2', namespace: 'shop' }), 'Kubernetes');
const WEB = 'spiffe://cluster.local/ns/shop/sa/web';

const record = (r: Partial<RequestRecord>): RequestRecord => ({
  direction: 'inbound', proxy: 'api-v2.shop', requestId: 'r', method: 'GET', authority: 'api', path: '/', protocol: 'HTTP/1.1',
  status: 200, responseFlags: [], startTime: 0, durationMs: 1, bytesReceived: 0, bytesSent: 0, ...r,
});

const security = (r: Partial<RequestRecord>) => {
  const l = istioLabels(record(r), tables);
  return [l.reporter, l.connection_security_policy, l.source_principal, l.source_workload_namespace, l.source_workload];
};

test('destination reporter: mutual_tls over mTLS with the caller\'s principal and namespace, none over plaintext', () => {
  assert.deepEqual(security({ mtls: true, sourceIdentity: WEB, peerPrincipal: 'cluster.local/ns/shop/sa/web' }),
    ['destination', 'mutual_tls', WEB, 'shop', 'unknown']);
  assert.deepEqual(security({ mtls: false }), ['destination', 'none', 'unknown', 'unknown', 'unknown']);
});

test('source reporter: connection_security_policy is unknown whatever the transport; the gateway reports as a source', () => {
  assert.deepEqual(security({ direction: 'outbound', mtls: false, sourceIdentity: 'spiffe://cluster.local/ns/shop/sa/api' }).slice(0, 2), ['source', 'unknown']);
  assert.deepEqual(security({ direction: 'gateway', mtls: false }).slice(0, 2), ['source', 'unknown']);
});

test('an inbound record that does not say (a TCP tunnel) counts as mTLS when it has a caller identity', () => {
  assert.deepEqual(security({ protocol: 'TCP', sourceIdentity: WEB }), ['destination', 'mutual_tls', WEB, 'shop', 'unknown']);
  assert.deepEqual(security({ protocol: 'TCP' }), ['destination', 'none', 'unknown', 'unknown', 'unknown']);
  assert.deepEqual(security({ mtls: true, peerPrincipal: 'cluster.local/ns/shop/sa/web' }), ['destination', 'mutual_tls', WEB, 'shop', 'unknown'],
    'the principal alone gives the SPIFFE ID back');
});

test('the caller\'s app, version and canonical names stay unknown: a service account names no one workload', () => {
  const l = istioLabels(record({ mtls: true, sourceIdentity: 'spiffe://cluster.local/ns/shop/sa/api' }), tables);
  assert.deepEqual([l.source_app, l.source_version, l.source_canonical_service, l.source_canonical_revision, l.source_cluster],
    ['unknown', 'unknown', 'unknown', 'unknown', 'Kubernetes']);
  assert.deepEqual([l.destination_workload, l.destination_app, l.destination_version], ['api-v2', 'api', 'v2'], 'the destination is this proxy');
});

test('spiffeParts reads namespace and service account from workload SPIFFE IDs only', () => {
  assert.deepEqual(spiffeParts('spiffe://bank.example/ns/bank/sa/funds-transfer'), { namespace: 'bank', serviceAccount: 'funds-transfer' });
  assert.equal(spiffeParts('spiffe://cluster.local/ns/shop'), undefined);
  assert.equal(spiffeParts('spiffe://cluster.local/ns/shop/sa/web/extra'), undefined);
  assert.equal(spiffeParts('cluster.local/ns/shop/sa/web'), undefined);
  assert.deepEqual([peerOfIdentity('spiffe://td/other/thing', 'c').principal, peerOfIdentity('spiffe://td/other/thing', 'c').namespace],
    ['spiffe://td/other/thing', 'unknown'], 'an identity of another shape: the principal only');
});
