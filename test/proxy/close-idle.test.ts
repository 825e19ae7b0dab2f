/**
 * close() does not wait for idle keep-alive clients: HTTP/1.1 connections the
 * sniffing listener handed to its http.Server are tracked and closed when
 * the proxy stops, so a stopping sidecar exits at once instead of waiting
 * for every caller's idle timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { compile } from '../../src/compile/index.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';
import { startProxy } from '../helpers/proxy.js';

test('close(): an idle keep-alive HTTP/1.1 connection is closed by the proxy, well within the grace', async () => {
  const m = meshFromYaml(TWO_SERVICES);
  const proxy = await startProxy({ mode: 'sidecar' }, compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' }));
  const [host, port] = proxy.addresses.outbound!.split(':');
  const socket = connect(Number(port), host);
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  // One request that the proxy answers itself (an unknown service on a port nobody serves: 404 or passthrough refusal), keep-alive.
  let reply = '';
  socket.on('data', (b) => { reply += b.toString('latin1'); });
  socket.write('GET http://no-such-service.shop:81/ HTTP/1.1\r\nhost: no-such-service.shop:81\r\nconnection: keep-alive\r\n\r\n');
  const deadline = Date.now() + 3000;
  while (!/\r\n\r\n/.test(reply) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.match(reply, /^HTTP\/1\.1 \d{3}/, `the proxy answered: ${reply.slice(0, 80)}`);
  const closedByServer = new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true));
    setTimeout(() => resolve(false), 4000);
  });
  await proxy.close(10_000);
  assert.equal(await closedByServer, true, 'the idle client connection was still open after close()');
  socket.destroy();
});
