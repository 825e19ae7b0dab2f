/**
 * The compliance analyzers (src/analyze/compliance/) on small meshes written
 * in the test: one zone and two zones, two regions, a tenant leak, routes
 * without timeouts, mTLS, authorization and egress; each check positive and
 * negative, with the exact codes, resources, fields and lines, and messages
 * that say what to do. CompliancePolicy precedence is tested through them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import type { Diagnostic } from '../../src/api/diagnostic.js';
import { parseYaml } from '../../src/api/load.js';
import { complianceAnalyzers } from '../../src/analyze/compliance/index.js';
import { runAnalyzers } from '../../src/analyze/run.js';
import { registryFor } from '../helpers/mesh.js';

const FILE = 'mesh.yaml';

function run(name: string, yaml: string): Diagnostic[] {
  const a = complianceAnalyzers.find((x) => x.name === name);
  assert.ok(a, `compliance analyzer ${name} exists`);
  const r = parseYaml(yaml, FILE);
  assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error').map((e) => `${e.field}: ${e.message}`), [], 'the test YAML validates');
  const config = ConfigSet.of(r.resources);
  const { registry } = registryFor(config);
  const found = runAnalyzers(config, registry, { analyzers: [a] }).map((f) => f.diagnostic);
  assert.ok(!found.some((d) => d.code === 'TRL1401'), `the analyzer did not crash: ${found.map((d) => d.message).join('; ')}`);
  return found;
}

/** `code resource field @line` */
const brief = (d: Diagnostic) => `${d.code} ${d.resource ?? '-'} ${d.field ?? '-'} @${d.position?.line ?? '-'}`;
const lineOf = (yaml: string, needle: string) => yaml.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** An App in namespace shop: each service `name: [placements]` (one instance per placement). */
function app(services: Record<string, string[]>, extra = ''): string {
  const entries = Object.entries(services).map(([name, places]) => `  - name: ${name}
    ports: [{ name: http, port: 8080 }]
    command: [node, ${name}.js]
    replicas: ${places.length}
    placement: [${places.map((p) => { const [region, zone] = p.split('/'); return `{ region: ${region}${zone ? `, zone: ${zone}` : ''} }`; }).join(', ')}]
`).join('');
  return `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: shop }
spec:
  namespace: shop
  services:
${entries}${extra}`;
}

const STRICT = `---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec: { outboundTrafficPolicy: { mode: REGISTRY_ONLY } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
`;

const OUTLIER = (host: string, extra = '') => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${host}, namespace: shop }
spec:
  host: ${host}
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, maxEjectionPercent: 50 }
${extra}`;

// --- redundancy ---------------------------------------------------------------

test('redundancy: one instance is reported at the replicas that make it; two are not; a namespace policy can ask for more', () => {
  const yaml = app({ web: ['eu/a'], api: ['eu/a', 'eu/b'] });
  const got = run('compliance.redundancy', yaml);
  assert.deepEqual(got.map(brief), [`TRL1501 App shop spec.services[0].replicas @${lineOf(yaml, 'replicas: 1')}`]);
  assert.match(got[0]!.message, /^service web\.shop has 1 instance \(web\.shop: 1\); Trellis's default compliance policy asks for at least 2: .*run more replicas/);

  const policy = `---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: shop, namespace: shop }
spec: { redundancy: { minInstances: 3 } }
`;
  const more = run('compliance.redundancy', app({ api: ['eu/a', 'eu/b'] }) + policy);
  assert.deepEqual(more.map((d) => d.code), ['TRL1501']);
  assert.match(more[0]!.message, /has 2 instances .*CompliancePolicy shop\/shop asks for at least 3/);
  // A policy for one service by name beats the namespace's, section by section.
  const off = `---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: api-only, namespace: shop }
spec: { services: [api], redundancy: { enabled: false } }
`;
  assert.deepEqual(run('compliance.redundancy', app({ api: ['eu/a', 'eu/b'] }) + policy + off), []);
});

test('redundancy: a Service no workload runs has no instances, said at the Service', () => {
  const yaml = `apiVersion: v1
kind: Service
metadata: { name: ghost, namespace: shop }
spec: { selector: { app: ghost }, ports: [{ name: http, port: 80 }] }
`;
  const got = run('compliance.redundancy', yaml);
  assert.deepEqual(got.map(brief), ['TRL1501 Service shop/ghost - @1']);
  assert.match(got[0]!.message, /has 0 instances \(no workload carries its selector labels\)/);
});

// --- high availability ------------------------------------------------------------

test('high availability: one zone is reported; two zones with outlier detection are not', () => {
  const one = app({ web: ['eu/a', 'eu/a'] });
  const got = run('compliance.high-availability', one);
  assert.deepEqual(got.map(brief), [`TRL1502 App shop spec.services[0] @${lineOf(one, '- name: web')}`]);
  assert.match(got[0]!.message, /runs in 1 zone \(eu\/a: 2\); .*at least 2, so a zone outage takes it down; place instances in more zones/);
  assert.deepEqual(run('compliance.high-availability', app({ web: ['eu/a', 'eu/b'] }) + OUTLIER('web')), []);
  // Instances whose zone is unknown count in no zone.
  const unknown = run('compliance.high-availability', app({ web: ['eu', 'eu'] }));
  assert.match(unknown[0]!.message, /runs in 0 zones \(2 with no zone known\)/);
});

test('high availability: two zones but no outlier detection, or locality load balancing turned off, is no failover', () => {
  const two = app({ web: ['eu/a', 'eu/b'] });
  const none = run('compliance.high-availability', two);
  assert.deepEqual(none.map((d) => `${d.code} ${d.resource}`), ['TRL1503 App shop']);
  assert.match(none[0]!.message, /callers of service web\.shop in namespace shop use the default cluster \(no DestinationRule applies to them\), which has no outlier detection.*add a DestinationRule for web\.shop\.svc\.cluster\.local with trafficPolicy\.outlierDetection/);

  const off = two + OUTLIER('web', '    loadBalancer: { localityLbSetting: { enabled: false } }\n');
  const got = run('compliance.high-availability', off);
  assert.deepEqual(got.map(brief), [`TRL1503 DestinationRule shop/web spec.trafficPolicy.loadBalancer.localityLbSetting.enabled @${lineOf(off, 'enabled: false')}`]);
  assert.match(got[0]!.message, /turns locality load balancing off .* remove localityLbSetting\.enabled: false/);
});

test('high availability: maxEjectionPercent too low to eject a whole zone is a warning, at the field', () => {
  const yaml = app({ web: ['eu/a', 'eu/a', 'eu/b', 'eu/b'] }) + OUTLIER('web').replace('maxEjectionPercent: 50', 'maxEjectionPercent: 10');
  const got = run('compliance.high-availability', yaml);
  assert.deepEqual(got.map(brief), [`TRL1504 DestinationRule shop/web spec.trafficPolicy.outlierDetection.maxEjectionPercent @${lineOf(yaml, 'maxEjectionPercent')}`]);
  assert.match(got[0]!.message, /maxEjectionPercent 10 .* zone eu\/a holds \(2 of 4\).*set maxEjectionPercent to at least 26/);
  assert.deepEqual(run('compliance.high-availability', yaml.replace('maxEjectionPercent: 10', 'maxEjectionPercent: 26')), []);
});

test('high availability: requireFailover false keeps the zone count only', () => {
  const policy = `---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: mesh, namespace: istio-system }
spec: { highAvailability: { requireFailover: false } }
`;
  assert.deepEqual(run('compliance.high-availability', app({ web: ['eu/a', 'eu/b'] }) + policy), []);
  assert.deepEqual(run('compliance.high-availability', app({ web: ['eu/a'] }) + policy).map((d) => d.code), ['TRL1502']);
});

// --- disaster recovery ------------------------------------------------------------------

test('disaster recovery: off by default; when asked, one region is reported and two are not', () => {
  const oneRegion = app({ web: ['eu/a', 'eu/b'] });
  assert.deepEqual(run('compliance.disaster-recovery', oneRegion), [], 'off unless a policy states it');
  const policy = `---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: mesh, namespace: istio-system }
spec: { disasterRecovery: {} }
`;
  const got = run('compliance.disaster-recovery', oneRegion + policy);
  assert.deepEqual(got.map(brief), [`TRL1505 App shop spec.services[0] @${lineOf(oneRegion, '- name: web')}`]);
  assert.match(got[0]!.message, /runs in 1 region \(eu: 2\); CompliancePolicy istio-system\/mesh asks for at least 2, so losing a region takes it down/);
  assert.deepEqual(run('compliance.disaster-recovery', app({ web: ['eu/a', 'us/b'] }) + policy), []);
});

// --- partitioning --------------------------------------------------------------------------

const tenantMesh = (extra: string, exportTo = '') => `apiVersion: v1
kind: Service
metadata: { name: ledger, namespace: retail${exportTo} }
spec: { selector: { app: ledger }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: ledger, namespace: retail }
spec: { replicas: 2, selector: { matchLabels: { app: ledger } }, template: { metadata: { labels: { app: ledger } }, spec: { serviceAccountName: ledger, containers: [{ name: ledger, image: ledger }] } } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: trader, namespace: markets }
spec: { selector: { matchLabels: { app: trader } }, template: { metadata: { labels: { app: trader } }, spec: { serviceAccountName: trader, containers: [{ name: trader, image: trader }] } } }
---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: tenants, namespace: istio-system }
spec:
  partitioning:
    tenants:
    - { name: retail, namespaces: [retail] }
    - { name: markets, namespaces: [markets] }
${extra}`;

test('partitioning: a service of one tenant that any caller may call is a leak to the other tenant', () => {
  const yaml = tenantMesh('');
  const got = run('compliance.partitioning', yaml);
  assert.deepEqual(got.map(brief), ['TRL1506 Service retail/ledger - @1']);
  assert.match(got[0]!.message, /^service ledger\.retail of tenant retail can be called by trader\.markets of tenant markets \(it is exported to every namespace\), and it does not authorize them in particular: no ALLOW AuthorizationPolicy selects ledger, so every request is allowed .*give ledger an ALLOW AuthorizationPolicy that names the callers tenant retail admits/);
});

test('partitioning: an ALLOW rule that admits anyone is the leak, pointed at its rule; one that names the callers is a decision', () => {
  const open = `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ledger, namespace: retail }
spec:
  selector: { matchLabels: { app: ledger } }
  rules:
  - to: [{ operation: { methods: [GET] } }]
`;
  const yaml = tenantMesh(open);
  const got = run('compliance.partitioning', yaml);
  assert.deepEqual(got.map(brief), [`TRL1506 AuthorizationPolicy retail/ledger spec.rules[0] @${lineOf(yaml, '- to: [{ operation')}`]);
  assert.match(got[0]!.message, /AuthorizationPolicy retail\/ledger rule 0 admits GET \/ on port 8080 from any caller/);
  const named = open.replace('  - to: [{ operation: { methods: [GET] } }]', '  - from: [{ source: { namespaces: [markets] } }]\n    to: [{ operation: { methods: [GET] } }]');
  assert.deepEqual(run('compliance.partitioning', tenantMesh(named)), [], 'markets is authorized by name: the tenant decided');
  const retailOnly = open.replace('  - to: [{ operation: { methods: [GET] } }]', '  - from: [{ source: { namespaces: [retail] } }]');
  assert.deepEqual(run('compliance.partitioning', tenantMesh(retailOnly)), [], 'markets is refused');
});

test('partitioning: a service not exported to the other tenant is unreachable with REGISTRY_ONLY, and reachable in plaintext with ALLOW_ANY', () => {
  const hidden = ', annotations: { networking.istio.io/exportTo: "." }';
  const registryOnly = `---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec: { outboundTrafficPolicy: { mode: REGISTRY_ONLY } }
`;
  assert.deepEqual(run('compliance.partitioning', tenantMesh(registryOnly, hidden)), []);
  const got = run('compliance.partitioning', tenantMesh('', hidden));
  assert.deepEqual(got.map((d) => d.code), ['TRL1506']);
  assert.match(got[0]!.message, /it is not exported to namespace markets, but outboundTrafficPolicy ALLOW_ANY passes plaintext through and port 80 is PERMISSIVE/);
  assert.deepEqual(run('compliance.partitioning', tenantMesh(STRICT.replace(/---\napiVersion: trellis.dev\/v1alpha1\nkind: MeshConfig[\s\S]*?---\n/, '---\n'), hidden)), [], 'STRICT refuses the plaintext');
});

test('partitioning: no tenants, no check', () => {
  assert.deepEqual(run('compliance.partitioning', tenantMesh('').replace(/---\napiVersion: trellis.dev\/v1alpha1\nkind: CompliancePolicy[\s\S]*$/, '')), []);
});

// --- security ----------------------------------------------------------------------------------

test('security: PERMISSIVE by default is reported at the workload, PERMISSIVE by a policy at its field; STRICT is not', () => {
  const yaml = app({ web: ['eu/a', 'eu/b'] });
  const got = run('compliance.security.mtls', yaml);
  assert.deepEqual(got.map(brief), [`TRL1507 App shop spec.services[0] @${lineOf(yaml, '- name: web')}`]);
  assert.match(got[0]!.message, /workload web\.shop accepts plaintext on port 8080 \(mTLS mode PERMISSIVE: no PeerAuthentication applies, and the default is PERMISSIVE\).*add a PeerAuthentication in namespace istio-system \(mesh-wide\) or shop with mtls\.mode: STRICT/);
  const permissive = yaml + STRICT + `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: shop, namespace: shop }
spec: { mtls: { mode: PERMISSIVE } }
`;
  const atPolicy = run('compliance.security.mtls', permissive);
  assert.deepEqual(atPolicy.map(brief), [`TRL1507 PeerAuthentication shop/shop spec.mtls.mode @${lineOf(permissive, 'mode: PERMISSIVE')}`]);
  assert.match(atPolicy[0]!.message, /set spec\.mtls\.mode of PeerAuthentication shop\/shop to STRICT/);
  assert.deepEqual(run('compliance.security.mtls', yaml + STRICT), []);
});

test('security: a workload without an ALLOW policy, and an ALLOW rule that admits an outsider, are reported; named callers are not', () => {
  const yaml = app({ web: ['eu/a', 'eu/b'] });
  const got = run('compliance.security.authorization', yaml);
  assert.deepEqual(got.map(brief), [`TRL1508 App shop spec.services[0] @${lineOf(yaml, '- name: web')}`]);
  assert.match(got[0]!.message, /workload web\.shop serves web\.shop and no ALLOW AuthorizationPolicy selects it.*write one that names its callers/);
  const allowAll = yaml + `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  rules:
  - from: [{ source: { notNamespaces: [evil] } }]
`;
  const anyone = run('compliance.security.authorization', allowAll);
  assert.deepEqual(anyone.map(brief), [`TRL1509 AuthorizationPolicy shop/web spec.rules[0] @${lineOf(allowAll, '- from:')}`]);
  assert.match(anyone[0]!.message, /AuthorizationPolicy shop\/web rule 0 lets a caller from outside the mesh in \(GET \/ on port 8080\)/);
  assert.deepEqual(run('compliance.security.authorization', allowAll.replace('notNamespaces: [evil]', 'principals: [cluster.local/ns/shop/sa/api]')), []);
});

test('security: plaintext to an external HTTP port, and ALLOW_ANY, are reported; TLS origination and REGISTRY_ONLY are not', () => {
  const external = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments, namespace: shop }
spec:
  hosts: [api.payments.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 80, name: http, protocol: HTTP }, { number: 443, name: https, protocol: HTTPS }]
---
` + app({ web: ['eu/a', 'eu/b'] });
  const got = run('compliance.security.egress', external);
  assert.deepEqual(got.map(brief), ['TRL1511 - - @-', `TRL1510 ServiceEntry shop/payments spec.ports[0] @${lineOf(external, 'ports: [')}`]);
  assert.match(got[0]!.message, /outboundTrafficPolicy is ALLOW_ANY \(the default: no MeshConfig sets it\).*set MeshConfig spec\.outboundTrafficPolicy\.mode: REGISTRY_ONLY/);
  assert.match(got[1]!.message, /port 80 \(HTTP\) of external host api\.payments\.example is reached in plaintext by callers in namespace shop: no DestinationRule originates TLS for it.*add a DestinationRule for api\.payments\.example with trafficPolicy\.tls\.mode: SIMPLE/);
  const fixed = external + STRICT + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: payments, namespace: shop }
spec:
  host: api.payments.example
  trafficPolicy: { tls: { mode: SIMPLE } }
`;
  assert.deepEqual(run('compliance.security.egress', fixed), []);
  const anyMode = fixed.replace('mode: REGISTRY_ONLY', 'mode: ALLOW_ANY');
  assert.deepEqual(run('compliance.security.egress', anyMode).map(brief), [`TRL1511 MeshConfig mesh spec.outboundTrafficPolicy.mode @${lineOf(anyMode, 'mode: ALLOW_ANY')}`]);
});

// --- runtime limits -------------------------------------------------------------------------------

const vs = (http: string) => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web]
  http:
${http}`;

test('runtime limits: a route without timeout, and the default route of a service without a VirtualService, are reported; a timeout is not', () => {
  const yaml = app({ web: ['eu/a', 'eu/b'], api: ['eu/a', 'eu/b'] }) + vs('  - name: all\n    route: [{ destination: { host: web } }]\n');
  const got = run('compliance.runtime-limits', yaml);
  assert.deepEqual(got.map(brief), [
    `TRL1512 VirtualService shop/web spec.http[0] @${lineOf(yaml, '- name: all')}`,
    `TRL1512 App shop spec.services[1] @${lineOf(yaml, '- name: api')}`,
  ]);
  assert.match(got[0]!.message, /^route "all" \(http\[0\]\) has no timeout: .*set http\[0\]\.timeout$/);
  assert.match(got[1]!.message, /^the default route of service api\.shop \(no VirtualService applies to callers in namespace shop\) has no timeout.*add a VirtualService for api\.shop\.svc\.cluster\.local whose http routes set timeout$/);
  const fixed = app({ web: ['eu/a', 'eu/b'] }) + vs('  - route: [{ destination: { host: web } }]\n    timeout: 2s\n');
  assert.deepEqual(run('compliance.runtime-limits', fixed), []);
});

test('runtime limits: a timeout above the stated limit, too many retries, and tries that do not fit the timeout', () => {
  const policy = `---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: limits, namespace: shop }
spec: { runtimeLimits: { maxTimeout: 3s, maxRetries: 2 } }
`;
  const yaml = app({ web: ['eu/a', 'eu/b'] }) + policy + vs(`  - name: slow
    timeout: 10s
    route: [{ destination: { host: web } }]
  - name: eager
    timeout: 1s
    retries: { attempts: 5, perTryTimeout: 500ms }
    route: [{ destination: { host: web } }]
  - name: fine
    timeout: 3s
    retries: { attempts: 2, perTryTimeout: 1s }
    route: [{ destination: { host: web } }]
`);
  const got = run('compliance.runtime-limits', yaml);
  assert.deepEqual(got.map(brief), [
    `TRL1513 VirtualService shop/web spec.http[0].timeout @${lineOf(yaml, 'timeout: 10s')}`,
    `TRL1514 VirtualService shop/web spec.http[1].retries.attempts @${lineOf(yaml, 'attempts: 5')}`,
    `TRL1515 VirtualService shop/web spec.http[1].retries.perTryTimeout @${lineOf(yaml, 'attempts: 5')}`,
  ]);
  assert.match(got[0]!.message, /route "slow" \(http\[0\]\) times out after 10s, longer than the upper latency limit 3s of CompliancePolicy shop\/limits; lower the timeout to at most 3s/);
  assert.match(got[1]!.message, /route "eager" \(http\[1\]\) retries up to 5 times, more than the 2 CompliancePolicy shop\/limits allows.*set retries\.attempts to at most 2/);
  assert.match(got[2]!.message, /makes up to 6 tries of 500ms each \(3s\), more than its timeout 1s/);
});

// --- the policies themselves -----------------------------------------------------------------------

test('policies: names and selectors that match nothing, misplaced partitioning and shadowed policies are warnings at their fields', () => {
  const yaml = app({ web: ['eu/a', 'eu/b'] }) + `---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: a, namespace: shop }
spec:
  services: [web, wbe]
  redundancy: { minInstances: 3 }
---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: b, namespace: shop }
spec:
  selector: { matchLabels: { tier: gold } }
  redundancy: {}
---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: c, namespace: shop }
spec:
  partitioning: { tenants: [{ name: x, namespaces: [shop] }, { name: y, namespaces: [other] }] }
---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: d, namespace: shop }
spec:
  partitioning: { enabled: false, tenants: [{ name: x, namespaces: [shop] }, { name: y, namespaces: [other] }] }
`;
  const got = run('compliance.policies', yaml);
  assert.deepEqual(got.map(brief), [
    `TRL1516 CompliancePolicy shop/a spec.services[1] @${lineOf(yaml, 'services: [web, wbe]')}`,
    `TRL1516 CompliancePolicy shop/b spec.selector.matchLabels @${lineOf(yaml, 'tier: gold')}`,
    `TRL1518 CompliancePolicy shop/c spec.partitioning @${lineOf(yaml, 'partitioning: { tenants')}`,
    `TRL1518 CompliancePolicy shop/d spec.partitioning @${lineOf(yaml, 'partitioning: { enabled')}`,
    `TRL1517 CompliancePolicy shop/d spec.partitioning @${lineOf(yaml, 'partitioning: { enabled')}`,
  ]);
  assert.match(got[0]!.message, /service "wbe" \(in namespace shop\) matches no service of the registry/);
  assert.match(got[4]!.message, /covers the same services as CompliancePolicy shop\/c, which was loaded first and decides partitioning/);
  assert.deepEqual(run('compliance.policies', app({ web: ['eu/a', 'eu/b'] }) + `---
apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: a, namespace: shop }
spec: { services: [web], redundancy: { minInstances: 3 } }
`), []);
});
