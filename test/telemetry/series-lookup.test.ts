/**
 * ServiceMetrics finds a record's series through a short list of recent
 * combinations compared field by field, then a keyed map: records that
 * differ in anything the labels depend on land in series of their own, in
 * any order, however the recent list turns over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { RequestRecord, ResponseFlag } from '../../src/protocol/request-record.js';
import type { LabelTables, Peer } from '../../src/telemetry/istio-labels.js';
import { ServiceMetrics } from '../../src/telemetry/service-metrics.js';
import { parsePrometheusText, select } from './prom-text.js';

const peer = (workload: string): Peer => ({
  workload, namespace: 'shop', principal: `spiffe://cluster.local/ns/shop/sa/${workload}`, app: workload, version: 'v1',
  canonicalService: workload, canonicalRevision: 'v1', cluster: 'Kubernetes',
});

const tables: LabelTables = {
  self: peer('api'),
  services: new Map([['inbound|8080||', { service: 'api.shop.svc.cluster.local', name: 'api', namespace: 'shop' }]]),
  endpoints: new Map(),
  clusterName: 'Kubernetes',
};

const inbound = (over: Partial<RequestRecord>): RequestRecord => ({
  direction: 'inbound', proxy: 'api.shop', requestId: 'r', method: 'GET', authority: 'api', path: '/', protocol: 'HTTP/1.1',
  status: 200, responseFlags: [], startTime: 0, durationMs: 1, bytesReceived: 0, bytesSent: 0, cluster: 'inbound|8080||', ...over,
});

test('records that differ only in mTLS, the peer principal, flags or status are counted in series of their own, however they interleave and whenever the tables change', async () => {
  const registry = new Registry();
  const m = new ServiceMetrics(registry, { prefix: 'trellis_' });
  m.useTables(tables);
  // Twelve combinations: more than the recent list holds, so that it turns over while the same ones come back.
  const kinds: Partial<RequestRecord>[] = [];
  for (const mtls of [true, false]) {
    for (const flags of [[], ['UF'], ['UF', 'URX']] as ResponseFlag[][]) {
      for (const status of [200, 503]) kinds.push({ mtls, responseFlags: flags, status, ...(mtls ? { peerPrincipal: 'cluster.local/ns/shop/sa/web' } : {}) });
    }
  }
  const expected = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    // A new snapshot's tables now and then (the same here): the lookups start over and still find every series.
    if (i % 97 === 50) m.useTables({ ...tables });
    const k = kinds[(i * 7) % kinds.length]!;
    m.observe(inbound(k));
    const key = `${k.mtls ? 'mutual_tls' : 'none'}|${k.mtls ? 'spiffe://cluster.local/ns/shop/sa/web' : 'unknown'}|${k.responseFlags!.length ? k.responseFlags!.join(',') : '-'}|${k.status}`;
    expected.set(key, (expected.get(key) ?? 0) + 1);
  }
  const families = parsePrometheusText(await registry.metrics());
  const got = new Map<string, number>();
  for (const s of select(families.get('trellis_requests_total'), {})) {
    const key = `${s.labels['connection_security_policy']}|${s.labels['source_principal']}|${s.labels['response_flags']}|${s.labels['response_code']}`;
    got.set(key, (got.get(key) ?? 0) + s.value);
  }
  assert.equal(got.size, kinds.length);
  assert.deepEqual([...got].sort(), [...expected].sort());
});
