import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverHostAllows } from '../../src/compile/gateway-view.js';

test('Gateway server hosts admit VirtualService hosts as Istio reads them', () => {
  // [server host, VirtualService host, VirtualService namespace, Gateway namespace, admitted]
  const rows: [string, string, string, string, boolean][] = [
    ['*', 'bookinfo.example.com', 'default', 'istio-system', true],
    ['bookinfo.example.com', 'bookinfo.example.com', 'default', 'istio-system', true],
    ['bookinfo.example.com', 'other.example.com', 'default', 'istio-system', false],
    ['*.example.com', 'a.example.com', 'default', 'istio-system', true],
    ['*.example.com', 'example.com', 'default', 'istio-system', false],
    ['a.example.com', '*.example.com', 'default', 'istio-system', true],
    ['default/*', 'x.example.com', 'default', 'istio-system', true],
    ['prod/*', 'x.example.com', 'default', 'istio-system', false],
    ['*/x.example.com', 'x.example.com', 'anything', 'istio-system', true],
    ['./*', 'x.example.com', 'istio-system', 'istio-system', true],
    ['./*', 'x.example.com', 'default', 'istio-system', false],
    ['x.example.com', '*', 'default', 'istio-system', true],
  ];
  for (const [server, vs, vsNs, gwNs, want] of rows) {
    assert.equal(serverHostAllows(server, vs, vsNs, gwNs), want, `${server} admits ${vsNs}/${vs} (gateway in ${gwNs})`);
  }
});
