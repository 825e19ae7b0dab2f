/**
 * The seed's case with real processes: a `trellis control-plane` and
 * `trellis proxy` sidecars for a ledger service and three callers (alice,
 * bob, rogue), each with its own identity over mTLS. A RateLimitPolicy gives
 * every caller 20 requests a second. The rogue calls at 200 a second (ten
 * times its quota) and is held to its limit (± 5 %); alice and bob, at 10 a
 * second, keep their full rate and never see a 429. Then the limit is raised
 * in the configuration while the rogue keeps calling: the new limit is in
 * force within a second, and every request is answered (200 or 429).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { waitFor } from '../controlplane/helpers.js';
import { RunningMesh } from './running-mesh.js';

const APP = `
apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: bank }
spec:
  namespace: bank
  services:
  - name: ledger
    ports: [{ name: http, port: 8080 }]
    health: { path: /healthz }
    command: [node, ledger.js]
  - { name: alice, ports: [{ name: http, port: 8080 }], command: [node, a.js] }
  - { name: bob, ports: [{ name: http, port: 8080 }], command: [node, b.js] }
  - { name: rogue, ports: [{ name: http, port: 8080 }], command: [node, r.js] }
`;

const policy = (requests: number) => `apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ledger-callers, namespace: bank }
spec:
  targetRef: { kind: Service, name: ledger }
  limits:
  - name: per-caller
    rate: { requests: ${requests}, per: 1s, burst: 20 }
`;

const CALLERS = ['alice.bank', 'bob.bank', 'rogue.bank'] as const;

interface Answer { status: number; at: number }

describe('the seed: a rogue caller is throttled, the others are not', () => {
  let mesh: RunningMesh;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });

  before(async () => {
    mesh = new RunningMesh({ 'app.yaml': APP, 'limits.yaml': policy(20) });
    await mesh.startControlPlane();
    await Promise.all([
      mesh.startSidecar('ledger.bank', await mesh.startApp('ledger.bank')),
      ...CALLERS.map((c) => mesh.startSidecar(c)),
    ]);
    await mesh.synced(['ledger.bank', ...CALLERS]);
    await waitFor('ledger has its limits', async () => ((await mesh.configDump('ledger.bank'))?.rateLimits?.policies.length ?? 0) > 0 || undefined, 5000);
    // Every caller reaches ledger (endpoints healthy, certificates in place).
    for (const c of CALLERS) await waitFor(`${c} reaches ledger`, async () => (await call(c)).status === 200 || undefined, 10_000, 100);
    await new Promise((r) => setTimeout(r, 1100)); // buckets full again
  });

  after(async () => {
    agent.destroy();
    await mesh?.close();
  });

  const call = (caller: string): Promise<Answer> => new Promise((resolve) => {
    const [host, port] = mesh.sidecars.get(caller)!.outbound.split(':');
    const req = request({ host, port: Number(port), path: 'http://ledger:8080/entries', headers: { host: 'ledger:8080' }, agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, at: performance.now() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, at: performance.now() }));
    req.end();
  });

  /** `count` calls by `caller`, one every `gapMs` (not waiting for answers), bounded by count. */
  const paced = async (caller: string, count: number, gapMs: number, onSent?: (i: number) => void) => {
    const start = performance.now();
    const pending: Promise<Answer>[] = [];
    for (let i = 0; i < count; i++) {
      const wait = start + i * gapMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(call(caller));
      onSent?.(i);
    }
    return { start, end: performance.now(), answers: await Promise.all(pending) };
  };

  test('the rogue at 10x its quota gets its limit (± 5 %); alice and bob get every request through', async () => {
    const [alice, bob, rogue] = await Promise.all([
      paced('alice.bank', 50, 100),
      paced('bob.bank', 50, 100),
      paced('rogue.bank', 1000, 5),
    ]);
    const count = (as: readonly Answer[], s: number) => as.filter((a) => a.status === s).length;
    assert.equal(count(alice.answers, 200), 50, `alice: ${JSON.stringify(tally(alice.answers))}`);
    assert.equal(count(bob.answers, 200), 50, `bob: ${JSON.stringify(tally(bob.answers))}`);
    const ok = count(rogue.answers, 200);
    const expected = 20 + (20 * (rogue.end - rogue.start)) / 1000;
    assert.ok(Math.abs(ok - expected) <= expected * 0.05, `rogue allowed ${ok}, expected ${expected.toFixed(1)} ± 5 %; ${JSON.stringify(tally(rogue.answers))}`);
    assert.equal(ok + count(rogue.answers, 429), 1000, `the rogue got only 200 and 429: ${JSON.stringify(tally(rogue.answers))}`);
  });

  test('a limit raised under load is in force within a second, and no request is lost', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    let changedAt = 0;
    // 100 a second for 4 s; the limit goes from 20 to 50 a second after 1.5 s.
    const run = await paced('rogue.bank', 400, 10, (i) => {
      if (i === 150) { changedAt = performance.now(); mesh.config.write('limits.yaml', policy(50)); }
    });
    const answers = run.answers;
    assert.equal(answers.filter((a) => a.status === 200 || a.status === 429).length, 400, `every request answered 200 or 429: ${JSON.stringify(tally(answers))}`);
    // From a second after the change to the end, the new rate holds.
    const from = changedAt + 1000;
    const to = run.end;
    const ok = answers.filter((a) => a.status === 200 && a.at >= from && a.at <= to).length;
    const expected = (50 * (to - from)) / 1000;
    assert.ok(ok >= expected * 0.85 && ok <= expected * 1.1 + 2, `allowed ${ok} in the ${(to - from).toFixed(0)} ms after the change took a second, expected about ${expected.toFixed(1)} at 50/s`);
    const before = answers.filter((a) => a.status === 200 && a.at < changedAt).length;
    assert.ok(before <= 20 + 20 * 1.6 + 3, `before the change the old limit held: ${before}`);
  });
});

function tally(as: readonly Answer[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const a of as) out[a.status] = (out[a.status] ?? 0) + 1;
  return out;
}
