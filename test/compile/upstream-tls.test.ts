/** DestinationRule trafficPolicy.tls → the cluster's UpstreamTls: auto mTLS, DISABLE, SIMPLE and MUTUAL with their files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/compile/index.js';
import { meshFromYaml, TWO_SERVICES } from '../helpers/mesh.js';

const dr = (tls: string) => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api-tls, namespace: shop }
spec:
  host: api
  trafficPolicy: { tls: ${tls} }
`;

const apiTls = (yaml: string) => {
  const m = meshFromYaml(TWO_SERVICES.replace(/---\napiVersion: networking.istio.io\/v1\nkind: DestinationRule[\s\S]*$/, '') + yaml);
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  const s = compile(m.config, m.registry, { workload: 'web-v1', namespace: 'shop' });
  return s.clusters.find((c) => c.name === 'outbound|80||api.shop.svc.cluster.local')!.tls;
};

test('auto mTLS: ISTIO_MUTUAL with the service\'s identities for secure naming', () => {
  const t = apiTls('');
  assert.equal(t.mode, 'ISTIO_MUTUAL');
  assert.deepEqual(t.subjectAltNames, ['spiffe://cluster.local/ns/shop/sa/api']);
});

test('DISABLE: plaintext, nothing else carried', () => {
  assert.deepEqual(apiTls(dr('{ mode: DISABLE }')), { mode: 'DISABLE', subjectAltNames: [] });
});

test('MUTUAL: the certificate files, the CA file, SNI and SANs travel to the proxy; SIMPLE carries no client files', () => {
  assert.deepEqual(apiTls(dr('{ mode: MUTUAL, clientCertificate: /etc/certs/c.pem, privateKey: /etc/certs/k.pem, caCertificates: /etc/certs/ca.pem, sni: api.example.com, subjectAltNames: [api.example.com] }')), {
    mode: 'MUTUAL', sni: 'api.example.com', subjectAltNames: ['api.example.com'],
    caCertificates: '/etc/certs/ca.pem', clientCertificate: '/etc/certs/c.pem', privateKey: '/etc/certs/k.pem',
  });
  assert.deepEqual(apiTls(dr('{ mode: SIMPLE, caCertificates: /etc/certs/ca.pem }')), { mode: 'SIMPLE', subjectAltNames: [], caCertificates: '/etc/certs/ca.pem' });
  assert.deepEqual(apiTls(dr('{ mode: SIMPLE, insecureSkipVerify: true }')), { mode: 'SIMPLE', subjectAltNames: [], insecureSkipVerify: true });
});
