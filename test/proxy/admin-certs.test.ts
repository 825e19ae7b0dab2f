/**
 * Certificate status on the admin port: `GET /certs` (the workload
 * certificate in use: identity, serial, validity, seconds left; the trust
 * bundle's roots with their sha256 fingerprints) and the gauge
 * `trellis_proxy_certificate_expiry_seconds` on `/metrics`. Real parts: an
 * admin server on a real port, the WorkloadTls the data plane keeps its
 * material in, certificates made by the project's CA from the proxy's own
 * key and CSR, and prom-client's text read back by the test's parser.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { fingerprintOfRoot } from '../../src/ca/cert-info.js';
import { createAdminServer, type CertsStatus } from '../../src/proxy/admin-server.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import { listen, stopListening } from '../../src/proxy/http-server.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';
import { WorkloadTls } from '../../src/proxy/tls/workload-tls.js';
import { ProxyTelemetry } from '../../src/telemetry/proxy-telemetry.js';
import { MeshPki } from '../helpers/mtls-pki.js';
import { parsePrometheusText, select } from '../telemetry/prom-text.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/api';
const GAUGE = 'trellis_proxy_certificate_expiry_seconds';
const HOUR = 3_600_000;

let pki: MeshPki;
let other: MeshPki;
let tls: WorkloadTls;
let telemetry: ProxyTelemetry;
let admin: ReturnType<typeof createAdminServer>;
let at = '';

before(async () => {
  pki = await MeshPki.create();
  other = await MeshPki.create();
  tls = new WorkloadTls();
  telemetry = new ProxyTelemetry({});
  new ProxyMetrics(telemetry.registry, () => ({ activeRequests: 0, upstreamPools: 0, certificate: tls.certificate }));
  admin = createAdminServer({
    telemetry,
    snapshot: () => undefined,
    notReady: () => undefined,
    certificate: () => tls.certificate,
    trustBundle: () => tls.roots,
  });
  at = `127.0.0.1:${await listen(admin, '127.0.0.1', 0)}`;
});

after(async () => {
  admin.closeAllConnections();
  await stopListening(admin);
  await telemetry.close();
  pki?.close();
  other?.close();
});

async function certs(address = at): Promise<CertsStatus> {
  const r = await fetch(`http://${address}/certs`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  return (await r.json()) as CertsStatus;
}

/** The gauge's samples as [value, identity label]. */
async function expiryGauge(address = at): Promise<[number, string | undefined][]> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  return select(parsePrometheusText(text).get(GAUGE), {}).map((s) => [s.value, s.labels['identity']]);
}

test('without a certificate: /certs says null for the certificate, lists no roots, and the expiry gauge is absent', async () => {
  assert.deepEqual(await certs(), { identity: null, serial: null, notBefore: null, notAfter: null, expiresInSeconds: null, trustBundle: [] });
  assert.deepEqual(await expiryGauge(), []);
});

test('/certs shows the certificate in use and the bundle\'s fingerprints; the gauge counts the seconds to notAfter', async () => {
  const leaf = await pki.issue(ID, 2 * HOUR);
  tls.setCertificate(leaf);
  tls.setTrustBundle([pki.rootPem]);
  const x = new X509Certificate(leaf.certChainPem);
  const c = await certs();
  assert.equal(c.identity, ID);
  assert.equal(c.serial, x.serialNumber);
  assert.equal(c.notBefore, new Date(x.validFrom).toISOString());
  assert.equal(c.notAfter, new Date(x.validTo).toISOString());
  const left = (Date.parse(x.validTo) - Date.now()) / 1000;
  assert.ok(c.expiresInSeconds! <= left + 1 && c.expiresInSeconds! > left - 60, `${c.expiresInSeconds} s left, expected about ${left}`);
  assert.ok(c.expiresInSeconds! > 3_500 && c.expiresInSeconds! <= 7_200, 'a two-hour certificate');
  const root = new X509Certificate(pki.rootPem);
  assert.deepEqual(c.trustBundle, [{ sha256: fingerprintOfRoot(pki.rootPem), subject: root.subject.split('\n').join(', '), notAfter: new Date(root.validTo).toISOString() }]);
  assert.match(c.trustBundle[0]!.sha256, /^[0-9a-f]{64}$/);
  const [[g, identity] = [], ...more] = await expiryGauge();
  assert.deepEqual(more, []);
  assert.equal(identity, ID, 'labelled with the SPIFFE ID');
  assert.ok(g! <= left + 1 && g! > left - 60, `gauge ${g}, expected about ${left}`);
});

test('after a rotation /certs and the gauge follow the new certificate; a root rotation lists both roots in order', async () => {
  const first = await certs();
  const leaf = await pki.issue(ID, 24 * HOUR);
  tls.setCertificate(leaf);
  tls.setTrustBundle([pki.rootPem, other.rootPem]);
  const c = await certs();
  assert.notEqual(c.serial, first.serial);
  assert.equal(c.serial, new X509Certificate(leaf.certChainPem).serialNumber);
  assert.ok(c.expiresInSeconds! > 23 * 3_600, `${c.expiresInSeconds} s left on a 24 h certificate`);
  assert.deepEqual(c.trustBundle.map((r) => r.sha256), [fingerprintOfRoot(pki.rootPem), fingerprintOfRoot(other.rootPem)]);
  assert.notEqual(c.trustBundle[0]!.sha256, c.trustBundle[1]!.sha256);
  const samples = await expiryGauge();
  assert.equal(samples.length, 1, 'one series: the certificate in use');
  assert.ok(samples[0]![0] > 23 * 3_600, `gauge ${samples[0]![0]}`);
});

test('an unknown admin path lists /certs among the endpoints', async () => {
  const r = await fetch(`http://${at}/nope`);
  assert.equal(r.status, 404);
  assert.match(await r.text(), /\/certs/);
});

test('a data plane serves /certs and the expiry gauge for the certificate it was given', async () => {
  const dp = createDataPlane({ mode: 'sidecar', mtlsWithoutCertificate: 'plaintext', telemetry: {} });
  try {
    await dp.start();
    const leaf = await pki.issue(ID, 2 * HOUR);
    dp.setCertificate(leaf);
    dp.setTrustBundle([pki.rootPem]);
    const c = await certs(dp.addresses.admin);
    assert.deepEqual([c.identity, c.serial], [ID, dp.certificate!.serial]);
    assert.deepEqual(c.trustBundle.map((r) => r.sha256), [fingerprintOfRoot(pki.rootPem)]);
    const [[g, identity] = []] = await expiryGauge(dp.addresses.admin);
    assert.equal(identity, ID);
    assert.ok(g! > 3_500 && g! <= 7_200, `gauge ${g}`);
  } finally {
    await dp.close(100);
  }
});
