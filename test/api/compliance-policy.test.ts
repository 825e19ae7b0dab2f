/**
 * CompliancePolicy: the schema (good and bad documents, each error at its
 * field with file:line), and that a check section states its defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml } from '../../src/api/load.js';
import { COMPLIANCE_DEFAULTS } from '../../src/api/kinds/compliance-policy.js';
import { runTable, type Row } from './kind-table.js';

const V = 'trellis.dev/v1alpha1';
const tenants = [{ name: 'retail', namespaces: ['retail', 'cards'] }, { name: 'markets', namespaces: ['markets'] }];

const rows: Row[] = [
  { name: 'a namespace-wide policy with every check', spec: {
    redundancy: { minInstances: 3 }, highAvailability: { minZones: 3, requireFailover: false }, disasterRecovery: { minRegions: 2 },
    security: { requireStrictMtls: true, requireAllowPolicy: true, requireTlsEgress: false, requireRegistryOnly: true },
    runtimeLimits: { maxTimeout: '5s', maxRetries: 2, requireTimeout: true }, partitioning: { tenants },
  } },
  { name: 'services by name', spec: { services: ['accounts', 'ledger'], redundancy: { minInstances: 4 } } },
  { name: 'services by label', spec: { selector: { matchLabels: { tier: 'critical' } }, highAvailability: {} } },
  { name: 'a check turned off', spec: { redundancy: { enabled: false } } },
  { name: 'no check at all', spec: {}, code: 'TRL0106', field: 'spec' },
  { name: 'one instance', spec: { redundancy: { minInstances: 1 } }, code: 'TRL0106', field: 'spec.redundancy.minInstances' },
  { name: 'a fractional zone count', spec: { highAvailability: { minZones: 2.5 } }, code: 'TRL0106', field: 'spec.highAvailability.minZones' },
  { name: 'one region', spec: { disasterRecovery: { minRegions: 1 } }, code: 'TRL0106', field: 'spec.disasterRecovery.minRegions' },
  { name: 'a malformed latency limit', spec: { runtimeLimits: { maxTimeout: 'soon' } }, code: 'TRL0106', field: 'spec.runtimeLimits.maxTimeout' },
  { name: 'negative retries', spec: { runtimeLimits: { maxRetries: -1 } }, code: 'TRL0106', field: 'spec.runtimeLimits.maxRetries' },
  { name: 'selector and services together', spec: { selector: { matchLabels: { a: 'b' } }, services: ['x'], redundancy: {} }, code: 'TRL0106', field: 'spec.services' },
  { name: 'an empty selector', spec: { selector: { matchLabels: {} }, redundancy: {} }, code: 'TRL0106', field: 'spec.selector.matchLabels' },
  { name: 'one tenant', spec: { partitioning: { tenants: [tenants[0]] } }, code: 'TRL0106', field: 'spec.partitioning.tenants' },
  { name: 'a namespace in two tenants', spec: { partitioning: { tenants: [tenants[0], { name: 'b', namespaces: ['cards'] }] } }, code: 'TRL0106', field: 'spec.partitioning.tenants[1].namespaces[0]' },
  { name: 'a tenant named twice', spec: { partitioning: { tenants: [tenants[0], { name: 'retail', namespaces: ['z'] }] } }, code: 'TRL0106', field: 'spec.partitioning.tenants[1].name' },
  { name: 'partitioning for some services only', spec: { services: ['x'], partitioning: { tenants } }, code: 'TRL0106', field: 'spec.partitioning' },
  { name: 'a misspelt field', spec: { redundancy: { minInstance: 2 } }, code: 'TRL1002', field: 'spec.redundancy.minInstance' },
  { name: 'an unknown check', spec: { availability: {} }, code: 'TRL1002', field: 'spec.availability' },
];
runTable(V, 'CompliancePolicy', rows);

test('a bad CompliancePolicy is rejected at the file, line and column of the field, with what to do', () => {
  const yaml = `apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: strict, namespace: bank }
spec:
  redundancy:
    minInstances: 1
  runtimeLimits:
    maxTimeout: 5 seconds
`;
  const r = parseYaml(yaml, 'compliance.yaml');
  assert.equal(r.resources.length, 0);
  const got = r.diagnostics.map((d) => [d.code, d.field, d.position?.file, d.position?.line, d.position?.col]);
  assert.deepEqual(got, [
    ['TRL0106', 'spec.redundancy.minInstances', 'compliance.yaml', 6, 19],
    ['TRL0106', 'spec.runtimeLimits.maxTimeout', 'compliance.yaml', 8, 17],
  ]);
  assert.match(r.diagnostics[0]!.message, /at least 2: one instance is no redundancy; to not check it, set enabled: false/);
  assert.match(r.diagnostics[1]!.message, /not a valid duration/);
});

test('the defaults: redundancy 2, two zones with failover, disaster recovery off, security on, a timeout on every route and at most 3 retries', () => {
  assert.deepEqual(COMPLIANCE_DEFAULTS.redundancy, { enabled: true, minInstances: 2 });
  assert.deepEqual(COMPLIANCE_DEFAULTS.highAvailability, { enabled: true, minZones: 2, requireFailover: true });
  assert.equal(COMPLIANCE_DEFAULTS.disasterRecovery.enabled, false);
  assert.deepEqual(COMPLIANCE_DEFAULTS.runtimeLimits, { enabled: true, requireTimeout: true, maxRetries: 3 });
});
