/**
 * One-time join tokens: how a proxy proves which configured instance it is
 * before it has a certificate. A token reads
 * `trellis-join.v1.<instance b64url>.<root sha256 hex>.<32 random bytes b64url>`:
 * the proxy reads the instance and pins the control plane's TLS root with the
 * hash before it sends anything; the random part is the secret. The control
 * plane keeps only a SHA-256 of each token, in a 0600 JSON file, and forgets
 * a token (used or not) when it expires.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CA_ERRORS, CaError } from './errors.js';
import { isSpiffeId } from './spiffe.js';

/** The configured workload a token is bound to: what the instance is comes from config, never from the proxy. */
export interface JoinBinding {
  readonly instance: string;
  /** The SPIFFE ID the instance's certificate will carry. */
  readonly identity: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly serviceAccount?: string;
  /** `region/zone/subzone`. */
  readonly locality?: string;
}

/** Why a token was refused. */
export type RedeemFailure = 'unknown' | 'replayed' | 'expired' | 'mismatch' | 'malformed';

/** The result of `redeem`: the binding, or a reason and a log line (which never holds the secret). */
export type RedeemResult =
  | { readonly ok: true; readonly binding: JoinBinding }
  | { readonly ok: false; readonly reason: RedeemFailure; readonly message: string };

/** The public parts of a token, readable by the proxy. */
export interface ParsedJoinToken {
  readonly instance: string;
  /** sha256 of the CA root's DER, lowercase hex. */
  readonly rootFingerprint: string;
}

const PREFIX = 'trellis-join';
const VERSION = 'v1';
const FINGERPRINT = /^[0-9a-f]{64}$/;
const SECRET = /^[A-Za-z0-9_-]{43}$/; // 32 bytes, base64url without padding
const B64URL = /^[A-Za-z0-9_-]+$/;

/** Reads the instance and root hash of a token, or says why it is not one. */
export function parseJoinToken(token: string): ({ ok: true } & ParsedJoinToken) | { ok: false; message: string } {
  const bad = (why: string) => ({ ok: false as const, message: `not a Trellis join token (${why}); expected ${PREFIX}.${VERSION}.<instance>.<root hash>.<secret>` });
  const parts = token.trim().split('.');
  if (parts.length !== 5 || parts[0] !== PREFIX) return bad(`it does not start with ${PREFIX}. or does not have 5 parts`);
  const [, version, instance64, fingerprint, secret] = parts as [string, string, string, string, string];
  if (version !== VERSION) return bad(`version ${JSON.stringify(version.slice(0, 20))} is not ${VERSION}`);
  if (!B64URL.test(instance64)) return bad('the instance part is not base64url');
  const instance = Buffer.from(instance64, 'base64url').toString('utf8');
  if (instance === '' || Buffer.from(instance, 'utf8').toString('base64url') !== instance64) return bad('the instance part does not decode');
  if (!FINGERPRINT.test(fingerprint)) return bad('the root hash is not 64 lowercase hex digits');
  if (!SECRET.test(secret)) return bad('the secret part is not 32 bytes of base64url');
  return { ok: true, instance, rootFingerprint: fingerprint };
}

interface Entry {
  /** sha256 of the whole token, hex: binds instance, root hash and secret together. */
  readonly sha256: string;
  readonly binding: JoinBinding;
  readonly rootFingerprint: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  usedAt?: number;
}

interface StoreFile {
  readonly version: 1;
  readonly tokens: Entry[];
}

/** What `list()` shows about a token (never its secret or hash). */
export interface JoinTokenInfo {
  readonly instance: string;
  readonly identity: string;
  readonly expiresAt: Date;
  readonly usedAt?: Date;
}

function hashOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The control plane's join tokens, kept in a JSON file (0600) so that
 * restarts keep them. `mint` returns a token once; `redeem` accepts it once.
 */
/** For sleeping while another process holds the lock (the store is synchronous). */
const SLEEP = new Int32Array(new SharedArrayBuffer(4));

export class JoinTokenStore {
  readonly #file: string;
  readonly #now: () => number;
  #entries: Entry[];

  /** Opens (or starts) the store in `file`. `now` is the clock, for tests. */
  constructor(file: string, opts: { now?: () => number } = {}) {
    this.#file = file;
    this.#now = opts.now ?? Date.now;
    this.#entries = this.#load();
  }

  /**
   * A new one-time token for `binding`, valid `ttlMs`, carrying
   * `rootFingerprint` (the CA's `rootFingerprint`).
   */
  mint(binding: JoinBinding, opts: { ttlMs: number; rootFingerprint: string }): string {
    return this.#locked(() => this.#mint(binding, opts));
  }

  #mint(binding: JoinBinding, opts: { ttlMs: number; rootFingerprint: string }): string {
    if (!binding.instance) throw new CaError(CA_ERRORS.JOIN_TOKEN, 'a join token needs the instance it is for');
    if (!isSpiffeId(binding.identity)) throw new CaError(CA_ERRORS.JOIN_TOKEN, `a join token for ${JSON.stringify(binding.instance)} needs a SPIFFE identity, not ${JSON.stringify(binding.identity)}`);
    if (!FINGERPRINT.test(opts.rootFingerprint)) throw new CaError(CA_ERRORS.JOIN_TOKEN, 'the root fingerprint of a join token must be 64 lowercase hex digits (sha256 of the root)');
    if (!Number.isFinite(opts.ttlMs) || opts.ttlMs <= 0) throw new CaError(CA_ERRORS.JOIN_TOKEN, `a join token lifetime of ${opts.ttlMs} ms is refused: it must be positive`);
    const now = this.#now();
    const instance64 = Buffer.from(binding.instance, 'utf8').toString('base64url');
    const token = [PREFIX, VERSION, instance64, opts.rootFingerprint, randomBytes(32).toString('base64url')].join('.');
    this.#prune(now);
    this.#entries.push({
      sha256: hashOf(token).toString('hex'),
      binding: structuredClone(binding),
      rootFingerprint: opts.rootFingerprint,
      createdAt: now,
      expiresAt: now + opts.ttlMs,
    });
    this.#save();
    return token;
  }

  /**
   * Accepts `token` once, for the proxy that says it serves `instance`:
   * `malformed` (not a token), `unknown` (not minted here, or forgotten after
   * expiry), `mismatch` (minted for another instance), `replayed` (used
   * before), `expired`. Hashes are compared in constant time.
   */
  redeem(token: string, instance: string): RedeemResult {
    return this.#locked(() => this.#redeem(token, instance));
  }

  /**
   * Runs `fn` holding the store's lock file (`<file>.lock`, O_EXCL) on the
   * entries as the file has them now: `trellis up` and `trellis token create`
   * mint into the file a running control plane redeems from.
   */
  #locked<T>(fn: () => T): T {
    const lock = `${this.#file}.lock`;
    mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
    const deadline = Date.now() + 5000;
    let fd: number | undefined;
    while (fd === undefined) {
      try {
        fd = openSync(lock, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // A lock left by a process that died holding it is stale after 10 s (holding it takes milliseconds).
        try { if (Date.now() - statSync(lock).mtimeMs > 10_000) rmSync(lock, { force: true }); } catch { /* gone meanwhile */ }
        if (Date.now() > deadline) throw new CaError(CA_ERRORS.BAD_FILE, `the join token store ${this.#file} stayed locked for 5 s (${lock}); remove the lock file if no trellis process is using it`);
        Atomics.wait(SLEEP, 0, 0, 5);
      }
    }
    try {
      this.#entries = this.#load();
      return fn();
    } finally {
      closeSync(fd);
      rmSync(lock, { force: true });
    }
  }

  #redeem(token: string, instance: string): RedeemResult {
    const parsed = parseJoinToken(token);
    if (!parsed.ok) return { ok: false, reason: 'malformed', message: `join token refused: ${parsed.message}` };
    const who = JSON.stringify(parsed.instance);
    const now = this.#now();
    const digest = hashOf(token.trim());
    let found: Entry | undefined;
    for (const e of this.#entries) {
      if (timingSafeEqual(digest, Buffer.from(e.sha256, 'hex'))) found = e;
    }
    if (!found) {
      return { ok: false, reason: 'unknown', message: `join token for instance ${who} refused: this control plane did not mint it, or it expired and was forgotten; mint a new one` };
    }
    if (found.binding.instance !== instance) {
      return { ok: false, reason: 'mismatch', message: `join token refused: it was minted for instance ${JSON.stringify(found.binding.instance)}, but the proxy says it serves ${JSON.stringify(instance)}` };
    }
    if (found.usedAt !== undefined) {
      return { ok: false, reason: 'replayed', message: `join token for instance ${who} refused: it was already used at ${new Date(found.usedAt).toISOString()} (a token joins once); mint a new one` };
    }
    if (now >= found.expiresAt) {
      return { ok: false, reason: 'expired', message: `join token for instance ${who} refused: it expired at ${new Date(found.expiresAt).toISOString()}; mint a new one` };
    }
    found.usedAt = now;
    this.#prune(now);
    this.#save();
    return { ok: true, binding: structuredClone(found.binding) };
  }

  /** The tokens the store knows (until they expire), for `trellis token list` and status pages. */
  list(): JoinTokenInfo[] {
    return this.#entries.map((e) => ({
      instance: e.binding.instance,
      identity: e.binding.identity,
      expiresAt: new Date(e.expiresAt),
      ...(e.usedAt === undefined ? {} : { usedAt: new Date(e.usedAt) }),
    }));
  }

  /** Forgets tokens past their expiry: an expired token cannot be redeemed, so its hash need not be kept. */
  #prune(now: number): void {
    this.#entries = this.#entries.filter((e) => e.expiresAt > now);
  }

  #load(): Entry[] {
    let text: string;
    try {
      text = readFileSync(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new CaError(CA_ERRORS.BAD_FILE, `cannot read the join token store ${this.#file}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const data = JSON.parse(text) as StoreFile;
      if (data.version !== 1 || !Array.isArray(data.tokens)) throw new Error('not a version 1 token store');
      return data.tokens.filter((t) => typeof t.sha256 === 'string' && /^[0-9a-f]{64}$/.test(t.sha256) && typeof t.expiresAt === 'number' && typeof t.binding?.instance === 'string');
    } catch (e) {
      throw new CaError(CA_ERRORS.BAD_FILE, `the join token store ${this.#file} is damaged (${(e as Error).message}); remove it and mint new tokens`, { cause: e });
    }
  }

  #save(): void {
    const data: StoreFile = { version: 1, tokens: this.#entries };
    const tmp = `${this.#file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, this.#file);
  }
}
