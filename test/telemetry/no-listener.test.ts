/**
 * Observability costs nothing when nobody listens: with service metrics and
 * access logs off, the records channel has no subscriber and no record is
 * built or published, while the proxy's own counters still count. (Its own
 * file: the test runner gives it a process no other data plane shares.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { REQUEST_CHANNEL } from '../../src/protocol/request-record.js';
import { attachedSinks } from '../../src/telemetry/record-hub.js';
import { parsePrometheusText, select } from './prom-text.js';
import { scrape, startTwoProxies, type TwoProxies } from './two-proxies.js';

const channel = diagnostics_channel.channel(REQUEST_CHANNEL);
// The channel swaps its prototype when it gains or loses subscribers: call whichever publish is current.
const realPublish = (message: unknown) => (Object.getPrototypeOf(channel) as typeof channel).publish.call(channel, message);
let published = 0;
let p: TwoProxies;

before(async () => {
  // Every record the proxies publish passes here (request-record.ts builds one only to publish it).
  channel.publish = (message: unknown) => { published++; realPublish(message); };
  p = await startTwoProxies({ metrics: false }, { metrics: false, accessLog: { file: '' } });
});
after(async () => {
  delete (channel as { publish?: unknown }).publish;
  await p?.close();
});

test('no subscriber: no record is built, no service metric exists, the proxy counters still count', async () => {
  assert.equal(attachedSinks(), 0);
  assert.equal(channel.hasSubscribers, false);
  for (let i = 0; i < 4; i++) assert.equal((await p.client.call('http://api/x')).status, 200);
  assert.equal(published, 0);
  const m = parsePrometheusText((await scrape(p.caller)).text);
  assert.equal(m.get('trellis_requests_total'), undefined);
  assert.deepEqual(select(m.get('trellis_proxy_requests_total'), { direction: 'outbound', status_class: '2xx' }).map((s) => s.value), [4]);
});

test('the probe sees records as soon as someone subscribes (so the test above can fail)', async () => {
  const seen: unknown[] = [];
  const onRecord = (r: unknown) => seen.push(r);
  diagnostics_channel.subscribe(REQUEST_CHANNEL, onRecord);
  try {
    assert.equal((await p.client.call('http://api/y')).status, 200);
    // The inbound record is published when the callee's response closes, which may trail the caller's by a tick.
    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(published, 2, 'one record per proxy');
    assert.equal(seen.length, 2);
  } finally {
    diagnostics_channel.unsubscribe(REQUEST_CHANNEL, onRecord);
  }
  assert.equal(channel.hasSubscribers, false);
});
