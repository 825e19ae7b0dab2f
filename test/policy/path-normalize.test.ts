/**
 * Path normalization beyond Istio's table (authz-vectors.test.ts replays
 * that): the query set aside and kept, fragments dropped, the escaped-slash
 * actions, refusals, raw characters, and that the result is idempotent (the
 * backend receives a path that normalizes to itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, pathOptions, type NormalizedPath } from '../../src/policy/path-normalize.js';
import type { PathNormalization } from '../../src/protocol/snapshot.js';

const ok = (r: NormalizedPath) => {
  assert.ok(r.ok, `expected a path, got ${JSON.stringify(r)}`);
  return r;
};

test('the query is kept aside unchanged, never normalized; the fragment is dropped in every mode', () => {
  for (const mode of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as PathNormalization[]) {
    const r = ok(normalizePath('/a/b?x=/../%2F&y=//#frag?not-query', mode));
    assert.equal(r.path, '/a/b', mode);
    assert.equal(r.query, '?x=/../%2F&y=//', mode);
    assert.deepEqual(ok(normalizePath('/p#f?q', mode)), { ok: true, path: '/p', query: '' }, `${mode}: a ? after # is part of the fragment`);
  }
  assert.deepEqual(ok(normalizePath('/x/../y?', 'BASE')), { ok: true, path: '/y', query: '?' });
});

test('dot segments: . and .. (also %2e spellings) resolve, never above the root', () => {
  const cases: [string, string][] = [
    ['/a/./b', '/a/b'], ['/a/b/..', '/a/'], ['/a/b/.', '/a/b/'], ['/..', '/'], ['/../../x', '/x'], ['/a/%2e%2E/b', '/b'],
    ['/a/.%2e/b', '/b'], ['/a/%2e./b', '/b'], ['/a/..b/c', '/a/..b/c'], ['/a.../b', '/a.../b'], ['/a\\..\\b', '/b'],
  ];
  assert.deepEqual(cases.map(([p]) => [p, ok(normalizePath(p, 'BASE')).path]), cases);
});

test('NONE changes nothing but the fragment; %00 is refused only where Envoy normalizes', () => {
  assert.equal(ok(normalizePath('/a/../%00/\\//', 'NONE')).path, '/a/../%00/\\//');
  const r = normalizePath('/admin%00', 'BASE');
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.status, 400);
});

test('a path that does not begin with / is refused with 400', () => {
  for (const p of ['', 'admin', '*', 'http://x/y']) {
    const r = normalizePath(p, 'DECODE_AND_MERGE_SLASHES');
    assert.equal(r.ok ? 'ok' : `${r.status} ${r.reason}`, '400 invalid-path', JSON.stringify(p));
  }
});

test('escaped slashes: REJECT_REQUEST refuses, UNESCAPE_AND_REDIRECT redirects to the normalized path, KEEP_UNCHANGED keeps them', () => {
  const reject = normalizePath('/a%2Fb', pathOptions('MERGE_SLASHES', { escapedSlashes: 'REJECT_REQUEST' }));
  assert.equal(!reject.ok && `${reject.status} ${reject.reason}`, '400 escaped-slash');
  assert.equal(ok(normalizePath('/a/b', pathOptions('MERGE_SLASHES', { escapedSlashes: 'REJECT_REQUEST' }))).path, '/a/b', 'a path without them passes');
  const redirect = normalizePath('/a%5C%5c..%2Fb?q=1', pathOptions('BASE', { escapedSlashes: 'UNESCAPE_AND_REDIRECT', mergeSlashes: true }));
  assert.deepEqual(redirect.ok ? undefined : [redirect.status, redirect.reason, 'location' in redirect ? redirect.location : ''], [307, 'redirect', '/a/b?q=1'], 'dot segments resolve before slashes merge, as in Envoy');
  assert.equal(ok(normalizePath('/a%2Fb', 'MERGE_SLASHES')).path, '/a%2Fb');
  assert.equal(ok(normalizePath('/a%252Fb', 'DECODE_AND_MERGE_SLASHES')).path, '/a%252Fb', 'decoded once: %25 stays');
});

test('raw characters that may not appear in a path are escaped; other escapes keep their spelling', () => {
  assert.equal(ok(normalizePath('/a b"c<d>e^f`g{h}i|j', 'BASE')).path, '/a%20b%22c%3Cd%3Ee%5Ef%60g%7Bh%7Di%7Cj');
  assert.equal(ok(normalizePath('/caf\u00e9/\u{1F600}', 'BASE')).path, '/caf%C3%A9/%F0%9F%98%80');
  assert.equal(ok(normalizePath('/%7e%41%2a%3f%zz%', 'BASE')).path, '/~A%2a%3f%zz%');
  assert.equal(normalizePath('/\ud800', 'BASE').ok, false, 'a lone surrogate is not a character');
});

test('a stray % before an escape that decodes to a hex digit becomes %25 (no new escape appears)', () => {
  assert.equal(ok(normalizePath('/%%30%30', 'BASE')).path, '/%2500');
  assert.equal(ok(normalizePath('/%%300', 'BASE')).path, '/%2500');
  assert.equal(ok(normalizePath('/%4%31', 'BASE')).path, '/%2541');
});

test('normalizing a normalized path gives it back (the backend gets a stable path)', () => {
  const inputs = ['/a//b/../%2e%2E/c%2f%5Cd', '/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/x/./y/%41%2a', '/%%300/a b', '/a/\\/\\/b/..'];
  for (const mode of ['BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as PathNormalization[]) {
    for (const p of inputs) {
      const once = ok(normalizePath(p, mode)).path;
      assert.equal(ok(normalizePath(once, mode)).path, once, `${mode} ${p}`);
    }
  }
});

test('a path with nothing to normalize comes back as the same string', () => {
  const p = '/api/v1/items/42';
  assert.equal(ok(normalizePath(p, 'DECODE_AND_MERGE_SLASHES')).path, p);
  assert.equal(pathOptions('BASE'), pathOptions('BASE'), 'mode options are shared constants');
});
