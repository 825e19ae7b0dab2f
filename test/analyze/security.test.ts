/** The security analyzers (src/analyze/analyzers/security.ts and sec-*.ts): positive and negative cases each, YAML inline. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSet } from '../../src/api/config-set.js';
import type { Diagnostic } from '../../src/api/diagnostic.js';
import { parseYaml } from '../../src/api/load.js';
import type { Analyzer } from '../../src/analyze/analyzer.js';
import { analyzerNamed } from '../../src/analyze/registry.js';
import { runAnalyzers } from '../../src/analyze/run.js';
import { securityAnalyzers } from '../../src/analyze/analyzers/security.js';
import { compileAuthz } from '../../src/compile/authorization.js';
import { meshSettings } from '../../src/compile/mesh.js';
import { createRegistry } from '../../src/registry/registry.js';
import { configSource } from '../../src/registry/sources/config-source.js';

const FILE = 'security.yaml';

function load(yaml: string): { config: ConfigSet; registry: ReturnType<typeof createRegistry>['registry'] } {
  const r = parseYaml(yaml, FILE);
  const errors = r.diagnostics.filter((d) => d.level === 'error');
  assert.deepEqual(errors.map((e) => `${e.field}: ${e.message}`), [], 'the test YAML validates');
  const config = ConfigSet.of(r.resources);
  const mesh = meshSettings(config);
  const { registry } = createRegistry([configSource(config, { trustDomain: mesh.trustDomain })], { trustDomain: mesh.trustDomain, domainSuffix: mesh.domainSuffix });
  return { config, registry };
}

/** What one analyzer reports over the YAML. */
function run(name: string, yaml: string): Diagnostic[] {
  const a = analyzerNamed(name);
  assert.ok(a, `analyzer ${name} is registered`);
  const { config, registry } = load(yaml);
  return runAnalyzers(config, registry, { analyzers: [a as Analyzer] }).map((f) => f.diagnostic);
}

/** `code resource field @line`, for exact comparisons. */
const brief = (d: Diagnostic) => `${d.code} ${d.resource} ${d.field} @${d.position?.line}`;

/** The 1-based line of the first line of `yaml` that contains `needle` (after `from`, when given). */
function lineOf(yaml: string, needle: string, from?: string): number {
  const lines = yaml.split('\n');
  const start = from ? lines.findIndex((l) => l.includes(from)) : 0;
  const i = lines.findIndex((l, k) => k >= start && l.includes(needle));
  assert.ok(i >= 0, `"${needle}" is in the YAML`);
  return i + 1;
}

const pod = (name: string, ns: string, labels: string, sa = 'default', port = 8080) => `---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {${labels}}}
spec: {serviceAccountName: ${sa}, containers: [{name: c, ports: [{name: http, containerPort: ${port}}]}]}
`;
const namespace = (name: string) => `---
apiVersion: v1
kind: Namespace
metadata: {name: ${name}}
`;

test('every security analyzer has a unique name, a description, the kinds it reads and its messages', () => {
  const names = securityAnalyzers.map((a) => a.name);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(names, ['authorizationpolicy.references', 'security.policy-workloads', 'security.mtls-contradictions', 'authorizationpolicy.allow-all', 'authorizationpolicy.caller-groups']);
  for (const a of securityAnalyzers) {
    assert.ok(a.description.length > 20 && a.reads.length > 0 && a.messages.length > 0, a.name);
  }
  assert.deepEqual(analyzerNamed('authorizationpolicy.references')?.istio, ['auth.AuthorizationPoliciesAnalyzer']);
});

// --- authorizationpolicy.references (Istio's AuthorizationPoliciesAnalyzer) ---

const REFS = `${namespace('prod')}${namespace('web-test')}${pod('api', 'shop', 'app: api')}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: callers, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  rules:
  - from:
    - source:
        namespaces: ["prod", "Prod", "*-test", "pr*", "*", "*-bogus"]
    - source:
        notNamespaces: ["nowhere", "web-test"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: own-namespace, namespace: orders}
spec:
  rules:
  - from: [{source: {namespaces: ["orders"]}}]
`;

test('references: one TRL0101 per source namespace entry that names no namespace, letter case included; a namespace holding configuration exists', () => {
  const ds = run('authorizationpolicy.references', REFS).filter((d) => d.code === 'TRL0101'); // orders/own-namespace also gets TRL0127: no workload
  assert.deepEqual(ds.map(brief), [
    `TRL0101 AuthorizationPolicy shop/callers spec.rules[0].from[0].source.namespaces[1] @${lineOf(REFS, 'namespaces: [')}`,
    `TRL0101 AuthorizationPolicy shop/callers spec.rules[0].from[0].source.namespaces[5] @${lineOf(REFS, 'namespaces: [')}`,
    `TRL0101 AuthorizationPolicy shop/callers spec.rules[0].from[1].source.notNamespaces[0] @${lineOf(REFS, 'notNamespaces:')}`,
  ]);
  assert.match(ds[0]!.message, /namespace Prod does not exist; namespace names are matched with case: write "prod"/);
  assert.match(ds[1]!.message, /\*-bogus does not exist: this source never matches .*fix the name/);
  assert.match(ds[2]!.message, /nowhere does not exist: excluding it excludes no caller; fix the name/);
  assert.equal(ds[0]!.level, 'error');
});

const NO_WORKLOAD = `${pod('api', 'shop', 'app: api, version: v1')}${pod('gw', 'istio-system', 'istio: ingressgateway')}${namespace('empty')}
---
apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: shop}
spec: {selector: {app: nobody}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: typo, namespace: shop}
spec:
  selector:
    matchLabels: {app: apy}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-typo, namespace: istio-system}
spec:
  selector:
    matchLabels: {version: v1x}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: whole-empty
  namespace: empty
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: by-service, namespace: shop}
spec:
  targetRefs:
  - {kind: Service, group: "", name: lonely}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: good, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-selector, namespace: istio-system}
spec:
  selector: {matchLabels: {version: v1}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-all, namespace: istio-system}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: shop-all, namespace: shop}
spec: {}
`;

test('references: TRL0127 for a policy that applies to no workload (selector, namespace, targetRefs); mesh-wide and matching ones are quiet', () => {
  const ds = run('authorizationpolicy.references', NO_WORKLOAD);
  assert.deepEqual(ds.map(brief), [
    `TRL0127 AuthorizationPolicy shop/typo spec.selector.matchLabels @${lineOf(NO_WORKLOAD, 'matchLabels: {app: apy}')}`,
    `TRL0127 AuthorizationPolicy istio-system/mesh-typo spec.selector.matchLabels @${lineOf(NO_WORKLOAD, 'matchLabels: {version: v1x}')}`,
    `TRL0127 AuthorizationPolicy empty/whole-empty metadata.namespace @${lineOf(NO_WORKLOAD, 'namespace: empty', 'whole-empty')}`,
    `TRL0127 AuthorizationPolicy shop/by-service spec.targetRefs @${lineOf(NO_WORKLOAD, '- {kind: Service')}`,
  ]);
  assert.match(ds[0]!.message, /no workload in namespace shop carries the labels app=apy: the policy applies to nothing/);
  assert.match(ds[1]!.message, /no workload in the mesh carries the labels version=v1x/);
  assert.match(ds[3]!.message, /Service lonely/);
});

test('references: without any workload in the registry nothing is said about selection', () => {
  const yaml = NO_WORKLOAD.split('---').filter((d) => !d.includes('kind: Pod')).join('---');
  assert.deepEqual(run('authorizationpolicy.references', yaml), []);
});

// --- security.policy-workloads ---

const POLICY_WORKLOADS = `${pod('api', 'shop', 'app: api')}${namespace('empty')}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: ghost, namespace: shop}
spec: {selector: {app: ghost}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa-typo, namespace: shop}
spec:
  selector:
    matchLabels: {app: apii}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: pa-empty-ns
  namespace: empty
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa-good, namespace: shop}
spec: {selector: {matchLabels: {app: api}}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa-mesh, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra-typo, namespace: shop}
spec:
  selector:
    matchLabels: {app: web}
  jwtRules: [{issuer: "https://issuer.example", jwksUri: "https://issuer.example/keys"}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ra-good, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  jwtRules: [{issuer: "https://issuer.example", jwksUri: "https://issuer.example/keys"}]
---
apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: rl-ghost, namespace: shop}
spec:
  targetRef:
    kind: Service
    name: ghost
  limits: [{name: all, rate: {requests: 10}}]
---
apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: rl-good, namespace: shop}
spec:
  targetRef: {kind: Service, name: api}
  limits: [{name: all, rate: {requests: 10}}]
---
apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: rl-unknown, namespace: shop}
spec:
  targetRef: {kind: Service, name: nosuch}
  limits: [{name: all, rate: {requests: 10}}]
`;

test('policy-workloads: PeerAuthentication, RequestAuthentication and RateLimitPolicy applying to no workload', () => {
  const ds = run('security.policy-workloads', POLICY_WORKLOADS);
  assert.deepEqual(ds.map(brief), [
    `TRL0127 PeerAuthentication shop/pa-typo spec.selector.matchLabels @${lineOf(POLICY_WORKLOADS, 'matchLabels: {app: apii}')}`,
    `TRL0127 PeerAuthentication empty/pa-empty-ns metadata.namespace @${lineOf(POLICY_WORKLOADS, 'namespace: empty', 'pa-empty-ns')}`,
    `TRL0127 RequestAuthentication shop/ra-typo spec.selector.matchLabels @${lineOf(POLICY_WORKLOADS, 'matchLabels: {app: web}')}`,
    `TRL0127 RateLimitPolicy shop/rl-ghost spec.targetRef.name @${lineOf(POLICY_WORKLOADS, 'name: ghost', 'rl-ghost')}`,
  ]);
  assert.match(ds[0]!.message, /labels app=apii: the policy applies to nothing/);
  assert.match(ds[3]!.message, /behind Service ghost\.shop carries the labels app=ghost \(the Service's selector\)/);
});

// --- security.mtls-contradictions ---

const SERVICE = (name: string, ns: string, port = 80, target = 8080) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec: {selector: {app: ${name}}, ports: [{name: http, port: ${port}, targetPort: ${target}}]}
`;

const MTLS = `${SERVICE('ledger', 'bank')}${pod('ledger-1', 'bank', 'app: ledger, version: v1')}${pod('ledger-2', 'bank', 'app: ledger, version: v2')}
${SERVICE('audit', 'bank')}${pod('audit-1', 'bank', 'app: audit')}
${SERVICE('legacy', 'old')}${pod('legacy-1', 'old', 'app: legacy')}${pod('legacy-2', 'old', 'app: legacy, tier: new')}
${SERVICE('web', 'shop')}${pod('web-1', 'shop', 'app: web')}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy-new, namespace: old}
spec:
  selector: {matchLabels: {tier: new}}
  mtls: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ledger-strict, namespace: bank}
spec:
  selector: {matchLabels: {app: ledger}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: audit-port, namespace: bank}
spec:
  selector: {matchLabels: {app: audit}}
  portLevelMtls:
    "8080": {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: old-off, namespace: old}
spec:
  mtls:
    mode: DISABLE
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ledger, namespace: bank}
spec:
  host: ledger.bank.svc.cluster.local
  trafficPolicy:
    tls:
      mode: DISABLE
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 80}
        tls:
          mode: ISTIO_MUTUAL
  - name: everyone
    labels: {app: ledger}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: audit, namespace: bank}
spec:
  host: audit
  trafficPolicy:
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web
  trafficPolicy: {tls: {mode: DISABLE}}
`;

test('mtls: DISABLE to STRICT workloads, ISTIO_MUTUAL (explicit or auto) to DISABLE ones, port and subset levels', () => {
  const ds = run('security.mtls-contradictions', MTLS);
  assert.deepEqual(ds.map(brief), [
    `TRL1441 DestinationRule bank/audit spec.trafficPolicy.tls.mode @${lineOf(MTLS, 'mode: ISTIO_MUTUAL', 'host: audit')}`,
    `TRL1440 DestinationRule bank/ledger spec.trafficPolicy.tls.mode @${lineOf(MTLS, 'mode: DISABLE', 'kind: DestinationRule')}`,
    `TRL1441 PeerAuthentication old/old-off spec.mtls.mode @${lineOf(MTLS, 'mode: DISABLE', 'old-off')}`,
  ]);
  // legacy mixes a DISABLE pod with a PERMISSIVE one: auto mTLS keeps mTLS for the service (only an all-DISABLE cluster goes plaintext), which legacy-1 refuses.
  // Without a subset both pods get plaintext; subset v2 sets ISTIO_MUTUAL for port 80 and is not reported, nor is subset everyone, which inherits the rule's DISABLE (no finding of its own above).
  assert.match(ds[1]!.message, /^this rule uses tls mode DISABLE for ledger\.bank\.svc\.cluster\.local port 80, but PeerAuthentication bank\/ledger-strict makes ledger-1\.bank and ledger-2\.bank accept mesh mTLS only \(STRICT\): every such call is refused; set the mode to ISTIO_MUTUAL/);
  assert.match(ds[0]!.message, /PeerAuthentication bank\/audit-port for port 8080 sets DISABLE on audit-1\.bank.*set the mode to DISABLE for this port/);
  assert.match(ds[2]!.message, /^a caller without a DestinationRule tls mode for the host \(auto mTLS\) sends mesh mTLS \(ISTIO_MUTUAL\) to legacy\.old\.svc\.cluster\.local port 80/);
  assert.match(ds[2]!.message, /this policy sets DISABLE on legacy-1\.old.*give the host a DestinationRule with tls mode DISABLE/);
  assert.ok(ds.every((d) => d.level === 'error'));
});

test('mtls: MeshConfig enableAutoMtls off sends plaintext to STRICT workloads; ISTIO_MUTUAL, SIMPLE to PERMISSIVE and DISABLE to DISABLE are fine', () => {
  const yaml = `${SERVICE('ledger', 'bank')}${pod('ledger-1', 'bank', 'app: ledger')}
${SERVICE('pay', 'bank')}${pod('pay-1', 'bank', 'app: pay')}
${SERVICE('legacy', 'old')}${pod('legacy-1', 'old', 'app: legacy')}
${SERVICE('shop', 'shop')}${pod('shop-1', 'shop', 'app: shop')}
---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: {name: mesh}
spec: {enableAutoMtls: false}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: bank-strict, namespace: bank}
spec:
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: old-off, namespace: old}
spec: {mtls: {mode: DISABLE}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pay, namespace: bank}
spec: {host: pay, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop, namespace: shop}
spec: {host: shop, trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /etc/ca.pem}}}
`;
  const ds = run('security.mtls-contradictions', yaml);
  assert.deepEqual(ds.map(brief), [`TRL1440 PeerAuthentication bank/bank-strict spec.mtls.mode @${lineOf(yaml, 'mode: STRICT')}`]);
  assert.match(ds[0]!.message, /^a caller without a DestinationRule tls mode for the host \(MeshConfig enableAutoMtls is off, so plaintext\) uses tls mode DISABLE for ledger\.bank\.svc\.cluster\.local port 80, but this policy makes ledger-1\.bank accept mesh mTLS only.*turn MeshConfig enableAutoMtls on/);
});

test('mtls: a subset\'s and a port\'s own tls modes are reported where they are written, naming only the workloads they reach', () => {
  const yaml = `${SERVICE('ledger', 'bank')}${pod('ledger-1', 'bank', 'app: ledger, version: v1')}${pod('ledger-2', 'bank', 'app: ledger, version: v2')}
${SERVICE('vault', 'bank', 443, 8443)}${pod('vault-1', 'bank', 'app: vault', 'default', 8443)}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: v1-strict, namespace: bank}
spec:
  selector: {matchLabels: {version: v1}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: vault-port, namespace: bank}
spec:
  selector: {matchLabels: {app: vault}}
  mtls: {mode: PERMISSIVE}
  portLevelMtls:
    "8443": {mode: STRICT}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ledger, namespace: bank}
spec:
  host: ledger
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy: {tls: {mode: DISABLE}}
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      tls:
        mode: DISABLE
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: vault, namespace: bank}
spec:
  host: vault
  trafficPolicy:
    portLevelSettings:
    - port: {number: 443}
      tls:
        mode: SIMPLE
        caCertificates: /etc/vault-ca.pem
`;
  const ds = run('security.mtls-contradictions', yaml);
  assert.deepEqual(ds.map(brief), [
    `TRL1440 DestinationRule bank/ledger spec.subsets[1].trafficPolicy.tls.mode @${lineOf(yaml, 'mode: DISABLE', '- name: v1')}`,
    `TRL1440 DestinationRule bank/vault spec.trafficPolicy.portLevelSettings[0].tls.mode @${lineOf(yaml, 'mode: SIMPLE')}`,
  ]);
  assert.match(ds[0]!.message, /^subset v1 of this rule uses tls mode DISABLE for ledger\.bank\.svc\.cluster\.local port 80, but PeerAuthentication bank\/v1-strict makes ledger-1\.bank accept/);
  assert.match(ds[1]!.message, /uses tls mode SIMPLE for vault\.bank\.svc\.cluster\.local port 443, but PeerAuthentication bank\/vault-port for port 8443 makes vault-1\.bank accept mesh mTLS only/);
});

test('mtls: no PeerAuthentication, nothing to contradict', () => {
  assert.deepEqual(run('security.mtls-contradictions', `${SERVICE('web', 'shop')}${pod('web-1', 'shop', 'app: web')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec: {host: web, trafficPolicy: {tls: {mode: DISABLE}}}
`), []);
});

// --- authorizationpolicy.allow-all ---

const ALLOW_ALL = `${pod('api', 'shop', 'app: api')}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: slip, namespace: shop}
spec:
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/shop/sa/web"]}
  - {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: shop}
spec:
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: but-one, namespace: shop}
spec:
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/shop/sa/web"]}
    - source:
        notPrincipals: ["cluster.local/ns/shop/sa/batch"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-header, namespace: shop}
spec:
  rules:
  - to:
    - operation:
        notPaths: ["/admin*"]
    when:
    - key: request.headers[x-debug]
      notValues: ["1"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: scoped, namespace: shop}
spec:
  rules:
  - from: [{source: {notNamespaces: ["batch"]}}]
    to: [{operation: {paths: ["/api/*"]}}]
  - from: [{source: {principals: ["*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nobody, namespace: shop}
spec:
  rules:
  - from: [{source: {notIpBlocks: ["0.0.0.0/0", "::/0"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-but, namespace: shop}
spec:
  action: DENY
  rules:
  - from: [{source: {notPrincipals: ["cluster.local/ns/shop/sa/web"]}}]
`;

test('allow-all: an empty rule beside others, and rules that only exclude; intended allow-all, positive rules, DENY and rules that admit nobody are quiet', () => {
  const ds = run('authorizationpolicy.allow-all', ALLOW_ALL);
  assert.deepEqual(ds.map(brief), [
    `TRL1442 AuthorizationPolicy shop/slip spec.rules[1] @${lineOf(ALLOW_ALL, '- {}')}`,
    `TRL1443 AuthorizationPolicy shop/but-one spec.rules[0].from[1].source.notPrincipals @${lineOf(ALLOW_ALL, 'notPrincipals: ["cluster.local/ns/shop/sa/batch"]')}`,
    `TRL1443 AuthorizationPolicy shop/no-header spec.rules[0].to[0].operation.notPaths @${lineOf(ALLOW_ALL, 'notPaths:')}`,
  ]);
  assert.match(ds[0]!.message, /rule 1 is empty, so it allows every request and rule 0 of this ALLOW policy never decide anything; remove the empty rule/);
  assert.match(ds[1]!.message, /rule 0 only excludes \(from\[1\]\.source\.notPrincipals\): it allows every other request, callers without an mTLS identity included; .*DENY policy/);
  assert.match(ds[2]!.message, /\(to\[0\]\.operation\.notPaths, when\[0\]\.notValues\)/);
});

// --- authorizationpolicy.caller-groups ---

const GROUPS = `${pod('web-1', 'shop', 'app: web', 'shared')}${pod('batch-1', 'shop', 'app: batch', 'shared')}${pod('ledger-1', 'shop', 'app: ledger', 'ledger')}${pod('api-1', 'shop', 'app: api')}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: groups, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  rules:
  - from:
    - source:
        labels: {app: web}
    - source:
        labels: {app: ledger}
  - from:
    - source:
        labels: {app: ghost}
`;

test('caller-groups: the compiler\'s notes (shared identity, empty group) reported with the field and line, in the compiler\'s words', () => {
  const ds = run('authorizationpolicy.caller-groups', GROUPS);
  assert.deepEqual(ds.map(brief), [
    `TRL1304 AuthorizationPolicy shop/groups spec.rules[0].from[0].source.labels @${lineOf(GROUPS, 'labels: {app: web}', 'kind: AuthorizationPolicy')}`,
    `TRL1305 AuthorizationPolicy shop/groups spec.rules[1].from[0].source.labels @${lineOf(GROUPS, 'labels: {app: ghost}', 'kind: AuthorizationPolicy')}`,
  ]);
  const { config, registry } = load(GROUPS);
  const notes = compileAuthz({
    policies: config.ofKind('AuthorizationPolicy'), workload: { namespace: 'shop', labels: { app: 'api' } },
    mesh: { rootNamespace: 'istio-system', trustDomain: 'cluster.local' }, registry,
  })!.notes;
  assert.deepEqual(ds.map((d) => d.message).sort(), notes.map((n) => n.message).sort(), 'the same text as the compiled notes');
  assert.match(ds[0]!.message, /spiffe:\/\/cluster\.local\/ns\/shop\/sa\/shared \(also batch-1\.shop\).*give the group's workloads a service account of their own/);
});

test('caller-groups: a group with an identity of its own is quiet', () => {
  const own = GROUPS.slice(0, GROUPS.indexOf('  rules:')) + '  rules:\n  - from:\n    - source:\n        labels: {app: ledger}\n';
  assert.match(own, /labels: \{app: ledger\}\n$/);
  assert.deepEqual(run('authorizationpolicy.caller-groups', own), []);
});

test('every security analyzer copes with bare resources (empty specs, no registry data) without failing', () => {
  const yaml = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a}
spec: {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: p}
spec: {}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: r}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: d}
spec: {host: nowhere.example.com}
${SERVICE('web', 'default')}${pod('web-1', 'default', 'app: web')}`;
  const { config, registry } = load(yaml);
  const found = runAnalyzers(config, registry, { analyzers: securityAnalyzers }).map((f) => f.diagnostic);
  assert.deepEqual(found.filter((d) => d.code === 'TRL1401'), []);
  // The bare PeerAuthentication and AuthorizationPolicy cover namespace default, which has a workload: nothing to say.
  assert.deepEqual(found.map(brief), []);
});

test('mtls: auto mTLS to a service whose every workload is DISABLE goes plaintext, as the compiler builds it: no finding', () => {
  const yaml = `${SERVICE('legacy', 'old')}${pod('legacy-1', 'old', 'app: legacy')}${pod('legacy-2', 'old', 'app: legacy')}
${SERVICE('web', 'shop')}${pod('web-1', 'shop', 'app: web')}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: old-off, namespace: old}
spec:
  mtls: {mode: DISABLE}
`;
  assert.deepEqual(run('security.mtls-contradictions', yaml).map(brief), []);
});
