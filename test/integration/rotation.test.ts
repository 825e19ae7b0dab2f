/**
 * Certificates rotate under load, all real processes: a `trellis
 * control-plane` issuing 4-second workload certificates (renewed at half
 * life), web's sidecar and three api sidecars with their apps, and a bounded
 * load from web's app (this test) through two mTLS proxies per request.
 * First every certificate is renewed several times; then the CA root itself
 * is rotated (`trellis ca rotate`: old and new trusted, proxies move to the
 * new root as they renew, `trellis ca finish-rotation`). No request fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { CaStatus } from '../../src/controlplane/mesh-identity.js';
import { waitFor } from '../controlplane/helpers.js';
import { getJson, MAIN } from './processes.js';
import { API_INSTANCES, MESH_APP, routing, RunningMesh } from './running-mesh.js';

const URL_API = 'http://api.shop:8080/hello';
const ALL = ['web.shop', ...API_INSTANCES];
let mesh: RunningMesh;

before(async () => {
  mesh = await RunningMesh.webAndApi({ 'app.yaml': MESH_APP, 'routing.yaml': routing(50, 50) }, ['--workload-cert-ttl', '4s']);
});
after(async () => {
  await mesh?.close();
});

const ca = async () => (await getJson<CaStatus>(mesh.admin, '/ca')).body;
const failures = (rs: { status: number; body: string }[]) => rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.slice(0, 120)}`);
const trellisCa = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, [MAIN, 'ca', ...args, '--admin', mesh.admin], { encoding: 'utf8', timeout: 15_000 }, (e, stdout, stderr) => {
    resolve({ status: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
  });
});

test('4-second certificates renewed at half life under load: every proxy gets new ones, no request fails', async () => {
  const serials = new Map<string, Set<string>>();
  const note = async () => { for (const i of (await ca()).issued) (serials.get(i.instance) ?? serials.set(i.instance, new Set()).get(i.instance)!).add(i.serial); };
  await note();
  const watch = setInterval(() => void note(), 250);
  const results = await mesh.traffic(URL_API, { count: 1500, spreadMs: 9000, maxMs: 25_000 });
  clearInterval(watch);
  await note();
  assert.equal(results.length, 1500, 'every request was sent within the time bound');
  assert.deepEqual(failures(results), []);
  for (const i of ALL) assert.ok((serials.get(i)?.size ?? 0) >= 3, `${i} had ${serials.get(i)?.size ?? 0} certificates while the load ran`);
  const web = mesh.sidecars.get('web.shop')!.proc;
  assert.match(web.out, /certificate spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web valid until/);
});

test('a root rotation under load: old and new roots trusted together, every proxy moves to the new root, the old one is dropped; no request fails', async () => {
  const before = await ca();
  assert.equal(before.rotating, false);
  const oldRoot = before.roots[0]!.fingerprint;
  let phase = 'rotating';
  const errors: string[] = [];
  let rotated: Promise<void> | undefined;
  const traffic = mesh.traffic(URL_API, {
    count: 2000, spreadMs: 14_000, maxMs: 40_000,
    onProgress: (n) => {
      if (n !== 200) return;
      rotated = trellisCa('rotate', '-o', 'json').then((r) => { if (r.status !== 0) errors.push(`rotate: ${r.stderr}`); });
    },
  });
  const during = await waitFor('two roots trusted', async () => { const s = await ca(); return s.rotating ? s : undefined; }, 10_000, 20);
  // Too early, asked the moment the rotation shows: the proxies still hold old-root certificates. Through the
  // admin API that `trellis ca finish-rotation` calls: the CLI's start-up takes long enough for every 4-second
  // certificate to renew, so it would race the proxies.
  const early = await fetch(`http://${mesh.admin}/ca/finish-rotation`, { method: 'POST' });
  const refusal = await early.json() as { error: string; pending: string[] };
  assert.equal(early.status, 409, JSON.stringify(refusal));
  assert.match(refusal.error, /still hold a certificate from an old root/);
  assert.ok(refusal.pending.length > 0);
  assert.equal(during.roots.length, 2);
  assert.equal(during.roots.find((r) => r.signing)!.fingerprint === oldRoot, false, 'the new root signs');
  let behind: string[] = [];
  await waitFor('every proxy renewed onto the new root', async () => {
    const s = await ca();
    behind = ALL.filter((i) => !s.issued.find((x) => x.instance === i)?.fromSigningRoot);
    return behind.length === 0 || undefined;
  }, 10_000, 100).catch((e: Error) => {
    const logs = behind.map((i) => mesh.sidecars.get(i)?.proc.tail() ?? i).join('\n');
    throw new Error(`${e.message}; still on the old root: ${behind.join(', ')}\n${logs}\n${mesh.cp?.tail() ?? ''}`);
  });
  const done = await trellisCa('finish-rotation', '-o', 'json');
  assert.equal(done.status, 0, done.stderr);
  phase = 'finished';
  const after = JSON.parse(done.stdout) as CaStatus;
  assert.deepEqual([after.rotating, after.roots.length, after.roots[0]!.fingerprint === oldRoot], [false, 1, false]);
  const results = await traffic;
  await rotated;
  assert.deepEqual(errors, []);
  assert.equal(phase, 'finished');
  assert.equal(results.length, 2000, 'every request was sent within the time bound');
  assert.deepEqual(failures(results), []);
  // After the old root is gone, the mesh still works, and so do new connections to the control plane.
  const more = await mesh.traffic(URL_API, { count: 100, spreadMs: 1000, maxMs: 10_000 });
  assert.deepEqual(failures(more), []);
  const text = await trellisCa('status');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^ROOT \(SHA-256\)\s+SIGNS\s+NOT AFTER$/m);
});
