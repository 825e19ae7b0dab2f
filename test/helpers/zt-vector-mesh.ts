/**
 * One authorization vector case (authz-vectors.ts) as a mesh a real proxy can
 * run: the vector's security documents (AuthorizationPolicy,
 * RequestAuthentication, PeerAuthentication) parsed by the real loader in
 * the case's default namespace, a Deployment for the callee workload with
 * its labels, a Service selecting it whose port is the one the request's
 * Host names (80 when none) and whose target port is the workload port the
 * case gives, and a MeshConfig with the case's normalization mode — compiled
 * by the real compiler for the callee, JWKS of every `jwksUri` supplied as
 * the control plane would (keys inlined into the snapshot).
 *
 * Gateway and VirtualService documents of a vector are left out: Trellis
 * enforces authorization on sidecar inbound listeners, so a case whose
 * policy selects the ingress gateway is replayed at a sidecar with the
 * gateway's labels (as the pure-engine replay decides it).
 *
 * Also: the JWT a case's claims describe (signed with a test key whose JWKS
 * the snapshot carries), and the path the app must receive.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ConfigSet } from '../../src/api/config-set.js';
import { parseYaml } from '../../src/api/load.js';
import type { Resource } from '../../src/api/resource.js';
import { createCompiler } from '../../src/compile/index.js';
import { jwksSources, type JwksEntry } from '../../src/compile/request-authentication.js';
import { normalizePath } from '../../src/policy/path-normalize.js';
import type { Jwk } from '../../src/protocol/request-authn.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import { portOf } from '../../src/proxy/request-target.js';
import type { VectorCase } from './authz-vectors.js';
import { k8sDeployment, registryFor } from './mesh.js';

const SECURITY_KINDS = new Set(['AuthorizationPolicy', 'RequestAuthentication', 'PeerAuthentication']);

/** The service port a case's request names: its Host's port, else 80. */
export function servicePort(c: VectorCase): number {
  const p = portOf(c.request.host);
  return p === undefined || Number.isNaN(p) ? 80 : p;
}

/** The Service, Deployment and MeshConfig documents of a case's callee. */
export function calleeYaml(c: VectorCase): string {
  const w = c.workload;
  const app = w.labels.app ?? w.name;
  const { app: _app, ...others } = w.labels;
  const portName = c.request.protocol === 'tcp' ? 'tcp' : 'http';
  return [
    `apiVersion: v1
kind: Service
metadata: { name: ${app}, namespace: ${w.namespace} }
spec:
  selector: { app: ${app} }
  ports: [{ name: ${portName}, port: ${servicePort(c)}, targetPort: ${c.request.port} }]
`,
    k8sDeployment(w.name, w.namespace, app, { labels: others, serviceAccount: w.name }),
    `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
  pathNormalization: { normalization: ${c.mode} }
`,
  ].join('---\n');
}

/** The configuration of one case; throws when the vector's security documents do not load. */
export function caseConfig(c: VectorCase): ConfigSet {
  const loaded = parseYaml(c.yaml, `${c.id}.yaml`, { defaultNamespace: c.defaultNamespace });
  const security = loaded.resources.filter((r) => SECURITY_KINDS.has(r.kind));
  const bad = loaded.diagnostics.filter((d) => d.level === 'error' && SECURITY_KINDS.has((d.resource ?? 'AuthorizationPolicy').split(/[ /]/)[0]!));
  if (bad.length) throw new Error(`the vector's policies do not load: ${bad.map((d) => `${d.code} ${d.field}: ${d.message}`).join('; ')}`);
  const callee = parseYaml(calleeYaml(c), `${c.id}-callee.yaml`);
  const errors = callee.diagnostics.filter((d) => d.level === 'error');
  if (errors.length) throw new Error(`callee YAML does not validate: ${errors.map((d) => `${d.field}: ${d.message}`).join('; ')}`);
  return ConfigSet.of([...security, ...callee.resources] as Resource[]);
}

/** A signing key for the vectors' tokens, and its public JWK. */
export interface TokenKey {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

export async function tokenKey(kid = 'vectors'): Promise<TokenKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** A JWT with exactly `claims`, signed with `key`. */
export function signToken(key: TokenKey, claims: Readonly<Record<string, unknown>>): Promise<string> {
  return new SignJWT({ ...claims }).setProtectedHeader({ alg: 'ES256', kid: String(key.jwk.kid), typ: 'JWT' }).sign(key.privateKey);
}

/**
 * The callee's snapshot for a case: every `jwksUri` of the configuration is
 * given `key` (as the control plane's JWKS cache would), the trust bundle is
 * the mesh's roots.
 */
export function compileCase(c: VectorCase, key: TokenKey, trustBundle: readonly string[]): Snapshot {
  const config = caseConfig(c);
  const { registry, diagnostics } = registryFor(config);
  const bad = diagnostics.filter((d) => d.level === 'error');
  if (bad.length) throw new Error(`the registry refuses the callee: ${bad.map((d) => d.message).join('; ')}`);
  const jwks = new Map<string, JwksEntry>(jwksSources(config).map((s) => [s.uri, { keys: [key.jwk as Jwk] }]));
  return createCompiler().compile(config, registry, { workload: c.workload.name, namespace: c.workload.namespace }, { trustBundle, jwks });
}

/** What the app must receive when the case is allowed: the normalized path, then the query as sent; undefined when the proxy refuses the path. */
export function expectedAppPath(c: VectorCase): string | undefined {
  const n = normalizePath(c.request.target, c.mode);
  return n.ok ? n.path + n.query : undefined;
}
