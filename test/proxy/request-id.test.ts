/**
 * The request ids the proxies create (x-request-id): version 4 UUIDs in
 * crypto.randomUUID's form, distinct, across the refills of their random pool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestIdUuid } from '../../src/proxy/headers.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('request ids: version 4 UUIDs, lowercase, all distinct over several refills of the random pool', () => {
  const n = 256 * 4 + 7;
  const ids = new Set<string>();
  const digits = new Set<string>();
  for (let i = 0; i < n; i++) {
    const id = requestIdUuid();
    assert.match(id, V4);
    ids.add(id);
    digits.add(id[0]!);
  }
  assert.equal(ids.size, n, 'an id came twice');
  // Random, not a counter or a constant: the first digit alone takes (nearly) all sixteen values.
  assert.ok(digits.size >= 14, `the first digit took only ${digits.size} values`);
});

test('request ids: each one is its own string, not a view of a buffer that the next one overwrites', () => {
  const a = requestIdUuid();
  const copy = `${a}`;
  requestIdUuid();
  assert.equal(a, copy);
});
