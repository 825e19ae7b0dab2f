/**
 * `loadConfig` on files and directories: which files it reads and in what
 * order, names in messages, duplicates across files, paths it cannot read.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, yamlFiles } from '../../src/api/load.js';
import { at, lines, namespaceDoc as ns, where } from './load-helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'trellis-loader-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes `files` (relative path → text) below a new directory `name` in the temporary directory. */
function tree(name: string, files: Record<string, string>): string {
  const root = join(tmp, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

test('loadConfig on a directory: .yaml and .yml files, recursively, in sorted order; hidden entries and other files skipped', () => {
  const root = tree('dir', {
    'b.yml': ns('b'),
    'a.yaml': ns('a'),
    'sub/c.YAML': ns('c'),
    'sub/deeper/d.yaml': ns('d'),
    '.hidden.yaml': 'this: [is not read',
    '.git/config.yaml': 'nor: [this',
    'sub/.cache/e.yaml': 'nor: [this',
    'node_modules/pkg/f.yaml': 'nor: [this',
    'README.md': '# not YAML',
    'notes.txt': 'kind: Namespace',
  });
  assert.deepEqual(yamlFiles(root).map((f) => f.slice(root.length + 1)), ['a.yaml', 'b.yml', 'sub/c.YAML', 'sub/deeper/d.yaml']);
  const config = loadConfig([root], { cwd: tmp });
  assert.deepEqual(config.diagnostics, []);
  assert.deepEqual(config.resources.map((x) => [x.ref, x.position]), [
    ['Namespace a', at('dir/a.yaml', 1, 1)],
    ['Namespace b', at('dir/b.yml', 1, 1)],
    ['Namespace c', at('dir/sub/c.YAML', 1, 1)],
    ['Namespace d', at('dir/sub/deeper/d.yaml', 1, 1)],
  ]);
});

test('a file named directly is read whatever its extension; names outside cwd are shown in full', () => {
  const root = tree('direct', { 'config.txt': ns('a') });
  const config = loadConfig([join(root, 'config.txt')], { cwd: join(tmp, 'elsewhere') });
  assert.deepEqual(config.resources.map((x) => x.position), [at(join(root, 'config.txt'), 1, 1)]);
});

test('the same resource in two files is TRL1006 at the second, naming the first file and line; the first is kept', () => {
  const root = tree('dup', {
    'a.yaml': lines('# first', 'apiVersion: v1', 'kind: ServiceAccount', 'metadata: {name: reviews, namespace: bank}'),
    'b.yaml': lines('apiVersion: v1', 'kind: Namespace', 'metadata: {name: bank}', '---', 'apiVersion: v1', 'kind: ServiceAccount', 'metadata: {name: reviews, namespace: bank}'),
  });
  const config = loadConfig([root], { cwd: tmp });
  assert.deepEqual(config.diagnostics.map(where), [
    { code: 'TRL1006', field: undefined, resource: 'ServiceAccount bank/reviews', position: at('dup/b.yaml', 5, 1) },
  ]);
  assert.equal(config.diagnostics[0]!.message, 'ServiceAccount bank/reviews is defined twice; first at dup/a.yaml:2');
  assert.deepEqual(config.resources.map((x) => [x.ref, x.position.file]), [['ServiceAccount bank/reviews', 'dup/a.yaml'], ['Namespace bank', 'dup/b.yaml']]);
});

test('a path that cannot be read is TRL1008 naming it and why; the other paths still load', () => {
  const root = tree('readable', { 'a.yaml': ns('a') });
  const config = loadConfig([join(tmp, 'missing'), root], { cwd: tmp });
  assert.deepEqual(config.diagnostics.map(where), [{ code: 'TRL1008', field: undefined, position: undefined }]);
  assert.equal(config.diagnostics[0]!.message, 'cannot read missing: ENOENT');
  assert.deepEqual(config.resources.map((x) => x.ref), ['Namespace a']);
});

test('a dangling link in a directory is TRL1008 for that entry alone; the rest of the directory loads', () => {
  const root = tree('links', { 'a.yaml': ns('a'), 'c.yaml': ns('c') });
  symlinkSync(join(tmp, 'nowhere.yaml'), join(root, 'b.yaml'));
  symlinkSync(join(tmp, 'nowhere'), join(root, 'gone'));
  const config = loadConfig([root], { cwd: tmp });
  assert.deepEqual(config.diagnostics.map(where), [{ code: 'TRL1008', field: undefined, position: undefined }]);
  assert.equal(config.diagnostics[0]!.message, 'cannot read links/b.yaml: ENOENT');
  assert.deepEqual(config.resources.map((x) => x.ref), ['Namespace a', 'Namespace c']);
});

