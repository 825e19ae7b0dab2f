/**
 * The CA's files on disk: private files written 0600 by write-then-rename (a
 * crash never leaves half a key), the 0600 check on reading a key, and the
 * conversion of a PEM key into a WebCrypto signing key.
 */
import { createPrivateKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { CA_ERRORS, CaError } from './errors.js';

/** A key the CA signs with, and the WebCrypto algorithm that goes with it. */
export interface SigningKey {
  readonly key: webcrypto.CryptoKey;
  /** For `signingAlgorithm`: ECDSA with SHA-256 (P-256) or SHA-384 (P-384), or RSASSA-PKCS1-v1_5 with SHA-256. */
  readonly algorithm: webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;
}

/** Makes `dir` (and its parents) if missing, and sets it to 0700. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** Writes `data` to `file` with `mode` (0600 by default) through a temporary file and a rename. */
export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await chmod(tmp, mode); // the umask may have narrowed it further; make it exactly `mode`
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new CaError(CA_ERRORS.BAD_FILE, `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads a text file, with an error naming the file and what it was for. */
export async function readTextFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new CaError(CA_ERRORS.BAD_FILE, `cannot read the ${what} ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Refuses a key file that group or others may read or write (wider than 0600). */
export async function assertPrivateFile(file: string): Promise<void> {
  let mode: number;
  try {
    mode = (await stat(file)).mode & 0o777;
  } catch (e) {
    throw new CaError(CA_ERRORS.BAD_FILE, `cannot read the CA key ${file}: ${(e as Error).message}`, { cause: e });
  }
  if ((mode & 0o077) !== 0) {
    throw new CaError(
      CA_ERRORS.KEY_PERMISSIONS,
      `the CA key ${file} has mode 0${mode.toString(8)}, open to other users; a CA key must be 0600 or narrower (chmod 600 ${file})`,
    );
  }
}

/** Reads a private key file (PKCS#8 or SEC1/PKCS#1 PEM, unencrypted) after checking its permissions. */
export async function readPrivateKeyFile(file: string): Promise<KeyObject> {
  await assertPrivateFile(file);
  const pem = await readTextFile(file, 'CA key');
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw new CaError(CA_ERRORS.BAD_FILE, `the CA key ${file} is not an unencrypted PEM private key: ${(e as Error).message}`, { cause: e });
  }
}

const CURVES: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
};

/** The WebCrypto signing key for a Node key object: EC P-256 / P-384 or RSA. `file` names it in errors. */
export async function toSigningKey(key: KeyObject, file: string): Promise<SigningKey> {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curve) {
      const imported = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: curve.namedCurve }, false, ['sign']);
      return { key: imported, algorithm: { name: 'ECDSA', hash: curve.hash } };
    }
  } else if (key.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']), algorithm };
  }
  const what = key.asymmetricKeyType === 'ec' ? `an EC key on curve ${key.asymmetricKeyDetails?.namedCurve}` : `a ${key.asymmetricKeyType} key`;
  throw new CaError(CA_ERRORS.UNSUPPORTED_KEY, `the CA key ${file} is ${what}; a CA key must be EC P-256, EC P-384 or RSA`);
}
