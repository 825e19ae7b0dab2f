/**
 * A frozen proxy (SIGSTOP) is noticed by the control plane's keepalive pings
 * within seconds: it leaves rotation and /proxies says it is not connected.
 * The "proxy" is a separate node process speaking the stream.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { EndpointRow, ProxyRow } from '../../src/controlplane/admin.js';
import { ROOT } from '../helpers/mesh.js';
import { Proc } from '../integration/processes.js';
import { ConfigDir, SHOP, startControlPlane, waitFor, type TestControlPlane } from './helpers.js';

let dir: ConfigDir | undefined;
let t: TestControlPlane | undefined;
let child: Proc | undefined;
after(async () => {
  await child?.stop();
  await t?.cp.close();
  dir?.remove();
});

const CLIENT = `
const { registerPlane, StreamClient } = await import(${JSON.stringify(join(ROOT, 'dist', 'test', 'controlplane', 'helpers.js'))});
const [target, token, roots] = process.argv.slice(1);
registerPlane(target, { mintJoinToken: () => token, identity: { trustBundle: () => [Buffer.from(roots, 'base64').toString()] } });
const c = StreamClient.hello(target, 'api-v2.shop', '127.0.0.1:45001');
const s = await c.snapshot(0, 5000);
c.ack(s);
console.log('acked ' + s.version);
setInterval(() => {}, 1000);
`;

test('a frozen proxy is noticed by keepalive within seconds and leaves rotation', async () => {
  dir = new ConfigDir({ 'app.yaml': SHOP });
  t = await startControlPlane(dir.path);
  const roots = Buffer.from(t.cp.identity.trustBundle().join('\n')).toString('base64');
  child = new Proc('stream-client', ['--input-type=module', '-e', CLIENT, t.grpc, t.cp.mintJoinToken('api-v2.shop'), roots]);
  await child.line(/acked \S+/, 5000);
  const row = async () => (await t!.get<ProxyRow[]>('/proxies')).body.find((p) => p.instance === 'api-v2.shop');
  await waitFor('SYNCED', async () => (await row())?.sync === 'SYNCED');

  child.signal('SIGSTOP');
  const frozenAt = Date.now();
  await waitFor('the control plane to notice', async () => (await row())?.connected === false, 10_000, 100);
  const took = Date.now() - frozenAt;
  assert.ok(took < 8000, `noticed after ${took} ms`);
  const ep = (await t.get<EndpointRow[]>('/endpoints')).body.find((e) => e.instance === 'api-v2.shop')!;
  assert.equal(ep.healthy, false);
  child.signal('SIGCONT');
});
