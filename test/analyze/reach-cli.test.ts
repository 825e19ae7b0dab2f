/**
 * `trellis reach` as a real process on the bank example: the text grid, the
 * JSON shape, the HTML page (one self-contained document), --from/--to with
 * their exit codes, and --diff between two directories and against a git
 * revision of a temporary repository made here.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const BANK = join(ROOT, 'examples', 'bank');
const work = mkdtempSync(join(tmpdir(), 'trellis-reach-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function trellis(args: string[], cwd = ROOT) {
  const r = spawnSync(process.execPath, [CLI, 'reach', ...args], { cwd, encoding: 'utf8', timeout: 30_000, env: { ...process.env, TMPDIR: join(work, 'tmp') } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
spawnSync('mkdir', ['-p', join(work, 'tmp')]);

/** A copy of the bank where the frontend may only read /balance of accounts, and nobody may reach /admin* of the frontend. */
function changedBank(dir: string): void {
  cpSync(BANK, dir, { recursive: true });
  const file = join(dir, 'security.yaml');
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace('        methods: [GET]\n', '        methods: [GET]\n        paths: [/balance]\n') + `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: frontend-no-admin, namespace: bank }
spec:
  selector: { matchLabels: { app: frontend } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`);
}

test('text: the grid and what each open cell allows, with the deciding policy', () => {
  const r = trellis([BANK]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^Reachability: 8 sources × 5 destinations$/m);
  assert.match(r.out, /^frontend\.bank\s+SOME\s+DENY\s+ALL\s+SOME\s+DENY$/m);
  assert.match(r.out, /^plaintext\s+MTLS\s+MTLS\s+MTLS\s+MTLS\s+MTLS$/m);
  assert.match(r.out, /^ingressgateway\.istio-system\s+ROUTE\s+ROUTE\s+ALL\s+ROUTE\s+ROUTE$/m);
  assert.match(r.out, /^funds-transfer\.bank\s+debit-credit\.bank:8080\s+POST \/credit, \/debit; everything else denied\s+ALLOW bank\/debit-credit-callers rule 0; default deny/m);
  assert.match(r.out, /Rate limits are not evaluated/);
});

test('json: the documented shape, schema trellis.dev/reach/v1', () => {
  const r = trellis([BANK, '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  const m = JSON.parse(r.out);
  assert.equal(m.schema, 'trellis.dev/reach/v1');
  assert.deepEqual(Object.keys(m), ['schema', 'sources', 'destinations', 'cells']);
  assert.equal(m.cells.length, m.sources.length * m.destinations.length);
  assert.deepEqual(m.sources.find((s: { id: string }) => s.id === 'frontend.bank'), { id: 'frontend.bank', kind: 'sidecar', workload: 'frontend', namespace: 'bank', identity: 'spiffe://bank.example/ns/bank/sa/frontend' });
  assert.deepEqual(m.destinations.find((d: { id: string }) => d.id === 'accounts.bank:8080'), { id: 'accounts.bank:8080', service: 'accounts.bank.svc.cluster.local', port: 8080, protocol: 'HTTP', workloads: ['accounts-v1.bank', 'accounts-v2.bank'] });
  const c = m.cells.find((x: { from: string; to: string }) => x.from === 'frontend.bank' && x.to === 'accounts.bank:8080');
  assert.deepEqual(Object.keys(c), ['from', 'to', 'access', 'summary', 'decidedBy', 'probes', 'notes']);
  assert.deepEqual(c.probes.map((p: { method: string; verdict: string; decision: { kind: string; policy?: string } }) => [p.method, p.verdict, p.decision.kind, p.decision.policy]),
    [['GET', 'allowed', 'allow-policy', 'bank/accounts-readers'], ['POST', 'denied', 'default-deny', undefined]]);
});

test('html: one self-contained document with a coloured grid and the deciding policy on hover and click', () => {
  const r = trellis([BANK, '-o', 'html']);
  assert.equal(r.code, 0, r.err);
  const h = r.out;
  assert.match(h, /^<!doctype html>/);
  assert.equal(h.match(/<html/g)?.length, 1);
  assert.match(h, /<\/html>\n$/);
  assert.doesNotMatch(h, /<link|<img|<iframe|\ssrc=|@import|url\(|https?:\/\//i, 'no external asset');
  assert.equal((h.match(/<td class="cell"/g) ?? []).length, 40);
  assert.match(h, /<td class="cell" style="background:#f9a825" title="frontend\.bank → accounts\.bank:8080\nGET \(any path\); everything else denied\ndecided by: ALLOW bank\/accounts-readers rule 0/);
  assert.match(h, /<section id="c\d+" hidden><h2>funds-transfer\.bank → debit-credit\.bank:8080<\/h2>.*ALLOW bank\/debit-credit-callers rule 0/);
  assert.match(h, /addEventListener\('click'/);
});

test('--from/--to METHOD path: yes (exit 0) or no (exit 1), and why', () => {
  const yes = trellis([BANK, '--from', 'frontend', '--to', 'accounts', 'GET', '/balance']);
  assert.equal(yes.code, 0, yes.err);
  assert.equal(yes.out, 'yes: frontend.bank may call accounts.bank:8080 with GET /balance\n  allowed by bank/accounts-readers rule 0\n');
  const no = trellis([BANK, '--from', 'notifications.bank', '--to', 'accounts.bank.svc.cluster.local:8080', 'POST', '/balance']);
  assert.equal(no.code, 1);
  assert.match(no.out, /^no: notifications\.bank may not call accounts\.bank:8080 with POST \/balance\n  no ALLOW policy matched \(default deny: ALLOW policies select the workload, none matched\)\n$/);
  const id = trellis([BANK, '--from', 'spiffe://bank.example/ns/bank/sa/funds-transfer', '--to', 'debit-credit', 'POST', '/debit']);
  assert.equal(id.code, 0, id.out);
  const plain = trellis([BANK, '--from', 'plaintext', '--to', 'frontend', 'GET', '/']);
  assert.equal(plain.code, 1);
  assert.match(plain.out, /PeerAuthentication STRICT on port 8080: plaintext is refused/);
  const json = JSON.parse(trellis([BANK, '--from', 'frontend', '--to', 'funds-transfer', 'POST', '/transfer', '-o', 'json']).out);
  assert.deepEqual([json[0].allowed, json[0].decision.policy, json[0].decision.rule], [true, 'bank/funds-transfer-callers', 0]);
});

test('--from/--to without a request: the cell request by request; unknown names are usage errors (exit 2)', () => {
  const r = trellis([BANK, '--from', 'funds-transfer', '--to', 'debit-credit']);
  assert.equal(r.code, 0);
  assert.match(r.out, /^funds-transfer\.bank → debit-credit\.bank:8080: POST \/credit, \/debit; everything else denied$/m);
  assert.match(r.out, /^ {2}DENIED {2}GET \/debit {2}\(other methods \/debit\): default deny/m);
  assert.equal(trellis([BANK, '--from', 'notifications', '--to', 'debit-credit']).code, 1, 'nothing allowed');
  const bad = trellis([BANK, '--from', 'nobody', '--to', 'accounts', 'GET', '/']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--from nobody: no workload, service or identity of that name \(workloads: accounts-v1\.bank/);
  assert.equal(trellis([BANK, 'GET', '/x']).code, 2, 'a request needs --from and --to');
});

test('--diff of two directories: only the changed cells, with the resource that caused each; text and markdown', () => {
  const next = join(work, 'next');
  changedBank(next);
  const r = trellis(['--diff', BANK, next]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^8 of 40 cells change:$/m);
  assert.match(r.out, /^frontend\.bank → accounts\.bank:8080: narrowed\n {2}before: GET \(any path\); everything else denied\n {2}after: {2}GET \/balance; everything else denied\n/m);
  assert.match(r.out, /cause: {2}AuthorizationPolicy bank\/accounts-readers \(modified, security\.yaml:\d+\)/);
  assert.match(r.out, /^notifications\.bank → frontend\.bank:8080: narrowed$/m);
  assert.match(r.out, /GET \/admin\/x +allowed: default allow: no ALLOW policy selects the workload {2}→ {2}denied: DENY bank\/frontend-no-admin rule 0/);
  assert.doesNotMatch(r.out, /funds-transfer\.bank → debit-credit/, 'unchanged cells are not printed');
  assert.doesNotMatch(r.out, /^plaintext/m, 'still refused by mTLS: no change');
  const md = trellis(['--diff', BANK, next, '-o', 'markdown']);
  assert.match(md.out, /^### Reachability: 8 of 40 cells change\n\n\*\*8\*\* narrowed\n/);
  assert.match(md.out, /^\| `frontend\.bank` \| `accounts\.bank:8080` \| narrowed \| GET \(any path\); everything else denied \| GET \/balance; everything else denied \| AuthorizationPolicy bank\/accounts-readers \(modified, security\.yaml:\d+\) \|$/m);
  assert.equal(trellis(['--diff', BANK, next, '--exit-code']).code, 1);
  const same = trellis(['--diff', BANK, BANK, '--exit-code']);
  assert.equal(same.code, 0);
  assert.match(same.out, /^No reachability change \(40 cells compared, 0 resources changed\)\.$/m);
});

test('--diff against git revisions of a temporary repository; the temporary checkouts are removed', () => {
  const repo = join(work, 'repo');
  cpSync(BANK, join(repo, 'mesh'), { recursive: true });
  const git = (...args: string[]) => {
    const r = spawnSync('git', args, { cwd: repo, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  git('init', '-q');
  git('add', '.');
  git('commit', '-q', '-m', 'bank');
  rmSync(join(repo, 'mesh'), { recursive: true });
  changedBank(join(repo, 'mesh'));
  git('commit', '-q', '-am', 'tighten');
  const byRevision = trellis(['--diff', 'HEAD~1:mesh', 'HEAD:mesh'], repo);
  assert.equal(byRevision.code, 0, byRevision.err);
  assert.match(byRevision.out, /^8 of 40 cells change:$/m);
  assert.match(byRevision.out, /AuthorizationPolicy bank\/frontend-no-admin \(added, security\.yaml:\d+\)/);
  // git:REV takes the other side's directory: the first commit against the working tree.
  const vsTree = trellis(['--diff', 'git:HEAD~1', 'mesh', '-o', 'markdown'], repo);
  assert.equal(vsTree.code, 0, vsTree.err);
  assert.match(vsTree.out, /^### Reachability: 8 of 40 cells change/);
  assert.deepEqual(trellis(['--diff', 'git:HEAD', 'mesh', '--exit-code'], repo).code, 0);
  const bad = trellis(['--diff', 'nosuchrev:mesh', 'mesh'], repo);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /git rev-parse --verify/);
  assert.deepEqual(readdirSync(join(work, 'tmp')).filter((n) => n.startsWith('trellis-reach-')), [], 'temporary checkouts removed');
});

test('--help explains the matrix, the question, the diff and the exit codes', () => {
  const r = spawnSync(process.execPath, [CLI, 'reach', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const s of ['--from <A>', '--diff', 'git:REV', 'REV:path', 'Exit status:', 'trellis.dev/reach/v1', 'self-contained', 'Rate limits'.toLowerCase()]) assert.ok(r.stdout.toLowerCase().includes(s.toLowerCase()), s);
});
