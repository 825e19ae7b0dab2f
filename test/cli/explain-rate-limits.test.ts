/**
 * `trellis explain` names the rate limits a request would meet, running the
 * real CLI on a config dir: the destination's inbound limits (with the
 * bucket each takes a token from), the caller's own outbound ones when a
 * policy is enforced InboundAndOutbound, in the text and the JSON output;
 * and none for a request no limit selects.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/mesh.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const WEB = 'cluster.local/ns/bank/sa/web';

const APP = `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: bank }
spec:
  namespace: bank
  services:
  - name: ledger
    ports: [{ name: http, port: 8080 }]
    command: [ledger]
  - name: audit
    ports: [{ name: http, port: 8080 }]
    command: [audit]
  - name: web
    ports: [{ name: http, port: 8080 }]
    workloads: [{ name: web, labels: { tier: front }, command: [web] }]
  - name: batch
    ports: [{ name: http, port: 8080 }]
    command: [batch]
`;

const policy = (enforce: string) => `apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ledger-limits, namespace: bank }
spec:
  targetRef: { kind: Service, name: ledger }
  enforce: ${enforce}
  limits:
  - name: per-caller
    rate: { requests: 20, per: 1s, burst: 40 }
  - name: front-writes
    by: All
    callers: { labels: { tier: front } }
    match: [{ methods: [POST], paths: [/transfer*] }]
    quota: { requests: 100, per: 1m }
`;

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function configDir(enforce: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-explain-rl-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'app.yaml'), APP);
  writeFileSync(join(dir, 'limits.yaml'), policy(enforce));
  return dir;
}

function explain(dir: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'explain', dir, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

interface JsonLimit { side: string; service: string; at: string; policy: string; limit: string; scope: string; key: string; description: string; rule: { by: string } }

test('explain names the destination\'s inbound limits and their buckets, in text and JSON', () => {
  const dir = configDir('Inbound');
  const text = explain(dir, '--from', 'web', 'POST', 'http://ledger:8080/transfer/7?x=1');
  const rows = text.split('\n').filter((l) => /^\s+ratelimit\s/.test(l));
  assert.equal(rows.length, 2, text);
  assert.match(rows[0]!, new RegExp(`bank/ledger-limits limit per-caller: 20 per 1000ms \\(burst 40\\), local, bucket of caller ${WEB}\\s+\\(inbound ledger\\.bank\\)`));
  assert.match(rows[1]!, /bank\/ledger-limits limit front-writes: quota of 100 per 60000ms window, local, one bucket for all callers\s+\(inbound ledger\.bank\)/);
  const doc = JSON.parse(explain(dir, '--from', 'web', 'POST', 'http://ledger:8080/transfer/7', '-o', 'json')) as { rateLimits: JsonLimit[] };
  assert.deepEqual(doc.rateLimits.map((l) => [l.side, l.service, l.at, l.policy, l.limit, l.key]), [
    ['inbound', 'ledger.bank.svc.cluster.local', 'ledger.bank', 'bank/ledger-limits', 'per-caller', WEB],
    ['inbound', 'ledger.bank.svc.cluster.local', 'ledger.bank', 'bank/ledger-limits', 'front-writes', ''],
  ]);
  assert.equal(doc.rateLimits[1]!.rule.by, 'all');
});

test('explain says when no limit applies: another caller\'s GET misses the group\'s limit, another service has none', () => {
  const dir = configDir('Inbound');
  const batch = JSON.parse(explain(dir, '--from', 'batch', 'GET', 'http://ledger:8080/transfer/7', '-o', 'json')) as { rateLimits: JsonLimit[] };
  assert.deepEqual(batch.rateLimits.map((l) => l.limit), ['per-caller'], 'batch is not in the front group');
  const text = explain(dir, '--from', 'web', 'GET', 'http://audit:8080/');
  assert.match(text, /^\s+ratelimit\s+none applies$/m);
  const doc = JSON.parse(explain(dir, '--from', 'web', 'GET', 'http://audit:8080/', '-o', 'json')) as { rateLimits: JsonLimit[] };
  assert.deepEqual(doc.rateLimits, []);
});

test('with enforce: InboundAndOutbound explain also names the limits the caller\'s own sidecar applies', () => {
  const dir = configDir('InboundAndOutbound');
  const doc = JSON.parse(explain(dir, '--from', 'web', 'POST', 'http://ledger:8080/transfer', '-o', 'json')) as { rateLimits: JsonLimit[] };
  assert.deepEqual(doc.rateLimits.map((l) => [l.side, l.at, l.limit, l.key]), [
    ['outbound', 'web.bank', 'per-caller', WEB],
    ['outbound', 'web.bank', 'front-writes', ''],
    ['inbound', 'ledger.bank', 'per-caller', WEB],
    ['inbound', 'ledger.bank', 'front-writes', ''],
  ]);
  const text = explain(dir, '--from', 'web', 'POST', 'http://ledger:8080/transfer');
  assert.match(text, /ratelimit\s+bank\/ledger-limits limit per-caller: .*, on the caller's side\s+\(outbound, at the caller web\.bank\)/);
  // Negative: batch is outside the group, so its own sidecar applies the per-caller limit only.
  const batch = JSON.parse(explain(dir, '--from', 'batch', 'POST', 'http://ledger:8080/transfer', '-o', 'json')) as { rateLimits: JsonLimit[] };
  assert.deepEqual(batch.rateLimits.filter((l) => l.side === 'outbound').map((l) => l.limit), ['per-caller']);
});
