/**
 * Istio's metric names when MeshConfig asks for them the way Istio's own
 * installations do (the first `defaultProviders.metrics` is a `prometheus`
 * extension provider): the compiler carries `metricsPrefix: 'istio_'` in the
 * snapshot's mesh settings, and a proxy's telemetry renames its service
 * metrics when such a snapshot is applied; an explicit prefix (flag or
 * `TRELLIS_METRICS_PREFIX`) wins over MeshConfig.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { ProxyTelemetry } from '../../src/telemetry/proxy-telemetry.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';

const meshConfig = (providers: string, defaults: string) => `${TWO_SERVICES}
---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  extensionProviders: ${providers}
  defaultProviders: ${defaults}
`;

function snapshotOf(yaml: string): Snapshot {
  const m = meshFromYaml(yaml);
  return compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' });
}

const PROMETHEUS = snapshotOf(meshConfig('[{ name: prometheus, prometheus: {} }]', '{ metrics: [prometheus] }'));

test('metric names: a prometheus provider first in defaultProviders.metrics asks for istio_ names', () => {
  assert.equal(PROMETHEUS.mesh.metricsPrefix, 'istio_');
});

test('metric names: without MeshConfig, with a provider defined but not the default, or another kind first, the names stay trellis_', () => {
  const m = meshFromYaml(TWO_SERVICES);
  assert.equal(compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' }).mesh.metricsPrefix, undefined);
  assert.equal(snapshotOf(meshConfig('[{ name: prometheus, prometheus: {} }]', '{ tracing: [] }')).mesh.metricsPrefix, undefined);
  const otel = '[{ name: otel, opentelemetry: { service: collector.example.com, port: 4318 } }, { name: prometheus, prometheus: {} }]';
  assert.equal(snapshotOf(meshConfig(otel, '{ metrics: [otel, prometheus] }')).mesh.metricsPrefix, undefined);
});

async function names(t: ProxyTelemetry): Promise<string[]> {
  const text = (await t.render(undefined)).body;
  return [...new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!))].filter((n) => /^(trellis|istio)_requests_total$/.test(n));
}

test('metric names: a proxy renames its service metrics when a snapshot asks for istio_, and back', async () => {
  const t = new ProxyTelemetry({});
  try {
    assert.deepEqual(await names(t), ['trellis_requests_total']);
    t.snapshotApplied(PROMETHEUS);
    assert.deepEqual(await names(t), ['istio_requests_total']);
    const m = meshFromYaml(TWO_SERVICES);
    t.snapshotApplied(compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' }));
    assert.deepEqual(await names(t), ['trellis_requests_total']);
  } finally {
    await t.close();
  }
});

test('metric names: an explicit prefix wins over MeshConfig', async () => {
  const t = new ProxyTelemetry({ metricsPrefix: 'trellis_' });
  try {
    t.snapshotApplied(PROMETHEUS);
    assert.deepEqual(await names(t), ['trellis_requests_total']);
  } finally {
    await t.close();
  }
});
