/**
 * Minting join tokens beside a control plane that shares this machine's
 * state dir (`trellis up`, `trellis token create`): the instance is looked
 * up in the configuration (its identity is bound into the token), the root
 * pinned is the one the control plane wrote to `<state>/ca/trust-bundle.pem`,
 * and the token goes into the store the control plane redeems from.
 */
import { readFileSync } from 'node:fs';
import { fingerprintOfRoot } from '../ca/cert-info.js';
import { JoinTokenStore } from '../ca/join-token.js';
import { splitPem } from '../ca/pem.js';
import { DEFAULT_JOIN_TOKEN_TTL_MS, joinTokenFile, trustBundleFile } from '../controlplane/mesh-identity.js';
import { findInstance, hintFor, declaredInstances } from '../controlplane/registration.js';
import type { Registry } from '../registry/types.js';
import { CliError } from './cli-error.js';

export interface MintedToken {
  readonly instance: string;
  readonly identity: string;
  readonly token: string;
  readonly expiresAt: Date;
}

/** The root a control plane with this state dir signs with (the first of its bundle). */
export function stateDirRoot(stateDir: string): string {
  let text: string;
  try {
    text = readFileSync(trustBundleFile(stateDir), 'utf8');
  } catch {
    throw new CliError(`no CA in ${stateDir}: start the control plane with --state-dir ${stateDir} first (it makes the CA and writes ${trustBundleFile(stateDir)})`, 2);
  }
  const first = splitPem(text)[0];
  if (!first) throw new CliError(`${trustBundleFile(stateDir)} holds no certificate`, 2);
  return first;
}

/** Mints one token per instance; every instance must be declared by the configuration. */
export function mintJoinTokens(stateDir: string, registry: Registry, instances: readonly string[], ttlMs = DEFAULT_JOIN_TOKEN_TTL_MS): MintedToken[] {
  const rootFingerprint = fingerprintOfRoot(stateDirRoot(stateDir));
  const store = new JoinTokenStore(joinTokenFile(stateDir));
  return instances.map((instance) => {
    const found = findInstance(registry, instance);
    if (!found) throw new CliError(`the configuration declares no instance "${instance}"${hintFor(instance, declaredInstances(registry))}`, 2);
    const w = found.workload;
    const locality = [w.locality.region, w.locality.zone, w.locality.subzone].join('/').replace(/\/+$/, '');
    const token = store.mint({ instance, identity: w.identity, labels: { ...w.labels }, serviceAccount: w.serviceAccount, ...(locality ? { locality } : {}) }, { ttlMs, rootFingerprint });
    return { instance, identity: w.identity, token, expiresAt: new Date(Date.now() + ttlMs) };
  });
}
