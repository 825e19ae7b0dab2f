/** Last-good configuration per file (src/controlplane/config-store.ts). No sockets, no clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigStore, type FileRead } from '../../src/controlplane/config-store.js';

const vs = (name: string, host: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${host}]
  http: [{ route: [{ destination: { host: ${host} } }] }]${extra}
`;
const files = (entries: Record<string, string | Error>) =>
  new Map<string, FileRead>(Object.entries(entries).map(([f, v]) => [f, v instanceof Error ? { error: v } : { text: v }]));
const names = (s: ConfigStore) => s.config.resources.map((r) => `${r.metadata.name}@${r.position.file}`);

test('a file in force stays in its last good version while its new version has errors; the fix applies', () => {
  const s = new ConfigStore();
  const u1 = s.update(files({ 'a.yaml': vs('a', 'ratings'), 'b.yaml': vs('b', 'reviews') }));
  assert.equal(u1.changed, true);
  assert.deepEqual(u1.rejected, []);
  assert.deepEqual(names(s), ['a@a.yaml', 'b@b.yaml']);
  const good = s.config;

  const u2 = s.update(files({ 'a.yaml': vs('a', 'ratings') + 'oops: [', 'b.yaml': vs('b', 'reviews') }));
  assert.equal(u2.changed, false);
  assert.equal(s.config, good, 'the same configuration object stays in force');
  assert.deepEqual(u2.rejectedFiles, ['a.yaml']);
  assert.equal(u2.rejected[0]!.code, 'TRL1001');
  assert.equal(u2.rejected[0]!.position!.file, 'a.yaml');
  assert.ok(u2.rejected[0]!.position!.line >= 7);

  const u3 = s.update(files({ 'a.yaml': vs('a', 'ratings') + 'oops: [', 'b.yaml': vs('b2', 'reviews') }));
  assert.equal(u3.changed, true, 'an edit of another file still applies');
  assert.deepEqual(names(s), ['a@a.yaml', 'b2@b.yaml']);
  assert.equal(u3.rejected.length, 1, 'the broken file is still reported');

  const u4 = s.update(files({ 'a.yaml': vs('a', 'details'), 'b.yaml': vs('b2', 'reviews') }));
  assert.deepEqual(u4.rejected, []);
  assert.equal((s.config.get('VirtualService', 'default', 'a')!.body.spec as { hosts: string[] }).hosts[0], 'details');
});

test('schema errors reject the whole file version, also the documents of it that were valid', () => {
  const s = new ConfigStore();
  s.update(files({ 'a.yaml': vs('a', 'ratings') }));
  const bad = vs('a', 'ratings', '\n  tcp: 3') + '---\n' + vs('extra', 'details');
  const u = s.update(files({ 'a.yaml': bad }));
  assert.equal(u.changed, false);
  assert.equal(u.rejected[0]!.resource, 'VirtualService default/a');
  assert.equal(u.rejected[0]!.field, 'spec.tcp');
  assert.deepEqual(names(s), ['a@a.yaml'], 'not even the valid document of the rejected version is in force');
});

test('a new file with errors contributes nothing; a deleted file leaves; an unreadable file keeps its last good version', () => {
  const s = new ConfigStore();
  s.update(files({ 'a.yaml': vs('a', 'ratings') }));
  const u1 = s.update(files({ 'a.yaml': vs('a', 'ratings'), 'new.yaml': 'kind: [' }));
  assert.equal(u1.changed, false);
  assert.deepEqual(u1.rejectedFiles, ['new.yaml']);
  const u2 = s.update(files({ 'a.yaml': new Error('EACCES') }));
  assert.equal(u2.rejected[0]!.code, 'TRL1008');
  assert.deepEqual(names(s), ['a@a.yaml']);
  const u3 = s.update(files({}));
  assert.equal(u3.changed, true);
  assert.deepEqual(names(s), []);
});

test('an edit that defines a resource another file defines is rejected; the other file keeps it', () => {
  const s = new ConfigStore();
  s.update(files({ 'b.yaml': vs('shared', 'reviews') }));
  const u = s.update(files({ 'a.yaml': vs('shared', 'ratings'), 'b.yaml': vs('shared', 'reviews') }));
  assert.deepEqual(u.rejectedFiles, ['a.yaml'], 'a.yaml sorts first but is the edit, so it is the one rejected');
  assert.equal(u.rejected[0]!.code, 'TRL1006');
  assert.match(u.rejected[0]!.message, /first at b\.yaml:\d+/);
  assert.deepEqual(names(s), ['shared@b.yaml']);
  const dup = s.update(files({ 'b.yaml': vs('shared', 'reviews') + '---\n' + vs('shared', 'details') }));
  assert.equal(dup.rejected[0]!.code, 'TRL1006', 'a resource twice in one file');
  assert.deepEqual(names(s), ['shared@b.yaml']);
});

test('warnings do not reject a file and stay visible with the configuration in force', () => {
  const s = new ConfigStore();
  const u = s.update(files({ 'm.yaml': 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: m, namespace: default }\nspec:\n  hosts: [ratings]\n  http: [{ match: [{ statPrefix: x }], route: [{ destination: { host: ratings } }] }]\n' }));
  assert.deepEqual(u.rejected, []);
  assert.equal(s.config.resources.length, 1);
  assert.deepEqual(s.config.diagnostics.map((d) => [d.code, d.level, d.position?.file]), [['TRL1005', 'warning', 'm.yaml']]);
});
