/**
 * Workload certificates for mTLS tests from the project's own CA
 * (src/ca/authority.ts, a managed root in a temporary state directory), made
 * the way a proxy gets them: its own key and CSR (src/ca/workload-key.ts),
 * signed for the identity. An expired certificate of the same root comes from
 * a second CA instance on the same state directory whose clock is 50 s behind
 * (the root is valid from a minute before it was made) issuing the shortest
 * lifetime, 1 s. Certificates no CA of ours would issue (a foreign root, a
 * URI SAN that is not a SPIFFE ID) come from test-pki.ts.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { newKeyAndCsr } from '../../src/ca/workload-key.js';
import type { TestLeaf } from './test-pki.js';

/** How far behind the clock of the CA that issues expired certificates is. */
const BEHIND_MS = 50_000;

export class MeshPki {
  private constructor(readonly ca: CertificateAuthority, readonly stateDir: string, readonly rootPem: string) {}

  /** A fresh CA (root made now) in a temporary directory. */
  static async create(trustDomain = 'cluster.local'): Promise<MeshPki> {
    const dir = mkdtempSync(join(tmpdir(), 'trellis-mtls-ca-'));
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain });
    return new MeshPki(ca, dir, ca.trustBundle()[0]!);
  }

  /** A workload key and certificate for `identity` (a SPIFFE ID), 24 h unless `ttlMs` says otherwise. */
  async issue(identity: string, ttlMs?: number): Promise<TestLeaf> {
    return leafOf(this.ca, identity, ttlMs);
  }

  /** A certificate of the same root for `identity` whose validity ended some 49 s ago. */
  async issueExpired(identity: string): Promise<TestLeaf> {
    const past = await CertificateAuthority.loadOrCreate(this.stateDir, { trustDomain: this.ca.trustDomain, now: () => Date.now() - BEHIND_MS });
    return leafOf(past, identity, 1_000);
  }

  close(): void {
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

async function leafOf(ca: CertificateAuthority, identity: string, ttlMs?: number): Promise<TestLeaf> {
  const { keyPem, csrPem } = await newKeyAndCsr(identity);
  const issued = await ca.signCsr(csrPem, identity, ttlMs === undefined ? {} : { ttlMs });
  return { keyPem, certChainPem: issued.chainPem, serial: new X509Certificate(issued.certPem).serialNumber, spiffeId: identity };
}
