/**
 * The App manifest's `upstreams` (per-upstream local ports): what loads,
 * the defaults `appServices()` applies (namespace, variable name), and the
 * errors, each at its field with the file's position.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml } from '../../src/api/load.js';
import { appServices, upstreamEnvName } from '../../src/api/kinds/app.js';
import type { ResourceOf } from '../../src/api/config-set.js';

const app = (services: string) => `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: {name: bank}
spec:
  namespace: bank
  services:
${services}`;

const errors = (text: string) => parseYaml(text, 'app.yaml').diagnostics.filter((d) => d.level === 'error');

function assertError(text: string, field: string, pattern: RegExp): void {
  const errs = errors(text);
  const hit = errs.find((e) => e.field === field && pattern.test(e.message));
  assert.ok(hit, `expected an error at ${field} matching ${pattern}; got ${JSON.stringify(errs.map((e) => [e.field, e.message]), null, 1)}`);
  assert.equal(hit.code, 'TRL0106');
  assert.ok(hit.position && hit.position.file === 'app.yaml' && hit.position.line > 0, `the error has the file's position: ${JSON.stringify(hit.position)}`);
}

test('upstreams of a workload and of a shorthand service load; appServices fills in namespace and variable', () => {
  const r = parseYaml(app(`  - name: api
    ports: [{name: http, port: 8080}]
    workloads:
    - name: api-v1
      replicas: 2
      command: x
      upstreams:
      - {service: db, port: 5432}
      - {service: ledger, namespace: core, port: 5432}
  - name: web
    ports: [{port: 80}]
    command: y
    upstreams: [{service: api, port: 8080, localPort: 18080}]
`), 'app.yaml');
  assert.deepEqual(r.diagnostics, []);
  const [api, web] = appServices((r.resources[0] as ResourceOf<'App'>).body.spec);
  assert.deepEqual(api!.workloads[0]!.upstreams, [
    { service: 'db', namespace: 'bank', port: 5432, env: 'TRELLIS_UPSTREAM_DB_5432' },
    { service: 'ledger', namespace: 'core', port: 5432, env: 'TRELLIS_UPSTREAM_LEDGER_CORE_5432' },
  ]);
  assert.deepEqual(web!.workloads[0]!.upstreams, [{ service: 'api', namespace: 'bank', port: 8080, localPort: 18080, env: 'TRELLIS_UPSTREAM_API_8080' }]);
});

test('the variable name: service, its namespace when it is another, the port; upper case, "-" as "_"', () => {
  assert.equal(upstreamEnvName({ service: 'funds-transfer', port: 8080 }, 'bank'), 'TRELLIS_UPSTREAM_FUNDS_TRANSFER_8080');
  assert.equal(upstreamEnvName({ service: 'db', namespace: 'bank', port: 5432 }, 'bank'), 'TRELLIS_UPSTREAM_DB_5432');
  assert.equal(upstreamEnvName({ service: 'db', namespace: 'data-eu', port: 5432 }, 'bank'), 'TRELLIS_UPSTREAM_DB_DATA_EU_5432');
});

test('a fixed localPort with several replicas is refused at its field, naming service, workload and port', () => {
  assertError(app(`  - name: api
    ports: [{port: 8080}]
    workloads:
    - {name: api-v1, replicas: 2, command: x, upstreams: [{service: db, port: 5432, localPort: 15432}]}
`), 'spec.services[0].workloads[0].upstreams[0].localPort', /service "api" workload "api-v1" has 2 replicas, which cannot all listen on localPort 15432 for upstream db\.bank:5432: remove localPort/);
  // The shorthand workload: the field is on the service.
  assertError(app(`  - {name: web, ports: [{port: 80}], command: y, replicas: 3, upstreams: [{service: api, port: 8080, localPort: 18080}]}
`), 'spec.services[0].upstreams[0].localPort', /service "web" workload "web" has 3 replicas/);
});

test('upstream errors', async (t) => {
  const rows: [string, string, string, RegExp][] = [
    ['the same upstream twice', `  - {name: web, ports: [{port: 80}], command: y, upstreams: [{service: db, port: 5432}, {service: db, namespace: bank, port: 5432}]}\n`,
      'spec.services[0].upstreams[1]', /Duplicate value: service "web" workload "web" already has upstream db\.bank:5432 at upstreams\[0\]/],
    ['one fixed localPort for two workloads', `  - {name: web, ports: [{port: 80}], command: y, upstreams: [{service: db, port: 5432, localPort: 15432}]}\n  - {name: api, ports: [{port: 80}], command: y, upstreams: [{service: kv, port: 6379, localPort: 15432}]}\n`,
      'spec.services[1].upstreams[0].localPort', /Duplicate value: localPort 15432 of service "api" workload "api" is already the local port of upstream db\.bank:5432 of service "web" workload "web"/],
    ['two upstreams announced by one variable', `  - {name: web, ports: [{port: 80}], command: y, upstreams: [{service: db-x, port: 5432}, {service: db, namespace: x, port: 5432}]}\n`,
      'spec.services[0].upstreams[1]', /would be announced as TRELLIS_UPSTREAM_DB_X_5432, like upstreams\[0\]/],
    ['upstreams belong to each workload when a service lists workloads', `  - {name: web, ports: [{port: 80}], upstreams: [{service: db, port: 5432}], workloads: [{name: w, command: x}]}\n`,
      'spec.services[0].upstreams', /upstreams belongs to each workload/],
    ['the service port is a port', `  - {name: web, ports: [{port: 80}], command: y, upstreams: [{service: db, port: 70000}]}\n`,
      'spec.services[0].upstreams[0].port', /port must be between 1 and 65535/],
    ['the service is a DNS label', `  - {name: web, ports: [{port: 80}], command: y, upstreams: [{service: db.bank, port: 5432}]}\n`,
      'spec.services[0].upstreams[0].service', /DNS-1123 label/],
    ['unknown fields are errors', `  - {name: web, ports: [{port: 80}], command: y, upstreams: [{service: db, port: 5432, local: 1}]}\n`,
      'spec.services[0].upstreams[0].local', /unknown field/],
  ];
  for (const [name, services, field, pattern] of rows) {
    await t.test(name, () => {
      const errs = errors(app(services));
      assert.ok(errs.some((e) => e.field === field && pattern.test(e.message)), `expected ${field} ~ ${pattern}; got ${JSON.stringify(errs.map((e) => [e.field, e.message]), null, 1)}`);
    });
  }
});
