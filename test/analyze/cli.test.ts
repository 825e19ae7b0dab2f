/**
 * `trellis analyze` as a real process: exit codes, text grouping and colour,
 * JSON, suppressions (flag, file, default file, wildcards, counts),
 * --analyzer and --list-analyzers, the bundled example, and --live against a
 * control plane the test starts. Counts that depend on which analyzers exist
 * are asserted with `--analyzer schema.validation`; other tests assert what
 * must be present.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzers } from '../../src/analyze/registry.js';
import { ROOT } from '../helpers/mesh.js';
import { startControlPlane } from '../controlplane/helpers.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const ESC = '\x1b[';

interface Run { code: number | null; out: string; err: string }

function trellis(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const env = { ...process.env, ...opts.env };
  delete env.NO_COLOR;
  if (opts.env?.NO_COLOR !== undefined) env.NO_COLOR = opts.env.NO_COLOR;
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: 30_000, env });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The same, without blocking this process's event loop (needed while it serves a control plane). */
function trellisAsync(args: string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'trellis-analyze-'));
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

// One error (TRL1002, an unknown field), one warning (TRL1101, a second definition of a host)
// and one info (TRL1007, a Trellis-only field), all from the load step.
const SHOP = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: shop }
spec:
  hosts: [web]
  http:
  - route: [{ destination: { host: web } }]
    retries: { attemps: 3 }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: callers, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  rules:
  - from: [{ source: { labels: { app: web } } }]
`;
const ALIAS = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web-alias, namespace: shop }
spec:
  hosts: [web.shop.svc.cluster.local]
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  resolution: DNS
`;
const SCHEMA = ['--analyzer', 'schema.validation'];

test('the bundled example analyses clean: exit 0 by default and with --fail-on warning; its one info (TRL1007, source.labels is Trellis-only) fails --fail-on info', () => {
  const r = trellis(['analyze', 'examples/bank']);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^12 resources, \d+ analyzers: 0 errors, 0 warnings, 1 info$/m);
  assert.match(r.out, /^AuthorizationPolicy bank\/debit-credit-callers$/m);
  assert.match(r.out, /^ {2}examples\/bank\/security\.yaml:27:9 {2}info {2}TRL1007 {2}spec\.rules\[0\]\.from\[0\]\.source\.labels {2}\[schema\.validation\]$/m);
  assert.equal(trellis(['analyze', 'examples/bank', '--fail-on', 'warning']).code, 0);
  assert.equal(trellis(['analyze', 'examples/bank', '--fail-on', 'info']).code, 1);
  const j = JSON.parse(trellis(['analyze', 'examples/bank', '-o', 'json']).out);
  assert.deepEqual(j.findings.map((f: { code: string }) => f.code), ['TRL1007'], 'every analyzer that exists finds nothing in the example');
});

test('--fail-on: exit 1 when a finding at or above the level remains, 0 otherwise; none never fails', () => {
  const d = dir({ 'shop.yaml': SHOP, 'extra.yaml': ALIAS });
  assert.equal(trellis(['analyze', d, ...SCHEMA]).code, 1);
  assert.equal(trellis(['analyze', d, ...SCHEMA, '--fail-on', 'none']).code, 0);
  const warnOnly = dir({ 'extra.yaml': ALIAS, 'svc.yaml': SHOP.split('---')[0]! });
  assert.equal(trellis(['analyze', warnOnly, ...SCHEMA]).code, 0, 'a warning does not fail --fail-on error');
  assert.equal(trellis(['analyze', warnOnly, ...SCHEMA, '--fail-on', 'warning']).code, 1);
  assert.equal(trellis(['analyze', warnOnly, ...SCHEMA, '--fail-on', 'info']).code, 1);
  // Suppressing the only error makes --fail-on error pass.
  assert.equal(trellis(['analyze', d, ...SCHEMA, '--suppress', 'TRL1002=VirtualService shop/web']).code, 0);
});

test('usage errors and unreadable input exit 2 with a message that says what to do', () => {
  const cases: [string[], RegExp][] = [
    [['analyze', '/nonexistent/trellis-config'], /cannot read \/nonexistent\/trellis-config: ENOENT/],
    [['analyze'], /name the YAML files or directories to analyse.*or analyse the running mesh with --live/],
    [['analyze', 'examples/bank', '--bogus'], /unknown option '--bogus'/],
    [['analyze', 'examples/bank', '-o', 'xml'], /argument 'xml' is invalid/],
    [['analyze', 'examples/bank', '--fail-on', 'fatal'], /argument 'fatal' is invalid/],
    [['analyze', 'examples/bank', '--analyzer', 'nope.*'], /no analyzer "nope\.\*"; run "trellis analyze --list-analyzers"/],
    [['analyze', 'examples/bank', '--suppress', 'TRL9999=Service a/b'], /there is no message code TRL9999; run "trellis codes"/],
    [['analyze', 'examples/bank', '--suppressions', '/nonexistent/s.yaml'], /cannot read suppression file \/nonexistent\/s\.yaml: ENOENT/],
    [['analyze', '--list-analyzers', '-o', 'sarif'], /--list-analyzers prints text, json or markdown/],
    [['analyze', 'examples/bank', '--admin', '127.0.0.1:1'], /--admin and --state-dir go with --live/],
  ];
  for (const [args, message] of cases) {
    const r = trellis(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message, args.join(' '));
    assert.equal(r.out, '', `${args.join(' ')} prints no report`);
  }
});

test('text output groups findings by resource, in file order, with file:line:col, level, code, field and message; no colour when stdout is not a terminal', () => {
  const d = dir({ 'shop.yaml': SHOP, 'extra.yaml': ALIAS });
  const r = trellis(['analyze', '.', ...SCHEMA], { cwd: d });
  assert.equal(r.out, [
    'ServiceEntry shop/web-alias',
    '  extra.yaml:1:1  warning  TRL1101  [schema.validation]',
    '      service host web.shop.svc.cluster.local is defined by Service shop/web and again by ServiceEntry shop/web-alias; the registry keeps the first and ignores this one',
    '',
    'VirtualService shop/web',
    '  shop.yaml:15:16  error  TRL1002  spec.http[0].retries.attemps  [schema.validation]',
    '      unknown field "spec.http[0].retries.attemps"',
    '',
    'AuthorizationPolicy shop/callers',
    '  shop.yaml:23:24  info  TRL1007  spec.rules[0].from[0].source.labels  [schema.validation]',
    '      field "spec.rules[0].from[0].source.labels" is a Trellis extension and is not understood by Istio',
    '',
    '3 resources, 1 analyzer: 1 error, 1 warning, 1 info',
    '',
  ].join('\n'));
  assert.ok(!r.out.includes(ESC));
});

test('colour on a terminal, and none there when NO_COLOR is set', { skip: existsSync('/usr/bin/script') ? false : 'needs script(1) from util-linux for a pseudo-terminal' }, () => {
  const d = dir({ 'shop.yaml': SHOP });
  const inTty = (env: NodeJS.ProcessEnv) => spawnSync('/usr/bin/script', ['-qec', `"${process.execPath}" "${CLI}" analyze . --analyzer schema.validation`, '/dev/null'], { cwd: d, encoding: 'utf8', timeout: 30_000, env }).stdout;
  const base = { ...process.env };
  delete base.NO_COLOR;
  const coloured = inTty(base);
  assert.match(coloured, /\x1b\[31merror\x1b\[39m/, 'errors in red');
  assert.match(coloured, /\x1b\[1mVirtualService shop\/web\x1b\[22m/, 'resource headers in bold');
  const plain = inTty({ ...base, NO_COLOR: '1' });
  assert.match(plain, /VirtualService shop\/web/);
  assert.ok(!plain.includes(ESC), plain);
});

test('-o json has the documented shape (trellis.dev/analyze/v1) and the exit status it reports', () => {
  const d = dir({ 'shop.yaml': SHOP, 'extra.yaml': ALIAS });
  const r = trellis(['analyze', '.', ...SCHEMA, '-o', 'json', '--suppress', 'TRL1007'], { cwd: d });
  assert.equal(r.code, 1);
  const j = JSON.parse(r.out);
  assert.deepEqual(Object.keys(j), ['schema', 'input', 'analyzers', 'resources', 'failOn', 'failed', 'summary', 'findings', 'suppressed', 'unusedSuppressions']);
  assert.equal(j.schema, 'trellis.dev/analyze/v1');
  assert.deepEqual(j.input, { paths: ['.'] });
  assert.deepEqual(j.analyzers, ['schema.validation']);
  assert.equal(j.resources, 3);
  assert.equal(j.failOn, 'error');
  assert.equal(j.failed, true);
  assert.deepEqual(j.summary, { errors: 1, warnings: 1, info: 0, suppressed: 1 });
  assert.deepEqual(j.findings[1], {
    code: 'TRL1002', name: 'UnknownField', level: 'error', message: 'unknown field "spec.http[0].retries.attemps"', analyzer: 'schema.validation',
    resource: 'VirtualService shop/web', file: 'shop.yaml', line: 15, column: 16, field: 'spec.http[0].retries.attemps',
  });
  assert.equal(j.findings[0].field, null, 'absent fields are null, not missing');
  assert.deepEqual(j.suppressed.map((s: { code: string; suppressedBy: unknown }) => [s.code, s.suppressedBy]), [['TRL1007', { code: 'TRL1007', resource: '*', reason: null, source: '--suppress TRL1007' }]]);
  const ok = JSON.parse(trellis(['analyze', '.', ...SCHEMA, '-o', 'json', '--fail-on', 'none'], { cwd: d }).out);
  assert.equal(ok.failed, false);
});

test('suppressions: by flag with wildcards, by file with reasons, from .trellis-analyze.yaml in the working directory; counted, and unused rules named', () => {
  const d = dir({ 'shop.yaml': SHOP, 'extra.yaml': ALIAS });
  const json = (args: string[], cwd = d) => {
    const r = trellis(['analyze', '.', ...SCHEMA, '-o', 'json', ...args], { cwd });
    return { ...JSON.parse(r.out), code: r.code, err: r.err };
  };
  // Wildcards in the resource and the code; IST0nnn names TRL0nnn.
  let j = json(['--suppress', 'TRL10*=* shop/*', '--suppress', 'IST0106=Gateway *']);
  assert.deepEqual(j.findings.map((f: { code: string }) => f.code), ['TRL1101']);
  assert.deepEqual(j.suppressed.map((f: { code: string }) => f.code).sort(), ['TRL1002', 'TRL1007']);
  assert.equal(j.code, 0);
  assert.match(j.err, /suppression TRL0106=Gateway \* \(--suppress IST0106=Gateway \*\) matched no finding/);
  // A pattern that does not match the resource suppresses nothing.
  j = json(['--suppress', 'TRL1002=VirtualService other/*']);
  assert.equal(j.summary.suppressed, 0);

  writeFileSync(join(d, 'accepted.yaml.txt'), 'suppressions:\n- code: TRL1007\n  resource: AuthorizationPolicy shop/callers\n  reason: we run Trellis only\n- code: TRL1101\n  resource: "ServiceEntry shop/*"\n  reason: the alias is deliberate\n');
  j = json(['--suppressions', 'accepted.yaml.txt']);
  assert.deepEqual(j.findings.map((f: { code: string }) => f.code), ['TRL1002']);
  assert.deepEqual(j.suppressed.map((f: { suppressedBy: { reason: string; source: string } }) => [f.suppressedBy.reason, f.suppressedBy.source]), [
    ['the alias is deliberate', 'accepted.yaml.txt:5'],
    ['we run Trellis only', 'accepted.yaml.txt:2'],
  ]);
  const text = trellis(['analyze', '.', ...SCHEMA, '--suppressions', 'accepted.yaml.txt'], { cwd: d });
  assert.match(text.out, /^3 resources, 1 analyzer: 1 error, 0 warnings, 0 info \(2 suppressed\)$/m);

  // The default file, found in the working directory; a plain list is accepted too.
  const withDefault = dir({ 'shop.yaml': SHOP, '.trellis-analyze.yaml': '- { code: TRL1002, resource: VirtualService shop/web, reason: fixed next sprint }\n' });
  j = json([], withDefault);
  assert.equal(j.code, 0);
  assert.deepEqual(j.suppressed.map((f: { suppressedBy: { source: string } }) => f.suppressedBy.source), ['.trellis-analyze.yaml:1']);
  assert.equal(json([], d).summary.suppressed, 0, 'no default file, nothing suppressed');
});

test('a suppression file with a mistake is a usage error naming file:line:col', () => {
  const cases: [string, RegExp][] = [
    ['suppressions:\n- code: TRL1002\n  resorce: VirtualService shop/web\n', /s\.yaml:3:3: unknown key "resorce"; a suppression has code, resource and reason/],
    ['- code: TRL1002\n', /s\.yaml:1:3: a suppression needs a resource/],
    ['supressions: []\n', /s\.yaml:1:1: unknown key "supressions"/],
    ['- code: [a]\n  resource: "*"\n', /s\.yaml:1:9: code must be a string/],
    ['- { code: TRL1002, resource: x\n', /s\.yaml:\d+:\d+: YAML syntax error/],
  ];
  for (const [text, message] of cases) {
    const d = dir({ 's.yaml': text });
    const r = trellis(['analyze', ROOT + '/examples/bank', '--suppressions', 's.yaml'], { cwd: d });
    assert.equal(r.code, 2, text);
    assert.match(r.err, message, text);
  }
});

test('--list-analyzers names schema.validation and every analyzer of the registry, with their codes; -o json and markdown', () => {
  const r = trellis(['analyze', '--list-analyzers']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^schema\.validation\n {4}Loads every file.*\n {4}reads: \*\n {4}codes: .*TRL1002 UnknownField.*TRL1007 NotPortable/m);
  for (const a of analyzers) assert.match(r.out, new RegExp(`^${a.name.replace(/\./g, '\\.')}$`, 'm'), a.name);
  const j = JSON.parse(trellis(['analyze', '--list-analyzers', '-o', 'json']).out) as { name: string; messages: { code: string }[] }[];
  assert.deepEqual(j.map((a) => a.name), ['schema.validation', ...analyzers.map((a) => a.name)]);
  assert.ok(j[0]!.messages.some((m) => m.code === 'TRL0106'));
  const md = trellis(['analyze', '--list-analyzers', '-o', 'markdown']).out;
  assert.match(md, /^\| `schema\.validation` \| Loads every file/m);
  assert.match(md, /^\| <a id="trl1002"><\/a>TRL1002 \| error \| UnknownField \| /m);
});

test('--analyzer runs only the analyzers named (comma-separated, repeated, wildcards)', () => {
  const d = dir({ 'shop.yaml': SHOP });
  const ran = (args: string[]) => JSON.parse(trellis(['analyze', d, '-o', 'json', '--fail-on', 'none', ...args]).out);
  assert.deepEqual(ran(SCHEMA).analyzers, ['schema.validation']);
  const all = ran([]);
  assert.deepEqual(all.analyzers, ['schema.validation', ...analyzers.map((a) => a.name)]);
  if (analyzers.length) {
    const first = analyzers[0]!.name;
    const j = ran(['--analyzer', `${first},schema.validation`]);
    assert.deepEqual(j.analyzers, ['schema.validation', first]);
    const prefix = first.split('.')[0]!;
    const only = ran(['--analyzer', `${prefix}.*`]);
    assert.deepEqual(only.analyzers, analyzers.filter((a) => a.name.startsWith(`${prefix}.`)).map((a) => a.name));
    assert.ok(!only.findings.some((f: { analyzer: string }) => f.analyzer === 'schema.validation'), 'schema.validation not named: its findings are not reported');
  }
});

test('--live: no mesh running, or a control plane that does not answer, exits 2 and says what to do', async () => {
  const empty = dir({});
  const r = await trellisAsync(['analyze', '--live', '--state-dir', empty]);
  assert.equal(r.code, 2);
  assert.match(r.err, /no mesh is running: there is no mesh\.json in .*start one with `trellis up <dir>`/);
  const closed = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const r2 = await trellisAsync(['analyze', '--live', '--admin', `http://127.0.0.1:${closed}`]);
  assert.equal(r2.code, 2);
  assert.match(r2.err, new RegExp(`the control plane of --admin 127\\.0\\.0\\.1:${closed} does not answer on http://127\\.0\\.0\\.1:${closed}/config/files: .*is the mesh running\\?`));
});

test('--live against a real control plane: the files in force, its registry, its rejected edits; local files laid over it', async () => {
  const inForce = SHOP.replace('    retries: { attemps: 3 }\n', '');
  const d = dir({ 'shop.yaml': inForce, 'extra.yaml': ALIAS });
  const t = await startControlPlane(d);
  const places = (r: Run) => (JSON.parse(r.out) as { findings: { code: string; file: string; line: number; column: number }[] }).findings.map((f) => [f.code, f.file, f.line, f.column]);
  try {
    const r = await trellisAsync(['analyze', '--live', '--admin', `http://${t.admin}/`, '-o', 'json', ...SCHEMA]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out).input, { paths: [], live: t.admin });
    // TRL1101 comes from the control plane's registry (GET /config/errors), TRL1007 from the files in force, once each.
    assert.deepEqual(places(r), [['TRL1101', 'extra.yaml', 1, 1], ['TRL1007', 'shop.yaml', 22, 24]]);
    assert.equal(JSON.parse(r.out).resources, 4);

    // An edit the control plane rejects: its last good version (none) stays in force, the error is a finding.
    writeFileSync(join(d, 'broken.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: bad, namespace: shop }\nspec:\n  hosts: [web]\n  http: [{ route: [{ destination: { host: web } }] }]\n  htp: []\n');
    t.cp.reload();
    const broken = await trellisAsync(['analyze', '--live', '--admin', t.admin, '-o', 'json', ...SCHEMA]);
    assert.equal(broken.code, 1, broken.err);
    assert.deepEqual(places(broken), [['TRL1002', 'broken.yaml', 7, 3], ['TRL1101', 'extra.yaml', 1, 1], ['TRL1007', 'shop.yaml', 22, 24]]);

    // A pending change laid over the live configuration: its AuthorizationPolicy replaces the live one
    // (whose TRL1007 goes with it), its new VirtualService brings its own mistake.
    const change = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: callers, namespace: shop }
spec:
  selector: { matchLabels: { app: web } }
  rules:
  - to: [{ operation: { methods: [GET] } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web-next, namespace: shop }
spec:
  hosts: [web]
  http: [{ route: [{ destination: { host: web } }] }]
  htp: []
`;
    const local = dir({ 'change.yaml': change });
    const o = await trellisAsync(['analyze', '--live', '--admin', t.admin, '-o', 'json', ...SCHEMA, 'change.yaml'], local);
    assert.equal(o.code, 1, o.err);
    assert.deepEqual(JSON.parse(o.out).input, { paths: ['change.yaml'], live: t.admin });
    assert.deepEqual(places(o), [['TRL1002', 'broken.yaml', 7, 3], ['TRL1002', 'change.yaml', 15, 3], ['TRL1101', 'extra.yaml', 1, 1]]);

    // Text output and every analyzer, as a person runs it.
    const text = await trellisAsync(['analyze', '--live', '--admin', t.admin, '--fail-on', 'none']);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^VirtualService shop\/bad\n {2}broken\.yaml:7:3 {2}error {2}TRL1002 {2}spec\.htp {2}\[schema\.validation\]$/m);
  } finally {
    await t.cp.close();
  }
});

test('--live against a control plane older than --live (no /config/files) says so and what to do instead', async () => {
  const server = createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `no such page ${req.url}`, pages: ['/ready', '/services', '/config/errors'] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const admin = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const r = await trellisAsync(['analyze', '--live', '--admin', admin]);
    assert.equal(r.code, 2);
    assert.match(r.err, /cannot serve its configuration: GET \/config\/files answered 404 \(it is older than trellis analyze --live\)\. Analyse the configuration directory it was started with instead: trellis analyze <dir>/);
    assert.equal(r.out, '');
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('trellis analyze --help explains outputs, suppressions, exit codes and --live', () => {
  const r = trellis(['analyze', '--help']);
  assert.equal(r.code, 0);
  for (const s of [/Usage: trellis analyze \[options\] \[paths\.\.\.\]/, /--fail-on <level>/, /--suppress <CODE=RESOURCE>/, /--suppressions <file>/, /\.trellis-analyze\.yaml/, /--list-analyzers/, /--analyzer <names>/, /--live/, /--admin <url>/, /Exit status:\n {2}0 .*\n {2}1 .*\n {2}2 /, /sarif +SARIF 2\.1\.0/]) assert.match(r.out, s);
  assert.match(trellis(['--help']).out, /\banalyze\b/);
});
