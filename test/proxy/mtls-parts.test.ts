/**
 * The pure parts of mTLS in the proxy: subject alternative names as Node
 * prints them, principals, the secure-naming check, what TLS errors mean,
 * the pool key's TLS part, and WorkloadTls's handling of repeated material.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { checkSecureNaming, parseSubjectAltNames, principalOf, spiffeIdOf, tlsFailureReason, upstreamTlsError, UpstreamTlsError } from '../../src/proxy/tls/identity.js';
import { tlsKey } from '../../src/proxy/tls/upstream-connector.js';
import { WorkloadTls } from '../../src/proxy/tls/workload-tls.js';
import { createTestCa, issueLeaf, spiffeId } from '../helpers/test-pki.js';

const cert = (subjectaltname: string) => ({ subjectaltname }) as PeerCertificate;

test('mtls parts: subject alternative names, quoted values included, and the SPIFFE ID among them', () => {
  assert.deepEqual(parseSubjectAltNames('DNS:a.example, URI:spiffe://cluster.local/ns/x/sa/y, IP Address:127.0.0.1'), [
    { type: 'DNS', value: 'a.example' },
    { type: 'URI', value: 'spiffe://cluster.local/ns/x/sa/y' },
    { type: 'IP Address', value: '127.0.0.1' },
  ]);
  // Node quotes a value with a comma (or other special characters) as JSON.
  assert.deepEqual(parseSubjectAltNames('URI:"spiffe://td/ns/a,b/sa/c", DNS:x'), [{ type: 'URI', value: 'spiffe://td/ns/a,b/sa/c' }, { type: 'DNS', value: 'x' }]);
  assert.equal(spiffeIdOf('URI:https://example.com/, URI:spiffe://cluster.local/ns/x/sa/y'), 'spiffe://cluster.local/ns/x/sa/y');
  assert.equal(spiffeIdOf('DNS:only.example'), undefined);
  assert.equal(spiffeIdOf(undefined), undefined);
  assert.equal(principalOf('spiffe://cluster.local/ns/x/sa/y'), 'cluster.local/ns/x/sa/y');
});

test('mtls parts: secure naming accepts a listed URI SAN, refuses others with both lists in the message', () => {
  const expected = ['spiffe://cluster.local/ns/shop/sa/api', 'spiffe://cluster.local/ns/shop/sa/api-canary'];
  assert.equal(checkSecureNaming(cert('URI:spiffe://cluster.local/ns/shop/sa/api-canary'), expected, '10.0.0.1:15006'), undefined);
  const e = checkSecureNaming(cert('URI:spiffe://cluster.local/ns/shop/sa/web'), expected, '10.0.0.1:15006');
  assert.ok(e instanceof UpstreamTlsError);
  assert.equal(e.reason, 'secure_naming');
  assert.equal(e.message, 'secure naming: server 10.0.0.1:15006 presented spiffe://cluster.local/ns/shop/sa/web, expected one of spiffe://cluster.local/ns/shop/sa/api, spiffe://cluster.local/ns/shop/sa/api-canary');
  // A DNS SAN with the same text is not a URI SAN.
  assert.ok(checkSecureNaming(cert('DNS:spiffe://cluster.local/ns/shop/sa/api'), expected, 'x:1'));
  // No names to check: any certificate of the bundle will do (Istio's rule).
  assert.equal(checkSecureNaming(cert('URI:spiffe://cluster.local/ns/shop/sa/web'), [], 'x:1'), undefined);
});

test('mtls parts: TLS errors get a reason; other errors are not TLS failures', () => {
  assert.equal(tlsFailureReason({ code: 'CERT_HAS_EXPIRED' }), 'expired');
  assert.equal(tlsFailureReason({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), 'untrusted');
  assert.equal(tlsFailureReason({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }), 'no_certificate');
  assert.equal(tlsFailureReason({ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }), 'handshake');
  assert.equal(tlsFailureReason({ code: 'ECONNREFUSED' }), undefined);
  assert.equal(upstreamTlsError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'x:1'), undefined);
  const e = upstreamTlsError(Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }), '10.0.0.2:80')!;
  assert.equal(e.code, 'TRL_PROXY_UPSTREAM_TLS');
  assert.equal(e.message, 'TLS to 10.0.0.2:80: its certificate is expired or not yet valid (CERT_HAS_EXPIRED: certificate has expired)');
});

test('mtls parts: the pool key has the TLS mode and names; plaintext adds nothing', () => {
  assert.equal(tlsKey(undefined, 'api'), '');
  assert.equal(tlsKey({ mode: 'DISABLE', subjectAltNames: [] }, 'api'), '');
  const a = tlsKey({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://td/ns/a/sa/x'] }, 'api');
  const b = tlsKey({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://td/ns/a/sa/y'] }, 'api');
  const c = tlsKey({ mode: 'SIMPLE', subjectAltNames: ['spiffe://td/ns/a/sa/x'] }, 'api');
  assert.notEqual(a, b);
  assert.notEqual(a, c);
  assert.notEqual(a, '');
});

test('mtls parts: WorkloadTls changes (and counts a generation) only when the material does', async () => {
  const ca = await createTestCa();
  const leaf = await issueLeaf(ca, spiffeId('shop', 'api'));
  const w = new WorkloadTls();
  let changes = 0;
  w.onChange(() => changes++);
  assert.equal(w.ready, false);
  assert.equal(new WorkloadTls().serverOptions, undefined, 'no server material without a certificate');
  w.setCertificate(leaf);
  w.setTrustBundle([ca.certPem]);
  assert.equal(w.ready, true);
  assert.equal(changes, 2);
  const g = w.generation;
  // The agent hands the bundle over with every snapshot, the certificate with every renewal check.
  w.setTrustBundle([ca.certPem]);
  w.setCertificate({ keyPem: leaf.keyPem, certChainPem: leaf.certChainPem });
  assert.equal(w.generation, g, 'the same material is no change');
  assert.equal(changes, 2);
  assert.deepEqual({ ...w.certificate, notBefore: '', notAfter: '' }, { spiffeId: leaf.spiffeId, serial: leaf.serial, notBefore: '', notAfter: '' });
  assert.equal(w.serverOptions?.minVersion, 'TLSv1.3', 'TLS 1.3 only between proxies');
  const other = await issueLeaf(ca, spiffeId('shop', 'api'));
  w.setCertificate(other);
  assert.equal(w.generation, g + 1);
  assert.equal(w.certificate?.serial, other.serial);
});
