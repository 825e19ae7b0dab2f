/**
 * What the loader says about a document it reads: namespaces it fills in,
 * schema errors (each names what is allowed) and warnings, each with its
 * code, field and exact position.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic } from '../../src/api/diagnostic.js';
import { parseYaml } from '../../src/api/load.js';
import { at, lines, where } from './load-helpers.js';

test('a namespaced resource without metadata.namespace is in "default", or in the defaultNamespace given', () => {
  const text = lines('apiVersion: v1', 'kind: ServiceAccount', 'metadata: {name: reviews}');
  const [sa] = parseYaml(text, 'sa.yaml').resources;
  assert.equal(sa?.metadata.namespace, 'default');
  assert.equal(sa?.ref, 'ServiceAccount default/reviews');
  assert.equal(sa?.key, 'ServiceAccount/default/reviews');
  const [prod] = parseYaml(text, 'sa.yaml', { defaultNamespace: 'prod' }).resources;
  assert.equal(prod?.metadata.namespace, 'prod');
  assert.equal(prod?.ref, 'ServiceAccount prod/reviews');
});

test('cluster-scoped kinds (Namespace, MeshConfig, App) have no namespace, even when one is written', () => {
  const r = parseYaml([
    'apiVersion: v1',
    'kind: Namespace',
    'metadata: {name: bank, namespace: ignored}',
    '---',
    'apiVersion: trellis.dev/v1alpha1',
    'kind: MeshConfig',
    'metadata: {name: mesh}',
    'spec: {}',
    '---',
    'apiVersion: trellis.dev/v1alpha1',
    'kind: App',
    'metadata: {name: bank}',
    'spec: {services: []}',
  ].join('\n'), 'cluster.yaml', { defaultNamespace: 'prod' });
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.resources.map((x) => [x.ref, x.key, x.metadata.namespace]), [
    ['Namespace bank', 'Namespace//bank', ''],
    ['MeshConfig mesh', 'MeshConfig//mesh', ''],
    ['App bank', 'App//bank', ''],
  ]);
});

test('a metadata.namespace that is not a DNS label is a schema error at it', () => {
  const r = parseYaml(lines('apiVersion: v1', 'kind: ServiceAccount', 'metadata:', '  name: a', '  namespace: Bank'), 'ns.yaml');
  assert.deepEqual(r.diagnostics.map(where), [{ code: 'TRL0106', field: 'metadata.namespace', position: at('ns.yaml', 5, 14) }]);
  assert.match(r.diagnostics[0]!.message, /lowercase DNS-1123 label, got "Bank"/);
});

/** A VirtualService whose first route gets `extra` (lines indented 4), written from line 9 on. */
const vs = (...extra: string[]) => lines(
  'apiVersion: networking.istio.io/v1',
  'kind: VirtualService',
  'metadata: {name: reviews, namespace: bank}',
  'spec:',
  '  hosts: [reviews]',
  '  http:',
  '  - route:',
  '    - destination: {host: reviews}',
  ...extra,
);

const VS = 'VirtualService bank/reviews';
const messageRows: { name: string; text: string; resource: string; field: string; line: number; col: number; message: RegExp }[] = [
  {
    name: 'a wrong type names the type wanted and the one given',
    resource: VS,
    text: vs('    retries: {attempts: three}'),
    field: 'spec.http[0].retries.attempts', line: 9, col: 25,
    message: /attempts: must be a number, got string "three"$/,
  },
  {
    name: 'a mapping where a list belongs names both',
    resource: VS,
    text: vs('    match: {uri: {prefix: /a}}'),
    field: 'spec.http[0].match', line: 9, col: 12,
    message: /match: must be an array, got a mapping$/,
  },
  {
    name: 'a bad enum value lists the allowed values',
    resource: 'PeerAuthentication bank/default',
    text: lines('apiVersion: security.istio.io/v1', 'kind: PeerAuthentication', 'metadata: {name: default, namespace: bank}', 'spec:', '  mtls: {mode: ON}'),
    field: 'spec.mtls.mode', line: 5, col: 16,
    message: /Unsupported value: "ON"; allowed: "UNSET", "DISABLE", "PERMISSIVE", "STRICT"$/,
  },
  {
    name: 'a malformed duration says what a duration looks like',
    resource: VS,
    text: vs('    timeout: 10 seconds'),
    field: 'spec.http[0].timeout', line: 9, col: 14,
    message: /"10 seconds" is not a valid duration: use a number with a unit, such as 10s, 1.5s, 250ms or 1m$/,
  },
  {
    name: 'an invalid RE2 regex quotes it and says why it does not compile',
    resource: VS,
    text: vs('    match:', '    - uri: {regex: "a(b"}'),
    field: 'spec.http[0].match[0].uri.regex', line: 10, col: 20,
    message: /invalid RE2 regular expression "a\(b": .*missing closing \)/,
  },
  {
    name: 'conflicting fields name the fields that may not be set together, at the second',
    resource: VS,
    text: vs('    match:', '    - uri: {exact: /a, prefix: /b}'),
    field: 'spec.http[0].match[0].uri.prefix', line: 10, col: 32,
    message: /a string match may set only one of exact, prefix, regex; found exact and prefix$/,
  },
  {
    name: 'a missing required field says it is required, at its parent',
    resource: 'DestinationRule bank/reviews',
    text: lines('apiVersion: networking.istio.io/v1', 'kind: DestinationRule', 'metadata: {name: reviews, namespace: bank}', 'spec:', '  subsets: [{name: v1}]'),
    field: 'spec.host', line: 5, col: 3,
    message: /^spec\.host: Required value/,
  },
];

for (const row of messageRows) {
  test(`schema messages: ${row.name} (TRL0106)`, () => {
    const r = parseYaml(row.text, 'messages.yaml');
    assert.deepEqual(r.diagnostics.map(where), [{ code: 'TRL0106', field: row.field, resource: row.resource, position: at('messages.yaml', row.line, row.col) }]);
    assert.match(r.diagnostics[0]!.message, row.message);
    assert.deepEqual(r.resources, []);
  });
}

test('TRL1005 (accepted, not enforced) is a warning at the key of the field, and the resource loads', () => {
  const r = parseYaml(vs('    match:', '    - statPrefix: a', '    - statPrefix: b'), 'warn.yaml');
  assert.deepEqual(r.diagnostics.map((d) => ({ level: d.level, ...where(d) })), [
    { level: 'warning', code: 'TRL1005', field: 'spec.http[0].match[0].statPrefix', resource: 'VirtualService bank/reviews', position: at('warn.yaml', 10, 7) },
    { level: 'warning', code: 'TRL1005', field: 'spec.http[0].match[1].statPrefix', resource: 'VirtualService bank/reviews', position: at('warn.yaml', 11, 7) },
  ]);
  assert.equal(r.resources.length, 1);
});

test('a printed schema error names its field once: the line has it, the message leads with it for readers of the message alone', () => {
  const { diagnostics } = parseYaml('apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: web }\nspec:\n  hosts: [web]\n  http: [{ timeout: forever, route: [{ destination: { host: web } }] }]\n', 'vs.yaml');
  const d = diagnostics.find((x) => x.code === 'TRL0106')!;
  assert.equal(d.field, 'spec.http[0].timeout');
  assert.ok(d.message.startsWith('spec.http[0].timeout: '), d.message);
  const line = formatDiagnostic(d);
  assert.match(line, /^vs\.yaml:6:\d+: error TRL0106 VirtualService default\/web spec\.http\[0\]\.timeout: "forever" is not a valid duration/);
  assert.equal(line.split('spec.http[0].timeout').length, 2, `the field once: ${line}`);
});
