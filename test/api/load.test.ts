import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml } from '../../src/api/load.js';

test('a VirtualService loads with its position and typed body', () => {
  const r = parseYaml(`# comment\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n`, 'vs.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.resources.length, 1);
  const vs = r.resources[0]!;
  assert.equal(vs.ref, 'VirtualService default/reviews');
  assert.equal(vs.position.line, 2);
});

test('an unknown field is an error naming file, line, column and field path', () => {
  const r = parseYaml(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n      wieght: 3\n`, 'vs.yaml');
  assert.equal(r.resources.length, 0);
  assert.equal(r.diagnostics.length, 1);
  const d = r.diagnostics[0]!;
  assert.equal(d.code, 'TRL1002');
  assert.equal(d.field, 'spec.http[0].route[0].wieght');
  assert.deepEqual(d.position, { file: 'vs.yaml', line: 10, col: 7 });
});
