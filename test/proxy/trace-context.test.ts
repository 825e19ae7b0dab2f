/**
 * Trace context on the request path (src/proxy/trace-context.ts): W3C and
 * B3 (single and multi) read, a span id of the hop's own, the context
 * written back in the formats that arrived, sampling decided only where a
 * trace starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Headers } from '../../src/proxy/headers.js';
import { randomHex, startHop } from '../../src/proxy/trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const HEX16 = /^[0-9a-f]{16}$/;
const HEX32 = /^[0-9a-f]{32}$/;
const never = () => 0.999_999;
const always = () => 0;

test('no context: a new trace, sampled by the percentage, written as W3C only', () => {
  const h: Headers = {};
  const hop = startHop(h, 1, always);
  assert.match(hop.traceId, HEX32);
  assert.match(hop.spanId, HEX16);
  assert.equal(hop.parentSpanId, undefined);
  assert.equal(hop.sampled, true);
  assert.deepEqual(h, { traceparent: `00-${hop.traceId}-${hop.spanId}-01` });
  assert.equal(startHop({}, 1, () => 0.011).sampled, false, '1 % samples only draws below 0.01');
  assert.equal(startHop({}, 100, never).sampled, true);
  assert.equal(startHop({}, 0, always).sampled, false);
});

test('a W3C context is continued: same trace, this hop as parent, the sampled flag and tracestate kept whatever the percentage', () => {
  const h: Headers = { traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'congo=t61rcWkgMzE' };
  const hop = startHop(h, 0, never);
  assert.deepEqual({ ...hop, spanId: '' }, { traceId: TRACE, spanId: '', parentSpanId: SPAN, sampled: true });
  assert.notEqual(hop.spanId, SPAN);
  assert.deepEqual(h, { traceparent: `00-${TRACE}-${hop.spanId}-01`, tracestate: 'congo=t61rcWkgMzE' });
  const off: Headers = { traceparent: `00-${TRACE}-${SPAN}-00` };
  assert.equal(startHop(off, 100, always).sampled, false, 'an unsampled trace stays unsampled at 100 %');
  assert.match(off['traceparent'] as string, /-00$/);
  // Sampled is the flags' lowest bit, whatever the other bits (hex letters included).
  for (const [flags, sampled] of [['0b', true], ['0a', false], ['03', true], ['10', false], ['ff', true], ['fe', false]] as const) {
    assert.equal(startHop({ traceparent: `00-${TRACE}-${SPAN}-${flags}` }, 50, () => 0.99).sampled, sampled, `flags ${flags}`);
  }
});

test('a later W3C version with more fields is read; malformed traceparents start a new trace and drop tracestate', () => {
  const later = startHop({ traceparent: `01-${TRACE}-${SPAN}-01-what-comes-next` }, 0, never);
  assert.deepEqual([later.traceId, later.parentSpanId, later.sampled], [TRACE, SPAN, true]);
  const bad = [
    `00-${TRACE.toUpperCase()}-${SPAN}-01`,
    `00-${'0'.repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `ff-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`,
    `00-${TRACE}-${SPAN}`,
    `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`,
  ];
  for (const tp of bad) {
    const h: Headers = { traceparent: tp, tracestate: 'a=b' };
    const hop = startHop(h, 0, never);
    assert.notEqual(hop.traceId, TRACE, tp);
    assert.equal(hop.parentSpanId, undefined, tp);
    assert.deepEqual(h, { traceparent: `00-${hop.traceId}-${hop.spanId}-00` }, tp);
  }
});

test('B3 single in, B3 single out: ids, sampling state, a 64-bit trace id padded inside and 64 bits outside', () => {
  const h: Headers = { b3: `${TRACE}-${SPAN}-1-05e3ac9a4f6e3b90` };
  const hop = startHop(h, 0, never);
  assert.deepEqual([hop.traceId, hop.parentSpanId, hop.sampled], [TRACE, SPAN, true]);
  assert.deepEqual(h, { b3: `${TRACE}-${hop.spanId}-1-${SPAN}` }, 'no traceparent added: the format that arrived goes on');

  const short: Headers = { b3: `a3ce929d0e0e4736-${SPAN}-d` };
  const s = startHop(short, 0, never);
  assert.equal(s.traceId, `0000000000000000a3ce929d0e0e4736`);
  assert.equal(s.sampled, true, 'debug means sampled');
  assert.equal(short['b3'], `a3ce929d0e0e4736-${s.spanId}-1-${SPAN}`);

  assert.equal(startHop({ b3: `${TRACE}-${SPAN}` }, 100, always).sampled, true, 'no sampling state: this proxy decides');
  assert.equal(startHop({ b3: `${TRACE}-${SPAN}` }, 0, always).sampled, false);
  const deny: Headers = { b3: '0' };
  const d = startHop(deny, 100, always);
  assert.equal(d.sampled, false, 'b3: 0 is a decision without ids, honoured');
  assert.equal(d.parentSpanId, undefined);
  assert.equal(deny['b3'], `${d.traceId}-${d.spanId}-0`);
});

test('B3 multi in, B3 multi out, with the incoming span as x-b3-parentspanid; legacy true/false and x-b3-flags', () => {
  const h: Headers = { 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-parentspanid': '05e3ac9a4f6e3b90', 'x-b3-sampled': '1' };
  const hop = startHop(h, 0, never);
  assert.deepEqual([hop.traceId, hop.parentSpanId, hop.sampled], [TRACE, SPAN, true]);
  assert.deepEqual(h, { 'x-b3-traceid': TRACE, 'x-b3-spanid': hop.spanId, 'x-b3-parentspanid': SPAN, 'x-b3-sampled': '1' });
  assert.equal(startHop({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'false' }, 100, always).sampled, false);
  assert.equal(startHop({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-flags': '1' }, 0, never).sampled, true);
  const upper = startHop({ 'x-b3-traceid': TRACE.toUpperCase(), 'x-b3-spanid': SPAN.toUpperCase(), 'x-b3-sampled': '0' }, 100, always);
  assert.deepEqual([upper.traceId, upper.parentSpanId], [TRACE, SPAN]);
});

test('several formats: W3C wins, and every format that arrived goes out with the same context', () => {
  const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  const h: Headers = { traceparent: `00-${TRACE}-${SPAN}-01`, b3: `${other}-${SPAN}-0`, 'x-b3-traceid': other, 'x-b3-spanid': SPAN };
  const hop = startHop(h, 0, never);
  assert.deepEqual([hop.traceId, hop.sampled], [TRACE, true]);
  assert.deepEqual(h, {
    traceparent: `00-${TRACE}-${hop.spanId}-01`, b3: `${TRACE}-${hop.spanId}-1-${SPAN}`,
    'x-b3-traceid': TRACE, 'x-b3-spanid': hop.spanId, 'x-b3-parentspanid': SPAN, 'x-b3-sampled': '1',
  });
  const fallback: Headers = { traceparent: 'garbage', b3: `${TRACE}-${SPAN}-1` };
  const f = startHop(fallback, 0, never);
  assert.deepEqual([f.traceId, f.parentSpanId, f.sampled], [TRACE, SPAN, true], 'a malformed traceparent gives way to a valid b3');
  assert.equal(fallback['traceparent'], `00-${TRACE}-${f.spanId}-01`);
});

test('ids are random hex, never all zeros, distinct over many draws', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const s = randomHex(8);
    assert.match(s, HEX16);
    seen.add(s);
  }
  assert.equal(seen.size, 5000);
  assert.match(randomHex(16), HEX32);
});
