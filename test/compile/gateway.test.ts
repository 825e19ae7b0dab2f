import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverHostAllows } from '../../src/compile/gateway-view.js';
import { join } from 'node:path';
import { compile, simulate } from '../../src/compile/index.js';
import { meshFromYaml, SAMPLES } from '../helpers/mesh.js';

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


test('a route match naming a Gateway applies only on the ports that Gateway listens on', () => {
  const m = meshFromYaml(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: web }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: partners, namespace: web }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 8080, name: http-partners, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: site, namespace: web }
spec:
  hosts: ["*"]
  gateways: [public, partners]
  http:
  - name: partners-only
    match: [{ gateways: [partners], uri: { prefix: / } }]
    route: [{ destination: { host: productpage.default.svc.cluster.local, port: { number: 9080 } } }]
  - name: everyone
    route: [{ destination: { host: details.default.svc.cluster.local, port: { number: 9080 } } }]
`, join(SAMPLES, 'bookinfo/platform/kube/bookinfo.yaml'), join(SAMPLES, '..', 'ingress-gateway.yaml'));
  const snap = compile(m.config, m.registry, { workload: 'istio-ingressgateway', namespace: 'istio-system' });
  assert.deepEqual(snap.outbound.http.map((t) => [t.port, t.gateways]), [[80, ['web/public']], [8080, ['web/partners']]]);
  assert.equal(simulate(snap, { url: 'http://shop.example.com:8080/' }).route?.name, 'partners-only');
  assert.equal(simulate(snap, { url: 'http://shop.example.com:80/' }).route?.name, 'everyone');
});

test('an HTTPS or TLS Gateway server is not served (gateways do not terminate TLS yet): no listener on its port, rather than plaintext', () => {
  const m = meshFromYaml(`
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: web }
spec:
  selector: { istio: ingressgateway }
  servers:
  - { port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }
  - { port: { number: 443, name: https, protocol: HTTPS }, hosts: ["*"], tls: { mode: SIMPLE, credentialName: site-cert } }
  - { port: { number: 8443, name: tls, protocol: TLS }, hosts: ["*"], tls: { mode: PASSTHROUGH } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: site, namespace: web }
spec:
  hosts: ["*"]
  gateways: [public]
  http:
  - route: [{ destination: { host: details.default.svc.cluster.local, port: { number: 9080 } } }]
`, join(SAMPLES, 'bookinfo/platform/kube/bookinfo.yaml'), join(SAMPLES, '..', 'ingress-gateway.yaml'));
  const snap = compile(m.config, m.registry, { workload: 'istio-ingressgateway', namespace: 'istio-system' });
  assert.deepEqual(snap.outbound.http.map((t) => t.port), [80]);
});
