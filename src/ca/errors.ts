/**
 * The certificate authority's errors as data: one catalogue of permanent
 * codes, and `CaError`, a TrellisError whose message names the file or the
 * request that was refused and what to do about it.
 */
import { TrellisError } from '../api/diagnostic.js';

/** Codes of the CA and the join tokens. Codes are permanent: never reused. */
export const CA_ERRORS = {
  /** A private key file readable or writable by group or others. */
  KEY_PERMISSIONS: 'TRL_CA_KEY_PERMISSIONS',
  /** A certificate, key or state file that cannot be read or parsed. */
  BAD_FILE: 'TRL_CA_BAD_FILE',
  /** The key file does not belong to the certificate beside it. */
  KEY_MISMATCH: 'TRL_CA_KEY_MISMATCH',
  /** A certificate used to sign is not a CA certificate (or may not sign certificates). */
  NOT_A_CA: 'TRL_CA_NOT_A_CA',
  /** The chain of a plugged-in CA does not lead to a self-signed root. */
  BAD_CHAIN: 'TRL_CA_BAD_CHAIN',
  /** A CA certificate outside its validity period. */
  CA_EXPIRED: 'TRL_CA_EXPIRED',
  /** A key of a type or curve the CA does not use. */
  UNSUPPORTED_KEY: 'TRL_CA_UNSUPPORTED_KEY',
  /** A CSR that cannot be parsed, or whose own signature does not verify. */
  BAD_CSR: 'TRL_CA_BAD_CSR',
  /** An identity that is not a SPIFFE ID of this trust domain. */
  BAD_IDENTITY: 'TRL_CA_BAD_IDENTITY',
  /** A DNS name or IP address for a serving certificate that is not one. */
  BAD_NAME: 'TRL_CA_BAD_NAME',
  /** A certificate lifetime out of range. */
  BAD_TTL: 'TRL_CA_BAD_TTL',
  /** An operation that a plugged-in CA cannot do (its root belongs to the operator). */
  NOT_MANAGED: 'TRL_CA_NOT_MANAGED',
  /** A join-token request that cannot be served (bad binding, bad store file). */
  JOIN_TOKEN: 'TRL_CA_JOIN_TOKEN',
} as const;

export type CaErrorCode = (typeof CA_ERRORS)[keyof typeof CA_ERRORS];

const REQUEST_ERRORS: ReadonlySet<string> = new Set([
  CA_ERRORS.BAD_CSR, CA_ERRORS.UNSUPPORTED_KEY, CA_ERRORS.BAD_IDENTITY, CA_ERRORS.BAD_NAME, CA_ERRORS.BAD_TTL,
]);

/**
 * An error of the CA. Errors about a request (CSR, identity, ttl) are
 * `downstream` with status 400; errors about files and set-up are `config`.
 */
export class CaError extends TrellisError {
  constructor(code: CaErrorCode, message: string, opts: { cause?: unknown } = {}) {
    const request = REQUEST_ERRORS.has(code);
    super(code, message, { source: request ? 'downstream' : 'config', status: request ? 400 : 500, cause: opts.cause });
    this.name = 'CaError';
  }
}
