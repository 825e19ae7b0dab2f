/**
 * One-time join tokens: the token's readable parts, mint and redeem, each
 * refusal (replayed, expired, mismatch, unknown, malformed) with a log line
 * that never holds the secret, persistence in a 0600 file that holds only
 * hashes, and forgetting tokens once they expire.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaError } from '../../src/ca/errors.js';
import { JoinTokenStore, parseJoinToken, type JoinBinding, type RedeemResult } from '../../src/ca/join-token.js';

const dir = mkdtempSync(join(tmpdir(), 'trellis-join-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const storeFile = () => join(dir, `s${n++}`, 'join-tokens.json');

const FP = 'ab'.repeat(32);
const BINDING: JoinBinding = {
  instance: 'debit-credit-1.bank',
  identity: 'spiffe://cluster.local/ns/bank/sa/debit-credit',
  labels: { app: 'debit-credit', version: 'v1' },
  serviceAccount: 'debit-credit',
  locality: 'eu-west/zone-a',
};
const HOUR = 3600_000;
const secretOf = (token: string) => token.split('.')[4]!;
const refused = (r: RedeemResult) => {
  assert.equal(r.ok, false);
  return r as Extract<RedeemResult, { ok: false }>;
};

test('a token reads trellis-join.v1.<instance>.<root hash>.<secret>, and parseJoinToken gives back the instance and root hash', () => {
  const token = new JoinTokenStore(storeFile()).mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  assert.match(token, /^trellis-join\.v1\.[A-Za-z0-9_-]+\.[0-9a-f]{64}\.[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(parseJoinToken(token), { ok: true, instance: BINDING.instance, rootFingerprint: FP });
  const other = new JoinTokenStore(storeFile()).mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  assert.notEqual(secretOf(other), secretOf(token), 'the secret is random');
});

test('parseJoinToken explains what is wrong with a string that is not a token', () => {
  const good = new JoinTokenStore(storeFile()).mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  const cases: [string, RegExp][] = [
    ['hello', /does not start with trellis-join\. or does not have 5 parts/],
    [good.replace('.v1.', '.v9.'), /version "v9" is not v1/],
    [good.replace(FP, 'AB'.repeat(32)), /root hash is not 64 lowercase hex/],
    [good.slice(0, -2), /secret part is not 32 bytes/],
    [good.replace(/^trellis-join\.v1\.[^.]+/, 'trellis-join.v1.*'), /instance part is not base64url/],
  ];
  for (const [token, why] of cases) {
    const r = parseJoinToken(token);
    assert.equal(r.ok, false, token);
    assert.match((r as { message: string }).message, why);
  }
});

test('redeem accepts a token once, for its instance, and returns the configured binding', () => {
  const store = new JoinTokenStore(storeFile());
  const token = store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  assert.deepEqual(store.redeem(token, BINDING.instance), { ok: true, binding: BINDING });
});

test('a second redeem of the same token is refused as replayed, with a log line without the secret', () => {
  const store = new JoinTokenStore(storeFile());
  const token = store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  assert.equal(store.redeem(token, BINDING.instance).ok, true);
  const r = refused(store.redeem(token, BINDING.instance));
  assert.equal(r.reason, 'replayed');
  assert.match(r.message, /join token for instance "debit-credit-1\.bank" refused: it was already used at \d{4}-\d\d-\d\dT/);
  assert.ok(!r.message.includes(secretOf(token)));
});

test('a token past its ttl is refused as expired (injected clock)', () => {
  let now = Date.UTC(2030, 5, 1);
  const store = new JoinTokenStore(storeFile(), { now: () => now });
  const token = store.mint(BINDING, { ttlMs: 10 * 60_000, rootFingerprint: FP });
  now += 10 * 60_000;
  const r = refused(store.redeem(token, BINDING.instance));
  assert.equal(r.reason, 'expired');
  assert.match(r.message, /expired at 2030-06-01T00:10:00\.000Z; mint a new one/);
  now -= 1;
  assert.equal(store.redeem(token, BINDING.instance).ok, true, 'one millisecond before, it was still good');
});

test('a token minted for another instance is refused as mismatch, and stays usable by its own instance', () => {
  const store = new JoinTokenStore(storeFile());
  const token = store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  const r = refused(store.redeem(token, 'frontend-1.bank'));
  assert.equal(r.reason, 'mismatch');
  assert.match(r.message, /minted for instance "debit-credit-1\.bank", but the proxy says it serves "frontend-1\.bank"/);
  assert.equal(store.redeem(token, BINDING.instance).ok, true);
});

test('a well-formed token this store never minted, or one with any part altered, is unknown', () => {
  const store = new JoinTokenStore(storeFile());
  const token = store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  const foreign = new JoinTokenStore(storeFile()).mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  assert.equal(refused(store.redeem(foreign, BINDING.instance)).reason, 'unknown');
  const otherRoot = token.replace(FP, 'cd'.repeat(32));
  assert.equal(refused(store.redeem(otherRoot, BINDING.instance)).reason, 'unknown', 'the root hash is bound to the secret');
  const s = secretOf(token);
  const flipped = token.slice(0, -s.length) + (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  const r = refused(store.redeem(flipped, BINDING.instance));
  assert.equal(r.reason, 'unknown');
  assert.ok(!r.message.includes(s.slice(1)));
  assert.equal(store.redeem(token, BINDING.instance).ok, true, 'the real token is untouched by the attempts');
});

test('a string that is not a token is refused as malformed', () => {
  const r = refused(new JoinTokenStore(storeFile()).redeem('trellis-join.v1.x', 'a'));
  assert.equal(r.reason, 'malformed');
  assert.match(r.message, /^join token refused: not a Trellis join token/);
});

test('tokens persist: a new store on the same file redeems a token minted by the old one, and knows it was used', () => {
  const file = storeFile();
  const first = new JoinTokenStore(file);
  const a = first.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  const b = first.mint({ ...BINDING, instance: 'debit-credit-2.bank' }, { ttlMs: HOUR, rootFingerprint: FP });
  assert.equal(first.redeem(a, BINDING.instance).ok, true);
  const second = new JoinTokenStore(file);
  assert.equal(refused(second.redeem(a, BINDING.instance)).reason, 'replayed');
  assert.deepEqual(second.redeem(b, 'debit-credit-2.bank'), { ok: true, binding: { ...BINDING, instance: 'debit-credit-2.bank' } });
});

test('the store file is 0600 and holds hashes, never a secret', () => {
  const file = storeFile();
  const store = new JoinTokenStore(file);
  const tokens = [store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP }), store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP })];
  store.redeem(tokens[0]!, BINDING.instance);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const text = readFileSync(file, 'utf8');
  for (const t of tokens) {
    assert.ok(!text.includes(secretOf(t)), 'no secret in the file');
    assert.ok(!text.includes(t));
  }
  assert.equal((text.match(/"sha256": "[0-9a-f]{64}"/g) ?? []).length, 2);
});

test('expired tokens, used or not, are forgotten: afterwards they are unknown and leave the file', () => {
  let now = Date.UTC(2030, 0, 1);
  const file = storeFile();
  const store = new JoinTokenStore(file, { now: () => now });
  const used = store.mint(BINDING, { ttlMs: 60_000, rootFingerprint: FP });
  store.mint(BINDING, { ttlMs: 60_000, rootFingerprint: FP });
  store.redeem(used, BINDING.instance);
  assert.equal(store.list().length, 2);
  now += 61_000;
  store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: FP });
  assert.deepEqual(store.list().map((t) => t.expiresAt.getTime()), [now + HOUR]);
  assert.equal(refused(new JoinTokenStore(file, { now: () => now }).redeem(used, BINDING.instance)).reason, 'unknown');
});

test('mint refuses a binding without an instance or a SPIFFE identity, a bad root hash and a non-positive ttl', () => {
  const store = new JoinTokenStore(storeFile());
  assert.throws(() => store.mint({ ...BINDING, instance: '' }, { ttlMs: HOUR, rootFingerprint: FP }), CaError);
  assert.throws(() => store.mint({ ...BINDING, identity: 'debit-credit' }, { ttlMs: HOUR, rootFingerprint: FP }), /needs a SPIFFE identity/);
  assert.throws(() => store.mint(BINDING, { ttlMs: HOUR, rootFingerprint: 'abc' }), /64 lowercase hex/);
  assert.throws(() => store.mint(BINDING, { ttlMs: 0, rootFingerprint: FP }), /must be positive/);
});

test('a damaged store file is refused with its name', () => {
  const file = join(dir, 'damaged.json');
  writeFileSync(file, '{"version": 1, "tokens": ');
  assert.throws(() => new JoinTokenStore(file), (e: unknown) => e instanceof CaError && e.message.includes(`${file} is damaged`));
});
