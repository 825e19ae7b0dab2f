/**
 * The managed root in the state directory: `<stateDir>/ca/` (0700) holds
 * `root-cert.pem`, `root-key.pem` (0600) and, during a root rotation,
 * `previous-roots.pem` (roots still trusted but no longer signing).
 */
import type { KeyObject } from 'node:crypto';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CA_ERRORS, CaError } from './errors.js';
import { ensurePrivateDir, readPrivateKeyFile, readTextFile, writeFileAtomic } from './key-files.js';
import { splitPem } from './pem.js';

/** The files of a managed root. */
export interface RootFiles {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly previous: string;
}

/** A root read back from the state directory. */
export interface StoredRoot {
  readonly certPem: string;
  readonly key: KeyObject;
  readonly previousRoots: readonly string[];
}

/** Where the managed root of `stateDir` lives. */
export function rootFiles(stateDir: string): RootFiles {
  const dir = join(stateDir, 'ca');
  return { dir, cert: join(dir, 'root-cert.pem'), key: join(dir, 'root-key.pem'), previous: join(dir, 'previous-roots.pem') };
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

/** The stored root, or undefined when there is none yet. A half-present root (cert without key or the reverse) is an error. */
export async function readStoredRoot(files: RootFiles): Promise<StoredRoot | undefined> {
  await ensurePrivateDir(files.dir);
  const [hasCert, hasKey] = await Promise.all([exists(files.cert), exists(files.key)]);
  if (!hasCert && !hasKey) return undefined;
  if (!hasCert || !hasKey) {
    const [present, missing] = hasCert ? [files.cert, files.key] : [files.key, files.cert];
    throw new CaError(CA_ERRORS.BAD_FILE, `${present} exists but ${missing} is missing; restore it, or remove ${files.dir} to make a new root (every workload must then rejoin)`);
  }
  const key = await readPrivateKeyFile(files.key);
  const certs = splitPem(await readTextFile(files.cert, 'CA root certificate'));
  if (certs.length !== 1) throw new CaError(CA_ERRORS.BAD_FILE, `${files.cert} must hold exactly one certificate, it holds ${certs.length}`);
  const previousRoots = (await exists(files.previous)) ? splitPem(await readTextFile(files.previous, 'previous CA roots')) : [];
  return { certPem: certs[0]!, key, previousRoots };
}

/** Saves a root: the previous roots first, then the key (0600), then the certificate (0644). */
export async function writeRoot(files: RootFiles, root: { certPem: string; keyPem: string; previousRoots: readonly string[] }): Promise<void> {
  await ensurePrivateDir(files.dir);
  await writePreviousRoots(files, root.previousRoots);
  await writeFileAtomic(files.key, root.keyPem, 0o600);
  await writeFileAtomic(files.cert, root.certPem, 0o644);
}

/** Saves the list of previous roots; an empty list removes the file. */
export async function writePreviousRoots(files: RootFiles, roots: readonly string[]): Promise<void> {
  if (roots.length === 0) await rm(files.previous, { force: true });
  else await writeFileAtomic(files.previous, roots.join(''), 0o644);
}
