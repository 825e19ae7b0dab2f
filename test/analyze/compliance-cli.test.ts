/**
 * `trellis analyze --compliance` as a real process: the bundled example
 * (what it finds, and the exit status), -o json and -o sarif, --analyzer
 * within the compliance set, --list-analyzers --compliance (and that
 * docs/compliance.md holds its markdown), usage errors, and --live against
 * a control plane the test starts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { complianceAnalyzers } from '../../src/analyze/compliance/index.js';
import { analyzers } from '../../src/analyze/registry.js';
import { ROOT } from '../helpers/mesh.js';
import { startControlPlane } from '../controlplane/helpers.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const NAMES = complianceAnalyzers.map((a) => a.name);

interface Run { code: number | null; out: string; err: string }

function trellis(args: string[], cwd = ROOT): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function trellisAsync(args: string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }); });
  });
}

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'trellis-compliance-'));
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

interface JsonFinding { code: string; analyzer: string; resource: string | null; file: string | null; line: number | null; field: string | null }

test('the bank example: --compliance runs schema.validation and the compliance analyzers only, finds what the bank lacks, exits 1', () => {
  const r = trellis(['analyze', '--compliance', 'examples/bank', '-o', 'json']);
  assert.equal(r.code, 1, r.err);
  const j = JSON.parse(r.out) as { analyzers: string[]; findings: JsonFinding[]; summary: { errors: number } };
  assert.deepEqual(j.analyzers, ['schema.validation', ...NAMES]);
  const codes = (c: string) => j.findings.filter((f) => f.code === c).map((f) => `${f.resource} ${f.field ?? ''}`).sort();
  assert.deepEqual(codes('TRL1503'), ['App bank spec.services[0]', 'App bank spec.services[1]', 'App bank spec.services[2]', 'App bank spec.services[4]', 'DestinationRule bank/accounts spec.subsets[1]']);
  assert.deepEqual(codes('TRL1508'), ['App bank spec.services[0]'], 'frontend has no ALLOW policy');
  assert.deepEqual(codes('TRL1512'), ['App bank spec.services[0]', 'App bank spec.services[1]', 'App bank spec.services[2]', 'App bank spec.services[4]', 'VirtualService bank/accounts spec.http[0]', 'VirtualService bank/frontend spec.http[0]']);
  for (const c of ['TRL1501', 'TRL1502', 'TRL1505', 'TRL1507', 'TRL1510', 'TRL1511']) assert.deepEqual(codes(c), [], `${c}: the bank has two replicas over two zones, STRICT mTLS and REGISTRY_ONLY`);
  assert.equal(j.summary.errors, 12);
  assert.ok(j.findings.every((f) => f.file && f.line), 'every finding has a file and line');
  // Without --compliance none of them runs.
  const plain = JSON.parse(trellis(['analyze', 'examples/bank', '-o', 'json']).out) as { analyzers: string[] };
  assert.ok(!plain.analyzers.some((a) => a.startsWith('compliance.')));
});

test('--compliance -o sarif has the compliance codes as rules and the findings on their lines', () => {
  const r = trellis(['analyze', '--compliance', 'examples/bank', '-o', 'sarif', '--fail-on', 'none']);
  assert.equal(r.code, 0, r.err);
  const run = JSON.parse(r.out).runs[0];
  const rules = run.tool.driver.rules.map((x: { id: string }) => x.id);
  for (const code of ['TRL1501', 'TRL1503', 'TRL1506', 'TRL1512', 'TRL1518']) assert.ok(rules.includes(code), code);
  assert.ok(!rules.includes('TRL0101'), 'no configuration analyzer ran');
  const result = run.results.find((x: { ruleId: string }) => x.ruleId === 'TRL1508');
  assert.equal(result.locations[0].physicalLocation.artifactLocation.uri, 'examples/bank/app.yaml');
  assert.equal(result.locations[0].physicalLocation.region.startLine, 13);
});

test('a CompliancePolicy changes what is checked; --analyzer picks among the compliance analyzers; a compliant mesh exits 0', () => {
  const mesh = `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: shop }
spec:
  namespace: shop
  services:
  - name: web
    ports: [{ name: http, port: 8080 }]
    command: [node, web.js]
    replicas: 1
    placement: [{ region: eu, zone: a }]
`;
  const policy = `apiVersion: trellis.dev/v1alpha1
kind: CompliancePolicy
metadata: { name: lax, namespace: shop }
spec:
  redundancy: { enabled: false }
  highAvailability: { enabled: false }
`;
  const d = dir({ 'app.yaml': mesh });
  const r = trellis(['analyze', '--compliance', '.', '--analyzer', 'compliance.redundancy,compliance.high-availability', '-o', 'json'], d);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.out) as { analyzers: string[]; findings: JsonFinding[] };
  assert.deepEqual(j.analyzers, ['compliance.redundancy', 'compliance.high-availability']);
  assert.deepEqual(j.findings.map((f) => [f.code, f.file, f.line]), [['TRL1502', 'app.yaml', 7], ['TRL1501', 'app.yaml', 10]]);
  writeFileSync(join(d, 'policy.yaml'), policy);
  const ok = trellis(['analyze', '--compliance', '.', '--analyzer', 'compliance.redundancy,compliance.high-availability'], d);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /^2 resources, 2 analyzers: no problems found$/m);
});

test('usage errors: a compliance analyzer without --compliance, a configuration analyzer with it, exit 2 and say which flag', () => {
  const a = trellis(['analyze', 'examples/bank', '--analyzer', 'compliance.redundancy']);
  assert.equal(a.code, 2);
  assert.match(a.err, /no analyzer "compliance\.redundancy"; it is a compliance analyzer: add --compliance/);
  const b = trellis(['analyze', 'examples/bank', '--compliance', '--analyzer', analyzers[0]!.name]);
  assert.equal(b.code, 2);
  assert.match(b.err, /among the compliance analyzers; it is a configuration analyzer: run it without --compliance; run "trellis analyze --list-analyzers --compliance"/);
});

test('--list-analyzers --compliance lists schema.validation and the compliance analyzers; docs/compliance.md holds its markdown', () => {
  const r = trellis(['analyze', '--list-analyzers', '--compliance', '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  const list = JSON.parse(r.out) as { name: string; messages: { code: string }[] }[];
  assert.deepEqual(list.map((a) => a.name), ['schema.validation', ...NAMES]);
  const codes = new Set(list.flatMap((a) => a.messages.map((m) => m.code)).filter((c) => c.startsWith('TRL15')));
  assert.equal(codes.size, 18, 'TRL1501–TRL1518, each reported by one analyzer');
  const text = trellis(['analyze', '--list-analyzers', '--compliance']).out;
  assert.match(text, /^compliance\.partitioning\n {4}No workload of one tenant/m);
  const md = trellis(['analyze', '--list-analyzers', '--compliance', '-o', 'markdown']).out;
  const doc = readFileSync(join(ROOT, 'docs', 'compliance.md'), 'utf8');
  const m = /<!-- compliance:begin[^>]*-->\n([\s\S]*?)<!-- compliance:end -->/.exec(doc);
  assert.ok(m, 'docs/compliance.md has the generated block');
  assert.equal(m[1], md, 'regenerate the block with: node dist/src/cli/main.js analyze --list-analyzers --compliance -o markdown');
});

test('--compliance --live: the running mesh\'s registry and configuration', async () => {
  const mesh = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: web-a, namespace: shop }
spec: { address: 127.0.0.1, labels: { app: web }, locality: eu/a }
`;
  const d = dir({ 'mesh.yaml': mesh });
  const t = await startControlPlane(d);
  try {
    const r = await trellisAsync(['analyze', '--live', '--admin', t.admin, '--compliance', '--analyzer', 'compliance.redundancy,compliance.high-availability', '-o', 'json']);
    assert.equal(r.code, 1, r.err);
    const j = JSON.parse(r.out) as { input: { live: string }; findings: JsonFinding[] };
    assert.equal(j.input.live, t.admin);
    assert.deepEqual(j.findings.map((f) => [f.code, f.resource, f.file, f.line]), [['TRL1501', 'Service shop/web', 'mesh.yaml', 1], ['TRL1502', 'Service shop/web', 'mesh.yaml', 1]]);
    // A second instance in another zone, laid over the live configuration.
    const local = dir({ 'more.yaml': 'apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: { name: web-b, namespace: shop }\nspec: { address: 127.0.0.2, labels: { app: web }, locality: eu/b }\n' });
    const o = await trellisAsync(['analyze', '--live', '--admin', t.admin, '--compliance', '--analyzer', 'compliance.redundancy,compliance.high-availability', '-o', 'json', 'more.yaml'], local);
    const codes = (JSON.parse(o.out) as { findings: JsonFinding[] }).findings.map((f) => f.code);
    assert.deepEqual(codes, ['TRL1503'], 'two instances over two zones; only the missing failover is left');
  } finally {
    await t.cp.close();
  }
});
