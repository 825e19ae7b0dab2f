/** `trellis control-plane` as a process: flags, addresses, one log line per event, clean close on SIGTERM. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintJoinTokens, stateDirRoot } from '../../src/cli/join-tokens.js';
import { loadMesh } from '../../src/cli/mesh-input.js';
import { ConfigDir, registerPlane, SHOP, StreamClient, waitFor } from '../controlplane/helpers.js';
import { getJson, MAIN, Proc, Procs } from './processes.js';

const procs = new Procs();
const dirs: ConfigDir[] = [];
after(async () => {
  await procs.stopAll();
  for (const d of dirs) d.remove();
});

test('--help explains the flags and the admin API', () => {
  const r = spawnSync(process.execPath, [MAIN, 'control-plane', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const flag of ['--config', '--grpc-port', '--admin-port', '--registration-grace', '--gone-after', '--state-dir', '/proxies', 'last\ngood'.replace('\n', ' ')]) {
    assert.ok(r.stdout.replace(/\s+/g, ' ').includes(flag), `help mentions ${flag}`);
  }
});

test('bad flags are usage errors (exit 2) that say what is expected', () => {
  const r = spawnSync(process.execPath, [MAIN, 'control-plane', '--config', '.', '--gone-after', 'soon'], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--gone-after must be a duration like 10s/);
  const p = spawnSync(process.execPath, [MAIN, 'control-plane', '--config', '.', '--grpc-port', '99999'], { encoding: 'utf8' });
  assert.equal(p.status, 2);
  assert.match(p.stderr, /--grpc-port must be a port number/);
});

test('it prints its addresses, logs config, proxies and pushes, reports a rejected edit with file:line, and closes on SIGTERM', async () => {
  const dir = new ConfigDir({ 'app.yaml': SHOP });
  dirs.push(dir);
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-cp-cli-'));
  after(() => rmSync(stateDir, { recursive: true, force: true }));
  const cp = procs.add(Proc.trellis('control-plane', ['control-plane', '--config', dir.path, '--grpc-port', '0', '--admin-port', '0', '--registration-grace', '0s', '--state-dir', stateDir]));
  const [, grpc, admin] = await cp.line(/listening grpc=(\S+) admin=(\S+)/);
  await cp.line(/config loaded: 1 resources from 1 files/);
  await cp.line(/CA in the state dir trust-domain=cluster\.local root-sha256=[0-9a-f]{64}/);
  assert.equal((await getJson(admin!, '/ready')).status, 200);

  // The stream client joins as a proxy does: a token minted into the state dir, the root pinned.
  const registry = loadMesh([dir.path]).registry;
  registerPlane(grpc!, { mintJoinToken: (i) => mintJoinTokens(stateDir, registry, [i])[0]!.token, identity: { trustBundle: () => [stateDirRoot(stateDir)] } });
  const c = StreamClient.hello(grpc!, 'web.shop', '127.0.0.1:44001');
  c.ack(await c.snapshot());
  await cp.line(/certificate issued instance=web\.shop identity=spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web not-after=\S+ via=join-token/);
  await cp.line(/proxy connected instance=web\.shop inbound=127\.0\.0\.1:44001/);
  await cp.line(/push instance=web\.shop version=\S+ reason=/);
  await cp.line(/ack instance=web\.shop version=\S+ latency=/);

  const before = cp.out.length;
  dir.write('bad.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: x, namespace: shop }\nspec:\n  hosts: [web]\n  http: [{ route: [{ destination: { host: web }, weight: -1 }] }]\n');
  await cp.line(/config rejected in \S*bad\.yaml/, 3000, before);
  await cp.line(/bad\.yaml:6:\d+: error TRL0106 VirtualService shop\/x/, 1000, before);

  c.close();
  await cp.line(/proxy disconnected instance=web\.shop/);
  cp.signal('SIGTERM');
  const exit = await cp.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, cp.tail());
  assert.match(cp.out, /SIGTERM: closing/);
  await waitFor('the port to close', async () => {
    try {
      await fetch(`http://${admin}/ready`);
      return false;
    } catch {
      return true;
    }
  });
});
