/** The supervisor with real child processes: logs, restarts with backoff, stop order, SIGKILL after the bound, process groups. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManagedProcess, type ProcessEvent, type ProcessSpec } from '../../src/cli/up/managed-process.js';
import { groupMembers, pidAlive } from '../../src/cli/up/process-group.js';
import { Supervisor } from '../../src/cli/up/supervisor.js';
import { killGroups, liveGroups, PROC, readJournal, tempDir, waitFor } from './helpers.js';

const started: number[] = [];
const stoppers: (() => Promise<unknown>)[] = [];
after(async () => {
  await Promise.allSettled(stoppers.map((s) => s()));
  killGroups(started);
});

function spec(dir: string, name: string, ...behaviour: string[]): ProcessSpec {
  return { name, command: [process.execPath, PROC, name, ...behaviour], cwd: dir, env: { ...process.env, JOURNAL: join(dir, 'journal') }, logFile: join(dir, 'logs', `${name}.log`) };
}

function managed(s: ProcessSpec, policy = { initialDelayMs: 50, maxDelayMs: 400, resetAfterMs: 10_000 }) {
  const events: ProcessEvent[] = [];
  const p = new ManagedProcess(s, policy, (e) => {
    events.push(e);
    if (e.type === 'spawn') started.push(e.pid);
  });
  stoppers.push(() => p.stop(200));
  return { p, events };
}

test('a process that keeps exiting is restarted with doubling delays, capped', async () => {
  const dir = tempDir();
  const { p, events } = managed(spec(dir, 'flappy', 'exit=1'), { initialDelayMs: 50, maxDelayMs: 200, resetAfterMs: 10_000 });
  p.start();
  await waitFor('6 starts', () => readJournal(join(dir, 'journal')).filter((e) => e.event === 'start').length >= 6, 30_000);
  // The exits before the stop are the process's own; the stop may catch a 7th run and end it by signal.
  const exits = events.filter((e) => e.type === 'exit');
  await p.stop(500);
  const delays = events.filter((e) => e.type === 'restart').map((e) => (e as { delayMs: number }).delayMs);
  assert.deepEqual(delays.slice(0, 5), [50, 100, 200, 200, 200]);
  const starts = readJournal(join(dir, 'journal')).filter((e) => e.event === 'start').map((e) => e.t);
  // Each gap between two starts holds its delay (plus the time a node process takes to boot).
  for (let i = 1; i < 6; i++) assert.ok(starts[i]! - starts[i - 1]! >= delays[i - 1]! - 5, `gap ${i}: ${starts[i]! - starts[i - 1]!} ms < ${delays[i - 1]} ms`);
  assert.ok(p.restarts >= 5);
  assert.ok(exits.length >= 5);
  assert.ok(exits.every((e) => (e as { code: number }).code === 1), JSON.stringify(exits));
});

test('a run longer than resetAfterMs starts the backoff again from the first delay', async () => {
  const dir = tempDir();
  const { p, events } = managed(spec(dir, 'crashy', 'crash-after=150'), { initialDelayMs: 40, maxDelayMs: 1000, resetAfterMs: 100 });
  p.start();
  await waitFor('3 restarts', () => events.filter((e) => e.type === 'restart').length >= 3, 20_000);
  await p.stop(500);
  const delays = events.filter((e) => e.type === 'restart').map((e) => (e as { delayMs: number }).delayMs);
  assert.deepEqual(delays.slice(0, 3), [40, 40, 40], 'every run lasted longer than resetAfterMs');
});

test('stdout and stderr go to the log file, with a line per start and exit', async () => {
  const dir = tempDir();
  const s = spec(dir, 'talker', 'print=hello', 'exit=2');
  const { p, events } = managed(s, { initialDelayMs: 5000, maxDelayMs: 5000, resetAfterMs: 10_000 });
  p.start();
  await waitFor('the exit', () => events.some((e) => e.type === 'exit'));
  await p.stop(200);
  const log = readFileSync(s.logFile, 'utf8');
  assert.match(log, /--- trellis up: start #1 of talker at \S+: .*proc\.mjs talker print=hello exit=2/);
  assert.match(log, /hello \(stdout\)\nhello \(stderr\)\n/);
  assert.match(log, /--- trellis up: talker exited \(code 2\) after \d+\.\ds/);
});

test('a command that cannot start is reported and retried, not thrown', async () => {
  const dir = tempDir();
  const { p, events } = managed({ ...spec(dir, 'missing'), command: ['/nonexistent/program'] });
  p.start();
  await waitFor('two spawn errors', () => events.filter((e) => e.type === 'spawn-error').length >= 2);
  await p.stop(200);
  assert.match((events.find((e) => e.type === 'spawn-error') as { error: string }).error, /ENOENT/);
  assert.match(readFileSync(join(dir, 'logs', 'missing.log'), 'utf8'), /could not start missing: .*ENOENT/);
});

test('stop sends SIGTERM to the group and does not restart', async () => {
  const dir = tempDir();
  const { p, events } = managed(spec(dir, 'polite', 'term-delay=50'));
  p.start();
  await waitFor('start', () => readJournal(join(dir, 'journal')).some((e) => e.event === 'start'));
  const pid = p.pid!;
  const r = await p.stop(2000);
  assert.equal(r.by, 'SIGTERM');
  assert.equal(r.pid, pid);
  assert.deepEqual(r.survivors, []);
  assert.equal(pidAlive(pid), false);
  await new Promise((res) => setTimeout(res, 150));
  assert.equal(events.filter((e) => e.type === 'spawn').length, 1, 'no restart after stop');
  assert.equal(events.filter((e) => e.type === 'restart').length, 0);
});

test('a process that ignores SIGTERM is SIGKILLed after the bound, with its grandchild', async () => {
  const dir = tempDir();
  const { p } = managed(spec(dir, 'stubborn', 'ignore-term', 'grandchild'));
  p.start();
  const gc = await waitFor('the grandchild', () => readJournal(join(dir, 'journal')).find((e) => e.event === 'grandchild')?.grandchild as number | undefined);
  const pid = p.pid!;
  assert.deepEqual(groupMembers(pid).sort(), [pid, gc].sort(), 'the grandchild is in the child\'s process group');
  const began = Date.now();
  const r = await p.stop(300);
  const took = Date.now() - began;
  assert.equal(r.by, 'SIGKILL');
  assert.ok(took >= 290 && took < 2500, `stop took ${took} ms for a 300 ms bound`);
  assert.deepEqual(r.survivors, []);
  assert.equal(pidAlive(pid), false);
  assert.equal(pidAlive(gc), false, 'the grandchild is gone too');
  assert.ok(readJournal(join(dir, 'journal')).some((e) => e.event === 'term'), 'it did get SIGTERM first');
});

test('a shell command runs in its own group; stop leaves none of its processes', async () => {
  const dir = tempDir();
  const s = { ...spec(dir, 'shell'), command: `${process.execPath} ${PROC} inner ignore-term & ${process.execPath} ${PROC} outer; wait` };
  const { p } = managed(s);
  p.start();
  await waitFor('both started', () => readJournal(join(dir, 'journal')).filter((e) => e.event === 'start').length === 2);
  const pid = p.pid!;
  assert.equal(groupMembers(pid).length, 3, 'sh and its two children share the group');
  const r = await p.stop(300);
  assert.deepEqual(r.survivors, []);
  assert.deepEqual(liveGroups([pid]), []);
});

test('when a process exits, what is left of its group is killed before the restart', async () => {
  const dir = tempDir();
  const s = { ...spec(dir, 'leaky'), command: `${process.execPath} ${PROC} orphan ignore-term & sleep 0.2; exit 1` };
  const { p, events } = managed(s, { initialDelayMs: 5000, maxDelayMs: 5000, resetAfterMs: 10_000 });
  p.start();
  const orphan = await waitFor('the orphan', () => readJournal(join(dir, 'journal')).find((e) => e.event === 'start')?.pid);
  const exit = await waitFor('the shell\'s exit', () => events.find((e) => e.type === 'exit') as { pid: number } | undefined);
  await waitFor('the orphan to be killed', () => !pidAlive(orphan), 10_000);
  assert.deepEqual(liveGroups([exit.pid]), []);
  await p.stop(200);
});

test('the supervisor stops tier by tier: apps, then proxies, then the control plane', async () => {
  const dir = tempDir();
  const sup = new Supervisor<'app' | 'proxy' | 'control-plane'>({ stopOrder: ['app', 'proxy', 'control-plane'], onEvent: (e) => { if (e.type === 'spawn') started.push(e.pid); } });
  stoppers.push(() => sup.stopAll(200));
  sup.start(spec(dir, 'cp', 'term-delay=100'), 'control-plane');
  sup.start(spec(dir, 'proxy-a', 'term-delay=100'), 'proxy');
  sup.start(spec(dir, 'proxy-b', 'term-delay=50'), 'proxy');
  sup.start(spec(dir, 'app-a', 'term-delay=150'), 'app');
  sup.start(spec(dir, 'app-b', 'ignore-term'), 'app');
  await waitFor('5 starts', () => readJournal(join(dir, 'journal')).filter((e) => e.event === 'start').length === 5);
  const pids = sup.processes.map((p) => p.pid!);
  const results = await sup.stopAll(400);
  assert.deepEqual(results.map((r) => [r.name, r.by]), [['app-a', 'SIGTERM'], ['app-b', 'SIGKILL'], ['proxy-a', 'SIGTERM'], ['proxy-b', 'SIGTERM'], ['cp', 'SIGTERM']]);
  const j = readJournal(join(dir, 'journal'));
  const termOf = (n: string) => j.find((e) => e.event === 'term' && e.name === n)!.t;
  const exitOf = (n: string) => j.find((e) => e.event === 'exit' && e.name === n)?.t;
  // No proxy is asked to stop before the apps have gone (app-b only went with SIGKILL, after the 400 ms bound); the control plane goes last.
  const appsGone = Math.max(exitOf('app-a')!, termOf('app-b'));
  assert.ok(termOf('proxy-a') >= appsGone && termOf('proxy-b') >= appsGone, 'proxies stop after the apps');
  assert.ok(Math.min(termOf('proxy-a'), termOf('proxy-b')) - termOf('app-b') >= 300, 'the proxies waited for app-b\'s SIGKILL bound');
  assert.ok(termOf('cp') >= Math.max(exitOf('proxy-a')!, exitOf('proxy-b')!), 'the control plane stops after the proxies');
  assert.deepEqual(liveGroups(pids), []);
  assert.throws(() => sup.start(spec(dir, 'late'), 'app'), /stopping/);
});

test('killAllSync SIGKILLs every group at once', async () => {
  const dir = tempDir();
  const sup = new Supervisor<'a'>({ stopOrder: ['a'], onEvent: (e) => { if (e.type === 'spawn') started.push(e.pid); } });
  sup.start(spec(dir, 'x', 'ignore-term', 'grandchild'), 'a');
  sup.start(spec(dir, 'y', 'ignore-term'), 'a');
  await waitFor('grandchild', () => readJournal(join(dir, 'journal')).some((e) => e.event === 'grandchild'));
  const pids = sup.processes.map((p) => p.pid!);
  sup.killAllSync();
  await waitFor('all gone', () => liveGroups(pids).length === 0, 10_000);
});

test('a step of tiers stops unit by unit: each sidecar exits before its app is asked to stop, units in parallel, then the control plane', async () => {
  const dir = tempDir();
  const sup = new Supervisor<'app' | 'proxy' | 'control-plane'>({ stopOrder: [['proxy', 'app'], 'control-plane'], onEvent: (e) => { if (e.type === 'spawn') started.push(e.pid); } });
  stoppers.push(() => sup.stopAll(200));
  sup.start(spec(dir, 'cp'), 'control-plane');
  sup.start(spec(dir, 'proxy-a', 'term-delay=300'), 'proxy', 'a');
  sup.start(spec(dir, 'app-a'), 'app', 'a');
  sup.start(spec(dir, 'proxy-b', 'term-delay=50'), 'proxy', 'b');
  sup.start(spec(dir, 'app-b'), 'app', 'b');
  sup.start(spec(dir, 'gateway', 'term-delay=50'), 'proxy');
  await waitFor('6 starts', () => readJournal(join(dir, 'journal')).filter((e) => e.event === 'start').length === 6);
  const pids = sup.processes.map((p) => p.pid!);
  const results = await sup.stopAll(2000, { proxy: 3000 });
  assert.ok(results.every((r) => r.by === 'SIGTERM'), JSON.stringify(results));
  assert.equal(results.at(-1)!.name, 'cp');
  const j = readJournal(join(dir, 'journal'));
  const termOf = (n: string) => j.find((e) => e.event === 'term' && e.name === n)!.t;
  const exitOf = (n: string) => j.find((e) => e.event === 'exit' && e.name === n)!.t;
  assert.ok(termOf('app-a') >= exitOf('proxy-a'), 'app-a is stopped only after its sidecar exited');
  assert.ok(termOf('app-b') >= exitOf('proxy-b'), 'app-b is stopped only after its sidecar exited');
  assert.ok(termOf('app-b') < exitOf('proxy-a'), 'unit b does not wait for unit a');
  assert.ok(Math.abs(termOf('proxy-a') - termOf('proxy-b')) < 150 && Math.abs(termOf('gateway') - termOf('proxy-a')) < 150, 'the sidecars and the gateway are told at once');
  assert.ok(termOf('cp') >= Math.max(exitOf('app-a'), exitOf('app-b'), exitOf('gateway')), 'the control plane stops last');
  assert.deepEqual(liveGroups(pids), []);
});
