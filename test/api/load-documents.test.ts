/**
 * The loader on YAML text: documents, lists, comments, anchors, merge keys,
 * syntax errors and resource headers. Every test checks the code, the field
 * and the exact position of what it reports: a message that points at the
 * wrong line is wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml } from '../../src/api/load.js';
import { at, lines, where } from './load-helpers.js';

test('a file of several documents, with empty ones and a trailing ---, loads each resource at its own line', () => {
  const r = parseYaml([
    '---',                                   // 1: a leading separator
    'apiVersion: v1',                        // 2
    'kind: Namespace',
    'metadata: {name: a}',
    '---',                                   // 5
    '---',                                   // 6: an empty document
    '# a document holding only a comment',   // 7
    '---',                                   // 8
    'apiVersion: v1',                        // 9
    'kind: ServiceAccount',
    'metadata: {name: reviews, namespace: bank}',
    '---',                                   // 12: trailing separator
    '',
  ].join('\n'), 'multi.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.resources.map((x) => [x.ref, x.position]), [
    ['Namespace a', at('multi.yaml', 2, 1)],
    ['ServiceAccount bank/reviews', at('multi.yaml', 9, 1)],
  ]);
});

test('an empty file, and a file of separators and comments only, load nothing and report nothing', () => {
  for (const text of ['', '\n', '---\n', '---\n---\n# nothing here\n---\n']) {
    assert.deepEqual(parseYaml(text, 'empty.yaml'), { resources: [], diagnostics: [] }, JSON.stringify(text));
  }
});

test('kind: List: each item is a resource positioned inside the list', () => {
  const r = parseYaml(lines(
    'apiVersion: v1',
    'kind: List',
    'items:',
    '- apiVersion: v1',        // 4: items[0]
    '  kind: Namespace',
    '  metadata: {name: a}',
    '- apiVersion: v1',        // 7: items[1]
    '  kind: Namespace',
    '  metadata: {name: b}',
  ), 'list.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.resources.map((x) => [x.ref, x.position]), [
    ['Namespace a', at('list.yaml', 4, 3)],
    ['Namespace b', at('list.yaml', 7, 3)],
  ]);
});

test('kind: List: an error in items[1] names the line inside items[1]; items[0] still loads', () => {
  const r = parseYaml(lines(
    'apiVersion: v1',
    'kind: List',
    'items:',
    '- apiVersion: v1',
    '  kind: Namespace',
    '  metadata: {name: a}',
    '- apiVersion: networking.istio.io/v1',
    '  kind: VirtualService',
    '  metadata: {name: reviews, namespace: bank}',
    '  spec:',
    '    hosts: [reviews]',
    '    http:',
    '    - route:',
    '      - destination: {host: reviews}',
    '        weight: -1',          // 15
  ), 'list.yaml');
  assert.deepEqual(r.diagnostics.map(where), [
    { code: 'TRL0106', field: 'spec.http[0].route[0].weight', resource: 'VirtualService bank/reviews', position: at('list.yaml', 15, 17) },
  ]);
  assert.deepEqual(r.resources.map((x) => x.ref), ['Namespace a']);
});

test('comments anywhere are ignored, and positions still count their lines', () => {
  const r = parseYaml(lines(
    '# header comment',
    'apiVersion: networking.istio.io/v1 # trailing comment',
    'kind: VirtualService',
    'metadata:',
    '  # a comment inside a mapping',
    '  name: reviews',
    '  namespace: bank',
    'spec:',
    '  hosts: [reviews] # hosts',
    '  http:',
    '  # before a list item',
    '  - route:',
    '    - destination: {host: reviews}',
    '      wieght: 3 # a typo',   // 14
  ), 'comments.yaml');
  assert.deepEqual(r.diagnostics.map(where), [
    { code: 'TRL1002', field: 'spec.http[0].route[0].wieght', resource: 'VirtualService bank/reviews', position: at('comments.yaml', 14, 7) },
  ]);
});

test('anchors and aliases: an aliased value is read in each place, and an error in it points at the anchored value', () => {
  const ok = parseYaml(lines(
    'apiVersion: networking.istio.io/v1',
    'kind: DestinationRule',
    'metadata: {name: reviews, namespace: bank}',
    'spec:',
    '  host: reviews',
    '  trafficPolicy: &policy',
    '    connectionPool: {tcp: {maxConnections: 10}}',
    '  subsets:',
    '  - name: v1',
    '    trafficPolicy: *policy',
  ), 'alias.yaml');
  assert.deepEqual(ok.diagnostics, []);
  const spec = (ok.resources[0]!.body as { spec: { trafficPolicy: unknown; subsets: { trafficPolicy: unknown }[] } }).spec;
  assert.deepEqual(spec.subsets[0]!.trafficPolicy, { connectionPool: { tcp: { maxConnections: 10 } } });
  assert.deepEqual(spec.subsets[0]!.trafficPolicy, spec.trafficPolicy);

  const bad = parseYaml(lines(
    'apiVersion: networking.istio.io/v1',
    'kind: DestinationRule',
    'metadata: {name: reviews, namespace: bank}',
    'spec:',
    '  host: reviews',
    '  trafficPolicy: &policy',
    '    connectionPool: {tcp: {connectTimeout: 5}}',   // 7: a number, not a duration
    '  subsets:',
    '  - name: v1',
    '    trafficPolicy: *policy',
  ), 'alias.yaml');
  assert.deepEqual(bad.diagnostics.map(where), [
    { code: 'TRL0106', field: 'spec.trafficPolicy.connectionPool.tcp.connectTimeout', resource: 'DestinationRule bank/reviews', position: at('alias.yaml', 7, 44) },
    { code: 'TRL0106', field: 'spec.subsets[0].trafficPolicy.connectionPool.tcp.connectTimeout', resource: 'DestinationRule bank/reviews', position: at('alias.yaml', 7, 44) },
  ]);
});

const MERGED = [
  'apiVersion: v1',
  'kind: List',
  'items:',
  '- &reviews',                                   // 4
  '  apiVersion: networking.istio.io/v1',
  '  kind: DestinationRule',
  '  metadata: {name: reviews, namespace: bank}',
  '  spec:',
  '    host: reviews',
  '    trafficPolicy: &policy',
  '      loadBalancer: {simple: ROUND_ROBIN}',      // 11
  '- <<: *reviews',                               // 12
  '  metadata: {name: ratings, namespace: bank}',
  '  spec:',
  '    host: ratings',
  '    trafficPolicy:',
  '      <<: *policy',
  '      connectionPool: {tcp: {maxConnections: 10}}',
];

test('merge keys (<<: *base): merged fields are read, own fields win', () => {
  const r = parseYaml(lines(...MERGED), 'merge.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.resources.map((x) => [x.ref, x.position, x.apiVersion]), [
    ['DestinationRule bank/reviews', at('merge.yaml', 5, 3), 'networking.istio.io/v1'],
    ['DestinationRule bank/ratings', at('merge.yaml', 12, 3), 'networking.istio.io/v1'],
  ]);
  assert.deepEqual((r.resources[1]!.body as { spec: unknown }).spec, {
    host: 'ratings',
    trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' }, connectionPool: { tcp: { maxConnections: 10 } } },
  });
});

test('merge keys: an error in a merged field points where the field is written, in the mapping merged in', () => {
  const text = lines(...MERGED).replace('{simple: ROUND_ROBIN}', '{simple: FASTEST}');
  const r = parseYaml(text, 'merge.yaml');
  assert.deepEqual(r.diagnostics.map(where), [
    { code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.simple', resource: 'DestinationRule bank/reviews', position: at('merge.yaml', 11, 30) },
    { code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.simple', resource: 'DestinationRule bank/ratings', position: at('merge.yaml', 11, 30) },
  ]);
  assert.match(r.diagnostics[0]!.message, /Unsupported value: "FASTEST"; allowed: "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"$/);
});

test('a YAML syntax error is TRL1001 at its line and column; the other documents of the file still load', () => {
  const r = parseYaml(lines(
    'apiVersion: v1',
    'kind: Namespace',
    'metadata: {name: a}',
    '---',
    'apiVersion: v1',
    'kind: Namespace',
    'metadata:',
    '  name: b',
    '  labels: a: b',          // 9: a nested mapping in a compact one
    '---',
    'apiVersion: v1',
    'kind: Namespace',
    'metadata: {name: c}',
  ), 'broken.yaml');
  assert.deepEqual(r.diagnostics.map(where), [{ code: 'TRL1001', field: undefined, position: at('broken.yaml', 9, 11) }]);
  assert.match(r.diagnostics[0]!.message, /^YAML syntax error: /);
  assert.deepEqual(r.resources.map((x) => [x.ref, x.position]), [
    ['Namespace a', at('broken.yaml', 1, 1)],
    ['Namespace c', at('broken.yaml', 11, 1)],
  ]);
});

test('a key written twice in one mapping is a syntax error (TRL1001) at the second key', () => {
  const r = parseYaml(lines('apiVersion: v1', 'kind: Namespace', 'metadata: {name: a}', 'kind: Service'), 'twice.yaml');
  assert.deepEqual(r.diagnostics.map(where), [{ code: 'TRL1001', field: undefined, position: at('twice.yaml', 4, 1) }]);
  assert.match(r.diagnostics[0]!.message, /unique/);
  assert.deepEqual(r.resources, []);
});

test('a document without apiVersion, kind or metadata.name is TRL1010, each at the field it lacks', () => {
  const r = parseYaml([
    'kind: Namespace',                    // 1: no apiVersion
    'metadata: {name: a}',
    '---',
    'apiVersion: v1',                     // 4: no kind
    'metadata: {name: a}',
    '---',
    'apiVersion: v1',                     // 7
    'kind: Namespace',
    'metadata: {labels: {team: a}}',      // 9: no name
    '---',
    'apiVersion: v1',                     // 11
    'kind: Namespace',
    'metadata: {name: ""}',               // 13: an empty name
    '---',
    'apiVersion: v1',                     // 15: no metadata
    'kind: Namespace',
    '---',
    '- a list, not a mapping',            // 18
    '',
  ].join('\n'), 'headers.yaml');
  assert.deepEqual(r.diagnostics.map(where), [
    { code: 'TRL1010', field: 'apiVersion', position: at('headers.yaml', 1, 1) },
    { code: 'TRL1010', field: 'kind', position: at('headers.yaml', 4, 1) },
    { code: 'TRL1010', field: 'metadata.name', position: at('headers.yaml', 9, 11) },
    { code: 'TRL1010', field: 'metadata.name', position: at('headers.yaml', 13, 18) },
    { code: 'TRL1010', field: 'metadata', position: at('headers.yaml', 15, 1) },
    { code: 'TRL1010', field: undefined, position: at('headers.yaml', 18, 1) },
  ]);
  assert.deepEqual(r.diagnostics.map((d) => d.level), Array(6).fill('error'));
  assert.deepEqual(r.resources, []);
});

test('a metadata.name that is not a DNS name is a schema error (TRL0106), not a missing one', () => {
  const r = parseYaml(lines('apiVersion: v1', 'kind: Namespace', 'metadata: {name: Bad_Name}'), 'name.yaml');
  assert.deepEqual(r.diagnostics.map(where), [{ code: 'TRL0106', field: 'metadata.name', position: at('name.yaml', 3, 18) }]);
  assert.match(r.diagnostics[0]!.message, /lowercase DNS-1123 name/);
});
