/**
 * The control plane's CA service, as proxies meet it: a join token joins
 * once, for its instance, while the instance is what the token was minted
 * for; an expired one is refused; a certificate from another CA proves
 * nothing; the stream takes only the instance its certificate names. Each
 * refusal is one log line that says why and never holds the secret.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestCa, issueLeaf } from '../helpers/test-pki.js';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { meshService, STREAM_CHANNEL_OPTIONS } from '../../src/protocol/stream.js';
import { IdentityClient, IdentityError } from '../../src/proxy/identity-client.js';
import { formatEvent } from '../../src/controlplane/events.js';
import { certificateFor, ConfigDir, SHOP, startControlPlane, StreamClient, waitFor, type TestControlPlane } from './helpers.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function mesh(): Promise<{ t: TestControlPlane; dir: ConfigDir }> {
  const dir = new ConfigDir({ 'app.yaml': SHOP });
  cleanup.push(() => dir.remove());
  const t = await startControlPlane(dir.path);
  cleanup.push(() => t.cp.close());
  return { t, dir };
}

async function join(t: TestControlPlane, instance: string, joinToken: string): Promise<string> {
  const id = new IdentityClient({ controlPlane: t.grpc, instance, joinToken, onCertificate: () => {} });
  try {
    return (await id.start()).identity;
  } catch (e) {
    assert.ok(e instanceof IdentityError);
    return `refused: ${e.message}`;
  } finally {
    id.close();
  }
}

const refusals = (t: TestControlPlane) => t.events.filter((e) => e.type === 'certify-refused').map(formatEvent);

test('a join token joins once, with the identity the configuration gives the instance', async () => {
  const { t } = await mesh();
  const token = t.cp.mintJoinToken('api-v2.shop');
  assert.equal(await join(t, 'api-v2.shop', token), 'spiffe://cluster.local/ns/shop/sa/api');
  assert.match(await join(t, 'api-v2.shop', token), /^refused: .*join token refused \(replayed\)/);
  const [line] = refusals(t);
  assert.match(line!, /^certificate refused instance=api-v2\.shop peer=\S+: join token refused \(replayed\)/);
  assert.ok(!line!.includes(token.split('.').at(-1)!), 'the secret is not logged');
});

test('an expired token is refused; so is one whose instance changed its labels since it was minted', async () => {
  const { t, dir } = await mesh();
  const expired = t.cp.mintJoinToken('api-v2.shop', 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.match(await join(t, 'api-v2.shop', expired), /join token refused \(expired\)/);
  const token = t.cp.mintJoinToken('api-v2.shop');
  dir.write('app.yaml', SHOP.replace('{ name: api-v2, labels: { version: v2 }', '{ name: api-v2, labels: { version: v2, group: fundsTransfer }'));
  await waitFor('the edit in force', () => t.events.filter((e) => e.type === 'config-loaded').length >= 2 || undefined, 5000, 50);
  assert.match(await join(t, 'api-v2.shop', token), /minted for instance "api-v2\.shop" with labels \{"version":"v2","app":"api"\}, but the configuration now gives it .*fundsTransfer.*; mint a new token/);
});

test('a certificate from another CA proves nothing; the stream takes only the instance the certificate names', async () => {
  const { t } = await mesh();
  // A client certificate for web from a foreign CA: the call counts as carrying no certificate, and without a token it is refused.
  const foreign = await createTestCa('foreign root');
  const leaf = await issueLeaf(foreign, 'spiffe://cluster.local/ns/shop/sa/web');
  const { newKeyAndCsr } = await import('../../src/ca/workload-key.js');
  const { csrPem } = await newKeyAndCsr('spiffe://cluster.local/ns/shop/sa/web');
  const client = new Client(t.grpc, credentials.createSsl(Buffer.from(t.cp.identity.trustBundle().join('\n')), Buffer.from(leaf.keyPem), Buffer.from(leaf.certChainPem), { checkServerIdentity: () => undefined }), STREAM_CHANNEL_OPTIONS);
  cleanup.push(() => client.close());
  const err = await new Promise<ServiceError | null>((resolve) => client.makeUnaryRequest(meshService.certify.path, meshService.certify.requestSerialize, meshService.certify.responseDeserialize,
    { instance: 'web.shop', csr: csrPem }, (e: ServiceError | null) => resolve(e)));
  assert.equal(err?.code, 7, 'PERMISSION_DENIED');
  assert.match(err!.details, /neither a client certificate nor a join token/);
  // A valid certificate of api-v2, used to say hello as web: refused (TRL1207).
  const cert = await certificateFor(t.grpc, 'api-v2.shop');
  assert.equal(cert?.identity, 'spiffe://cluster.local/ns/shop/sa/api');
  const c = StreamClient.withCertificate(t.grpc, cert!, 'web.shop', '127.0.0.1:45999');
  cleanup.push(() => c.close());
  const refused = await waitFor('refused', () => c.received.find((m) => m.type === 'refused'), 5000);
  assert.equal(refused.type === 'refused' && refused.code, 'TRL1207');
  assert.match(refused.type === 'refused' ? refused.reason : '', /instance "web\.shop" connected with the certificate of spiffe:\/\/cluster\.local\/ns\/shop\/sa\/api, but the configuration gives it the identity spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/);
});

test('a renewal that failed because the control plane moved to a new root is tried again as soon as the new trust bundle arrives', async () => {
  const dir = new ConfigDir({ 'app.yaml': SHOP });
  cleanup.push(() => dir.remove());
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join: joinPath } = await import('node:path');
  const stateDir = mkdtempSync(joinPath(tmpdir(), 'trellis-certify-'));
  cleanup.push(() => rmSync(stateDir, { recursive: true, force: true }));
  // Two-minute certificates: a failed renewal is retried 12 s later (a fifth of the half life), far beyond what the test waits.
  const t = await startControlPlane(dir.path, { stateDir, workloadCertTtlMs: 120_000 });
  cleanup.push(() => t.cp.close());
  const lines: string[] = [];
  const certs: { bundle: readonly string[]; at: number }[] = [];
  let failedAt = 0;
  // The clock runs 57 s ahead, so the first renewal comes 3 s after the first certificate.
  let ahead = 57_000;
  const id: IdentityClient = new IdentityClient({
    controlPlane: t.grpc, instance: 'web.shop', joinToken: t.cp.mintJoinToken('web.shop'), retryMs: 60_000, now: () => Date.now() + ahead,
    onCertificate: (c) => certs.push({ bundle: c.trustBundle, at: Date.now() }),
    log: (line) => {
      lines.push(line);
      if (!line.startsWith('certificate renewal failed')) return;
      failedAt = Date.now();
      // The snapshot with both roots reaches the proxy just after its renewal failed (the retry is scheduled by then).
      setImmediate(() => id.setTrustBundle(t.cp.identity.trustBundle()));
    },
  });
  cleanup.push(() => id.close());
  await id.start();
  assert.equal(certs.length, 1);
  const oldRoot = certs[0]!.bundle;
  await t.cp.identity.rotateRoot();
  const renewed = await waitFor('a certificate from the new root', () => certs.length >= 2 && certs[1], 20_000, 20);
  ahead = 0;
  const failures = lines.filter((l) => l.startsWith('certificate renewal failed'));
  assert.equal(failures.length, 1, lines.join('\n'));
  assert.match(failures[0]!, /self-signed certificate in certificate chain/, 'it failed for the new root it could not verify yet');
  const retryMs = Number(/trying again in (\d+) ms/.exec(failures[0]!)?.[1]);
  assert.ok(retryMs >= 10_000, `the timer's retry is ${retryMs} ms away`);
  assert.ok(renewed.at - failedAt < retryMs / 2, `renewed ${renewed.at - failedAt} ms after the failure: the timer's retry, not the new bundle, did it`);
  assert.equal(renewed.bundle.length, 2, 'the new certificate comes with both roots');
  assert.notDeepEqual(renewed.bundle, oldRoot);
  assert.equal(t.cp.identity.status().issued.find((i) => i.instance === 'web.shop')?.fromSigningRoot, true, 'issued by the new root');
});
