import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { loadConfig, parseYaml, yamlFiles } from '../../src/api/load.js';
import { appServices } from '../../src/api/kinds/app.js';
import type { ResourceOf } from '../../src/api/config-set.js';

const ROOT = process.env.TRELLIS_ROOT ?? join(new URL('.', import.meta.url).pathname, '..', '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const CRDS = join(FIXTURES, 'istio-validation');

/** Errors of one YAML document, as `field: message` lines. */
function errorsOf(text: string): { field: string; message: string }[] {
  return parseYaml(text, 'test.yaml').diagnostics.filter((d) => d.level === 'error').map((d) => ({ field: d.field ?? '', message: d.message }));
}

function assertError(text: string, field: string, pattern: RegExp): void {
  const errs = errorsOf(text);
  assert.ok(errs.some((e) => e.field === field && pattern.test(e.message)), `expected an error at ${field} matching ${pattern}; got ${JSON.stringify(errs, null, 1)}`);
}

function assertValid(text: string): void {
  assert.deepEqual(errorsOf(text), []);
}

/** The documents of one of Istio's `*-invalid.yaml` files: name, Istio's `_err`, and the document without `_err`. */
function istioCases(file: string): { name: string; istioErr: string; text: string }[] {
  return parseAllDocuments(readFileSync(join(CRDS, file), 'utf8')).map((doc) => {
    const js = doc.toJS() as Record<string, unknown> & { _err: string; metadata: { name: string } };
    const { _err, ...rest } = js;
    return { name: js.metadata.name, istioErr: _err, text: stringify(rest) };
  });
}

// Istio's invalid ServiceEntries: the field each error names, and what our message says.
const serviceEntryInvalid: Record<string, [string, RegExp]> = {
  'no-spec': ['spec', /Required value/],
  'missing-host': ['spec.hosts', /Required value/],
  'bad-selector-value': ['spec.workloadSelector.labels.val', /wildcard is not supported in selector/],
  'selector-and-endpoints': ['spec.workloadSelector', /only one of workloadSelector or endpoints can be set/],
  'bad-host-wildcard': ['spec.hosts[0]', /hostname cannot be wildcard/],
  'bad-cidr-resolution': ['spec.addresses', /CIDR addresses are allowed only for NONE\/STATIC resolution types/],
  'duplicate-ports-name': ['spec.ports[1].name', /Duplicate value/],
  'duplicate-ports-number': ['spec.ports[1].number', /port number cannot be duplicated/],
  'bad-port': ['spec.ports[0].number', /port must be between 1 and 65535/],
  'bad-port-target': ['spec.ports[0].targetPort', /port must be between 1 and 65535/],
  'none-with-endpoints': ['spec.endpoints', /NONE mode cannot set endpoints/],
  'dns-rr-with-multiple-endpoints': ['spec.endpoints[1]', /DNS_ROUND_ROBIN mode cannot have multiple endpoints/],
};

const workloadEntryInvalid: Record<string, [string, RegExp]> = {
  'no-spec': ['spec', /Required value/],
  'missing-address': ['spec.address', /Address is required/],
  'bad-uds-dir': ['spec.address', /UDS may not be a dir/],
  'bad-uds-relative': ['spec.address', /UDS must be an absolute path or abstract socket/],
  'uds-with-ports': ['spec.ports', /UDS may not include ports/],
  'high-port': ['spec.ports.http', /port must be between 1 and 65535/],
  'bad-port-name': ['spec.ports.@', /Invalid value/],
};

for (const [file, table] of [['serviceentry-invalid.yaml', serviceEntryInvalid], ['workloadentry-invalid.yaml', workloadEntryInvalid]] as const) {
  const cases = istioCases(file);
  test(`${file}: every Istio case has a row here`, () => {
    assert.deepEqual(cases.map((c) => c.name).sort(), Object.keys(table).sort());
  });
  for (const c of cases) {
    test(`${file} ${c.name} is rejected (Istio: ${c.istioErr})`, () => {
      const [field, pattern] = table[c.name]!;
      assertError(c.text, field, pattern);
    });
  }
}

for (const file of ['serviceentry-valid.yaml', 'workloadentry-valid.yaml']) {
  test(`${file}: Istio's valid cases load without errors`, () => {
    const r = parseYaml(readFileSync(join(CRDS, file), 'utf8'), file);
    assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error'), []);
    assert.ok(r.resources.length >= 4);
  });
}

const se = (spec: string) => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se, namespace: ns}\nspec:\n${spec}`;

test('ServiceEntry rules beyond the Istio test data', async (t) => {
  const rows: [string, string, string, RegExp][] = [
    ['STATIC endpoints must be IPs', '  hosts: [a.example.com]\n  resolution: STATIC\n  ports: [{name: http, number: 80, protocol: HTTP}]\n  endpoints: [{address: db.example.com}]', 'spec.endpoints[0].address', /not an IP address/],
    ['endpoint ports name service ports', '  hosts: [a.example.com]\n  resolution: STATIC\n  ports: [{name: http, number: 80, protocol: HTTP}]\n  endpoints: [{address: 1.2.3.4, ports: {grpc: 90}}]', 'spec.endpoints[0].ports.grpc', /not defined by the service entry/],
    ['unix endpoints need one port', '  hosts: [a.example.com]\n  resolution: STATIC\n  ports: [{name: http, number: 80, protocol: HTTP}, {name: h2, number: 81, protocol: HTTP2}]\n  endpoints: [{address: "unix:///var/run/a.sock"}]', 'spec.endpoints[0].address', /exactly 1 service port/],
    ['several hosts need HTTP or TLS ports', '  hosts: [a.example.com, b.example.com]\n  resolution: DNS\n  ports: [{name: tcp, number: 5432, protocol: TCP}]', 'spec.ports[0].protocol', /multiple hosts provided with non-HTTP, non-TLS ports/],
    ['wildcards cannot be resolved by DNS', '  hosts: ["*.example.com"]\n  resolution: DNS\n  ports: [{name: http, number: 80, protocol: HTTP}]', 'spec.hosts[0]', /hosts must be FQDN/],
    ['protocols are known', '  hosts: [a.example.com]\n  ports: [{name: x, number: 80, protocol: SMTP}]', 'spec.ports[0].protocol', /unsupported protocol "SMTP"/],
    ['port names are DNS labels', '  hosts: [a.example.com]\n  ports: [{name: "a_b", number: 80}]', 'spec.ports[0].name', /invalid port name/],
    ['ports need names', '  hosts: [a.example.com]\n  ports: [{number: 80}]', 'spec.ports[0].name', /Required value/],
    ['exportTo has no duplicates', '  hosts: [a.example.com]\n  exportTo: [".", "."]', 'spec.exportTo[1]', /Duplicate value/],
    ['exportTo ~ stands alone', '  hosts: [a.example.com]\n  exportTo: ["~", "a"]', 'spec.exportTo', /no one/],
    ['a bad address', '  hosts: [a.example.com]\n  addresses: [1.2.3.4/99]', 'spec.addresses[0]', /not a valid CIDR/],
    ['a bad host', '  hosts: ["a..b"]', 'spec.hosts[0]', /not a valid DNS name/],
    ['an empty host list', '  hosts: []', 'spec.hosts', /at least one host/],
    ['unknown fields are errors', '  hosts: [a.example.com]\n  resolutoin: DNS', 'spec.resolutoin', /unknown field/],
    ['resolution is an enum', '  hosts: [a.example.com]\n  resolution: ROUND_ROBIN', 'spec.resolution', /Unsupported value/],
  ];
  for (const [name, spec, field, pattern] of rows) await t.test(name, () => assertError(se(spec), field, pattern));
  await t.test('an unquoted IPv6 address ending in "::" in a flow list reads as the address, as in Istio', () => {
    const r = parseYaml(se('  hosts: [a.example.com]\n  addresses: [1.2.3.4, 2001:db8::]'), 'se.yaml');
    assert.deepEqual(r.diagnostics, []);
    assert.deepEqual((r.resources[0] as ResourceOf<'ServiceEntry'>).body.spec.addresses, ['1.2.3.4', '2001:db8::']);
  });
  await t.test('a partial wildcard, CIDR with STATIC and an IPv6 address are valid', () => {
    assertValid(se('  hosts: ["*x.example.com"]\n  addresses: [10.0.0.0/8, "2001:db8::1"]\n  resolution: STATIC\n  workloadSelector: {labels: {app: db}}\n  ports: [{name: tcp-db, number: 5432, protocol: TCP}]'));
  });
});

const we = (spec: string) => `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm, namespace: ns}\nspec:\n${spec}`;

test('WorkloadEntry rules beyond the Istio test data', async (t) => {
  await t.test('an address is an IP, a DNS name or a unix socket', () => assertError(we('  address: "not an address"'), 'spec.address', /not an IP address, a DNS name/));
  await t.test('labels are Kubernetes labels', () => assertError(we('  address: 1.2.3.4\n  labels: {"a b": x}'), 'spec.labels["a b"]', /label key/));
  await t.test('locality has at most three parts', () => assertError(we('  address: 1.2.3.4\n  locality: a/b/c/d'), 'spec.locality', /region\/zone\/subzone/));
  await t.test('weight is not negative', () => assertError(we('  address: 1.2.3.4\n  weight: -1'), 'spec.weight', /must not be negative/));
  await t.test('service accounts are Kubernetes names', () => assertError(we('  address: 1.2.3.4\n  serviceAccount: Bad_SA'), 'spec.serviceAccount', /DNS-1123/));
  await t.test('a full entry is valid', () => assertValid(we('  address: 10.0.0.5\n  ports: {http: 8080}\n  labels: {app: ratings, version: v2}\n  locality: eu/eu-a/rack1\n  weight: 3\n  serviceAccount: ratings')));
});

const k8s = (apiVersion: string, kind: string, body: string) => `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: x, namespace: ns}\n${body}`;

test('Kubernetes registry kinds: unread fields pass, read fields are checked', async (t) => {
  await t.test('a Service with fields Trellis does not read is valid', () => {
    assertValid(k8s('v1', 'Service', 'spec:\n  sessionAffinity: ClientIP\n  ipFamilies: [IPv4]\n  selector: {app: x}\n  ports: [{name: http, port: 80, targetPort: web, appProtocol: http}]\nstatus: {loadBalancer: {}}'));
  });
  const rows: [string, string, string, RegExp][] = [
    ['service port range', k8s('v1', 'Service', 'spec:\n  ports: [{port: 70000}]'), 'spec.ports[0].port', /between 1 and 65535/],
    ['named targetPort syntax', k8s('v1', 'Service', 'spec:\n  ports: [{port: 80, targetPort: "Web_Port"}]'), 'spec.ports[0].targetPort', /named targetPort/],
    ['duplicate service port names', k8s('v1', 'Service', 'spec:\n  ports: [{name: a, port: 80}, {name: a, port: 81}]'), 'spec.ports[1].name', /Duplicate value/],
    ['ExternalName needs externalName', k8s('v1', 'Service', 'spec:\n  type: ExternalName'), 'spec.externalName', /Required value/],
    ['service type is an enum', k8s('v1', 'Service', 'spec:\n  type: Internal'), 'spec.type', /Unsupported value/],
    ['container port range', k8s('v1', 'Pod', 'spec:\n  containers: [{name: c, ports: [{containerPort: 0}]}]'), 'spec.containers[0].ports[0].containerPort', /between 1 and 65535/],
    ['pod service account names', k8s('v1', 'Pod', 'spec:\n  serviceAccountName: Bad\n  containers: [{name: c}]'), 'spec.serviceAccountName', /DNS-1123/],
    ['duplicate container port names', k8s('v1', 'Pod', 'spec:\n  containers: [{name: a, ports: [{name: web, containerPort: 80}]}, {name: b, ports: [{name: web, containerPort: 81}]}]'), 'spec.containers[1].ports[0].name', /Duplicate value/],
    ['replicas not negative', k8s('apps/v1', 'Deployment', 'spec:\n  replicas: -1\n  selector: {matchLabels: {app: x}}\n  template: {metadata: {labels: {app: x}}, spec: {containers: [{name: c}]}}'), 'spec.replicas', /must not be negative/],
    ['selector matches the template', k8s('apps/v1', 'Deployment', 'spec:\n  selector: {matchLabels: {app: x}}\n  template: {metadata: {labels: {app: y}}, spec: {containers: [{name: c}]}}'), 'spec.selector.matchLabels.app', /does not match/],
  ];
  for (const [name, text, field, pattern] of rows) await t.test(name, () => assertError(text, field, pattern));
  await t.test('a Namespace is cluster-scoped', () => {
    const r = parseYaml('apiVersion: v1\nkind: Namespace\nmetadata: {name: bank, labels: {team: money}}\n', 'ns.yaml');
    assert.deepEqual(r.diagnostics, []);
    assert.equal(r.resources[0]!.metadata.namespace, '');
    assert.equal(r.resources[0]!.ref, 'Namespace bank');
  });
  await t.test('a ServiceAccount loads', () => assertValid(k8s('v1', 'ServiceAccount', 'secrets: [{name: token}]\nautomountServiceAccountToken: false')));
});

test('the registry kinds of every Istio sample and analyzer input load, but two ServiceEntries Istio rejects too', () => {
  const mine = /^(Service|Pod|Deployment|Namespace|ServiceAccount|ServiceEntry|WorkloadEntry) /;
  const rejected: string[] = [];
  let loaded = 0;
  for (const f of [...yamlFiles(join(FIXTURES, 'istio-analyzers', 'testdata')), ...yamlFiles(join(FIXTURES, 'istio-samples'))]) {
    const c = loadConfig([f]);
    loaded += c.resources.filter((r) => mine.test(r.ref)).length;
    for (const d of c.errors) if (d.resource && mine.test(d.resource) && d.code !== 'TRL1006') rejected.push(`${d.resource} ${d.field}`);
  }
  assert.deepEqual(rejected.sort(), [
    'ServiceEntry default-ignore/service-entry-ignore spec.hosts[0]', // hosts: ["*"]
    'ServiceEntry httpbin/istio spec.hosts[1]', // "*.kiali.io" with resolution DNS and no endpoints
  ]);
  assert.ok(loaded > 150, `only ${loaded} resources loaded`);
});

const app = (spec: string) => `apiVersion: trellis.dev/v1alpha1\nkind: App\nmetadata: {name: bank}\nspec:\n${spec}`;
const BANK = app(`  namespace: bank
  services:
  - name: accounts
    labels: {tier: backend}
    ports: [{name: http, port: 8080, targetPort: 9000}]
    health: {path: /healthz, interval: 2s}
    workloads:
    - name: accounts-v1
      labels: {version: v1}
      replicas: 2
      command: [node, services/accounts.js]
      env: {LOG_LEVEL: info}
      placement: [{region: eu-west, zone: eu-west-a}, {region: eu-west, zone: eu-west-b}]
    - name: accounts-v2
      labels: {version: v2}
      command: node services/accounts.js
  - name: frontend
    namespace: web
    serviceAccount: web-frontend
    ports: [{port: 3000}]
    command: [node, services/frontend.js]
    placement: [{region: eu-west}]
`);

test('App: the manifest of the design loads, and appServices applies every default', () => {
  const r = parseYaml(BANK, 'app.yaml');
  assert.deepEqual(r.diagnostics, []);
  const res = r.resources[0] as ResourceOf<'App'>;
  assert.equal(res.ref, 'App bank');
  const [accounts, frontend] = appServices(res.body.spec);
  assert.deepEqual(
    { ns: accounts!.namespace, sa: accounts!.serviceAccount, ports: accounts!.ports, health: accounts!.health },
    { ns: 'bank', sa: 'accounts', ports: [{ name: 'http', port: 8080, targetPort: 9000 }], health: { path: '/healthz', port: 9000, interval: '2s', timeout: '1s' } },
  );
  assert.deepEqual(accounts!.workloads.map((w) => [w.name, w.replicas, w.labels, w.placement.map((p) => p.zone)]), [
    ['accounts-v1', 2, { version: 'v1', app: 'accounts' }, ['eu-west-a', 'eu-west-b']],
    ['accounts-v2', 1, { version: 'v2', app: 'accounts' }, ['']],
  ]);
  assert.deepEqual(
    { ns: frontend!.namespace, sa: frontend!.serviceAccount, ports: frontend!.ports, workloads: frontend!.workloads.map((w) => [w.name, w.command, w.placement]) },
    { ns: 'web', sa: 'web-frontend', ports: [{ name: '', port: 3000, targetPort: 3000 }], workloads: [['frontend', ['node', 'services/frontend.js'], [{ region: 'eu-west', zone: '', subzone: '' }]]] },
  );
});

test('App validation', async (t) => {
  const svc = (extra: string) => app(`  services:\n  - name: a\n    ports: [{name: http, port: 80}]\n${extra}`);
  const rows: [string, string, string, RegExp][] = [
    ['service names are DNS labels', app('  services:\n  - name: Accounts\n    ports: [{port: 80}]\n    command: x'), 'spec.services[0].name', /DNS-1123 label/],
    ['service names are unique', app('  services:\n  - {name: a, ports: [{port: 80}], command: x}\n  - {name: a, ports: [{port: 80}], command: y}'), 'spec.services[1].name', /Duplicate value: service "a.default"/],
    ['workload names are unique across services', app('  services:\n  - {name: a, ports: [{port: 80}], workloads: [{name: w, command: x}]}\n  - {name: b, ports: [{port: 80}], workloads: [{name: w, command: y}]}'), 'spec.services[1].workloads[0].name', /Duplicate value: workload "w.default"/],
    ['a shorthand workload collides with a named one', app('  services:\n  - {name: a, ports: [{port: 80}], workloads: [{name: b, command: x}]}\n  - {name: b, ports: [{port: 80}], command: y}'), 'spec.services[1].name', /Duplicate value: workload "b.default"/],
    ['placement: one, or one per replica', svc('    workloads: [{name: w, replicas: 3, command: x, placement: [{region: a}, {region: b}]}]'), 'spec.services[0].workloads[0].placement', /2 localities for 3 replicas/],
    ['replicas are not negative', svc('    workloads: [{name: w, replicas: -1, command: x}]'), 'spec.services[0].workloads[0].replicas', /must not be negative/],
    ['port numbers are unique', app('  services:\n  - {name: a, ports: [{name: a, port: 80}, {name: b, port: 80}], command: x}'), 'spec.services[0].ports[1].port', /Duplicate value: port 80/],
    ['port names are unique', app('  services:\n  - {name: a, ports: [{name: a, port: 80}, {name: a, port: 81}], command: x}'), 'spec.services[0].ports[1].name', /Duplicate value: port name "a"/],
    ['several ports need names', app('  services:\n  - {name: a, ports: [{name: a, port: 80}, {port: 81}], command: x}'), 'spec.services[0].ports[1].name', /needs a name/],
    ['workloads or a command', svc(''), 'spec.services[0].workloads', /needs workloads, or a command/],
    ['not workloads and a command', svc('    command: x\n    workloads: [{name: w, command: y}]'), 'spec.services[0].command', /either workloads or command/],
    ['a workload needs a command', svc('    workloads: [{name: w}]'), 'spec.services[0].workloads[0].command', /Required value/],
    ['the app label is the service name', svc('    workloads: [{name: w, command: x, labels: {app: other}}]'), 'spec.services[0].workloads[0].labels.app', /label app/],
    // The message is the loader's for a wrong type (it reads "Required value" today, as zod 4 reports no input).
    ['env values are strings', svc('    command: x\n    env: {PORT: 8080}'), 'spec.services[0].env.PORT', /./],
    ['a health path starts with /', svc('    command: x\n    health: {path: healthz}'), 'spec.services[0].health.path', /starts with/],
    ['a health interval is a duration', svc('    command: x\n    health: {path: /h, interval: often}'), 'spec.services[0].health.interval', /not a valid duration/],
    ['unknown fields are errors', svc('    command: x\n    replica: 2'), 'spec.services[0].replica', /unknown field/],
  ];
  for (const [name, text, field, pattern] of rows) await t.test(name, () => assertError(text, field, pattern));
  await t.test('replicas 0 with one placement is valid', () => assertValid(svc('    workloads: [{name: w, replicas: 0, command: x, placement: [{region: a}]}]')));
});
